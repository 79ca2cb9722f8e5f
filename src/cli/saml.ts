/**
 * `portico saml verify` (docs/reference.md "Command line"): validate one SAML response offline with the server's own code
 * path (validateSamlResponse), for admins debugging a failed login.
 *
 *   registerSamlCommands(program: Command, out?: (s: string) => void): void
 *
 * Exit 0 + {"ok":true,...} on a valid response, exit 1 + {"ok":false,"code","message"} on an
 * invalid one, exit 2 on usage errors (bad flags, unreadable files, unusable metadata/certificates).
 */
import { createPrivateKey } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import { CertificateError, splitCertificates } from '../upstream/saml/certificates.js';
import { MetadataError, parseIdpMetadata } from '../upstream/saml/metadata.js';
import { samlFailure, validateSamlResponse, type SamlValidationConfig } from '../upstream/saml/validate.js';

interface VerifyOptions {
  idpMetadata?: string;
  idpCert?: string[];
  idpEntityId?: string;
  spEntityId: string;
  acsUrl: string;
  at?: string;
  inResponseTo?: string;
  allowSha1?: boolean;
  requireSignedResponse?: boolean;
  spKey?: string;
  clockSkew?: string;
}

/**
 * Up to `max` bytes of a file (`-`: stdin), and whether there was more: never the whole of a huge
 * or endless input (`/dev/zero` made readFileSync abort the process with std::bad_alloc).
 */
export function readBounded(path: string, max: number): { text: string; tooLarge: boolean } {
  const fd = path === '-' ? 0 : openSync(path, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue; // a non-blocking stdin
        if ((e as NodeJS.ErrnoException).code === 'EOF') break;
        throw e;
      }
      if (got === 0) break;
      n += got;
      if (n > max) return { text: '', tooLarge: true };
    }
    return { text: buf.subarray(0, n).toString('utf8'), tooLarge: false };
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** Input caps: the response as the ACS takes it (1 MB of XML, base64 of it), and the other files. */
const MAX_RESPONSE_FILE_BYTES = 2 * 1024 * 1024;
const MAX_OTHER_FILE_BYTES = 1024 * 1024;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerSamlCommands(program: Command, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const saml = program.command('saml').description('SAML 2.0 tools');
  saml
    .command('verify')
    .description('validate one SAML response offline, as the server ACS would (prints one JSON line)')
    .argument('<response>', 'file holding the SAMLResponse form value (base64) or the raw XML; - reads stdin')
    .option('--idp-metadata <file>', 'IdP metadata XML file (entity id, signing certificates)')
    .option('--idp-cert <pem-file>', 'IdP signing certificate PEM file (repeatable)', collect)
    .option('--idp-entity-id <id>', 'expected IdP entity id (Issuer); with --idp-metadata, selects the IdP')
    .requiredOption('--sp-entity-id <uri>', 'required: this SP entity id (must be in every AudienceRestriction)')
    .requiredOption('--acs-url <url>', 'required: this SP ACS URL (Destination and Recipient)')
    .option('--at <ISO-8601>', 'validate as of this time instead of now')
    .option('--in-response-to <id>', 'the AuthnRequest ID the response must answer')
    .option('--allow-sha1', 'accept SHA-1 signatures and digests')
    .option('--require-signed-response', 'refuse a Response that is not signed itself (a signed Assertion alone is not enough)')
    .option('--sp-key <pem-file>', 'SP private key PEM file, for encrypted assertions')
    .option('--clock-skew <seconds>', 'allowed clock skew in seconds (default 180)')
    .action(function (this: Command, responseFile: string, opts: VerifyOptions) {
      const usage = (message: string): never => this.error(`portico saml verify: ${message}`, { exitCode: 2, code: 'portico.usage' });
      const readFile = (path: string, flag: string, max = MAX_OTHER_FILE_BYTES): { text: string; tooLarge: boolean } => {
        try {
          return readBounded(path, max);
        } catch (e) {
          return usage(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      };
      const readSmall = (path: string, flag: string): string => {
        const r = readFile(path, flag);
        return r.tooLarge ? usage(`${flag}: ${path} is larger than ${MAX_OTHER_FILE_BYTES} bytes`) : r.text;
      };

      const certFiles = opts.idpCert ?? [];
      if (opts.idpMetadata && certFiles.length > 0) usage('give either --idp-metadata or --idp-cert, not both');
      if (!opts.idpMetadata && certFiles.length === 0) usage('one of --idp-metadata <file> or --idp-cert <pem-file> is required');

      let idpEntityId: string | null = opts.idpEntityId ?? null;
      let certificates: string[] = [];
      if (opts.idpMetadata) {
        try {
          const md = parseIdpMetadata(readSmall(opts.idpMetadata, '--idp-metadata'), { entityId: opts.idpEntityId });
          idpEntityId = md.entity_id;
          certificates = md.certificates;
        } catch (e) {
          if (e instanceof MetadataError) usage(`--idp-metadata: ${e.message}`);
          throw e;
        }
      } else {
        for (const file of certFiles) {
          try {
            certificates.push(...splitCertificates(readSmall(file, '--idp-cert')));
          } catch (e) {
            if (e instanceof CertificateError) usage(`--idp-cert ${file}: ${e.message}`);
            throw e;
          }
        }
      }

      let now = new Date();
      if (opts.at !== undefined) {
        const t = Date.parse(opts.at);
        if (!ISO_8601.test(opts.at) || !Number.isFinite(t)) usage(`--at: ${JSON.stringify(opts.at)} is not an ISO-8601 time such as 2026-01-01T10:00:00Z`);
        now = new Date(t);
      }
      let clockSkewSeconds: number | undefined;
      if (opts.clockSkew !== undefined) {
        if (!/^\d{1,6}$/.test(opts.clockSkew)) usage('--clock-skew: a whole number of seconds');
        clockSkewSeconds = Number(opts.clockSkew);
      }
      let spPrivateKey: string | undefined;
      if (opts.spKey) {
        spPrivateKey = readSmall(opts.spKey, '--sp-key');
        try {
          createPrivateKey(spPrivateKey);
        } catch {
          usage(`--sp-key ${opts.spKey}: not a PEM private key`);
        }
      }
      try {
        new URL(opts.acsUrl);
      } catch {
        usage(`--acs-url: ${JSON.stringify(opts.acsUrl)} is not an absolute URL`);
      }

      const response = readFile(responseFile, '<response>', MAX_RESPONSE_FILE_BYTES);
      if (response.tooLarge) {
        out(`${JSON.stringify({ ok: false, code: 'too_large', message: `the response file is larger than ${MAX_RESPONSE_FILE_BYTES} bytes` })}\n`);
        process.exitCode = 1;
        return;
      }
      const input = response.text.trim();
      const cfg: SamlValidationConfig = {
        idpEntityId,
        idpCertificates: certificates,
        spEntityId: opts.spEntityId,
        acsUrl: opts.acsUrl,
        expectedInResponseTo: opts.inResponseTo,
        allowSha1: opts.allowSha1 === true,
        requireSignedResponse: opts.requireSignedResponse === true,
        spPrivateKey,
        clockSkewSeconds,
      };
      try {
        const r = validateSamlResponse(input, cfg, now);
        out(
          `${JSON.stringify({
            ok: true,
            issuer: r.issuer,
            name_id: r.name_id,
            name_id_format: r.name_id_format,
            session_index: r.session_index,
            attributes: r.attributes,
            not_on_or_after: r.not_on_or_after,
          })}\n`,
        );
        process.exitCode = 0;
      } catch (e) {
        out(`${JSON.stringify(samlFailure(e))}\n`);
        process.exitCode = 1;
      }
    });
}
