/**
 * A real SAML 2.0 IdP for end-to-end tests: Debian's SimpleSAMLphp 1.19 (package `simplesamlphp`,
 * code in /usr/share/simplesamlphp) served by `php -S 127.0.0.1:<port>` from its www/ directory.
 *
 * Each instance gets a throwaway directory with its own config (templates in
 * test/fixtures/simplesamlphp/, values in settings.json / sps.json so nothing is spliced into PHP
 * source), a fresh IdP key and certificate, its own PHP session directory, and an
 * `exampleauth:UserPass` source with the given users. SIMPLESAMLPHP_CONFIG_DIR points
 * SimpleSAMLphp at it; the system config in /etc/simplesamlphp is never read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { freePort } from './processes.js';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from 'selfsigned';

export const SIMPLESAMLPHP_WWW = '/usr/share/simplesamlphp/www';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'simplesamlphp');

export const NAMEID_FORMATS = {
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
} as const;
export type NameIdFormat = keyof typeof NAMEID_FORMATS;

export const ATTRIBUTE_NAME_FORMATS = {
  basic: 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
  uri: 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
  unspecified: 'urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified',
} as const;
export type AttributeNameFormat = keyof typeof ATTRIBUTE_NAME_FORMATS;

export interface SamlTestUser {
  password: string;
  /** Released exactly as given (no URN mapping, no consent): name -> values. */
  attributes: Record<string, string[]>;
}

/** One SP the IdP knows (saml20-sp-remote). */
export interface SimpleSamlSpOptions {
  spEntityId: string;
  /** HTTP-POST AssertionConsumerService. An AuthnRequest's AssertionConsumerServiceURL must equal it. */
  acsUrl: string;
  /** Optional HTTP-Redirect SingleLogoutService of the SP. */
  sloUrl?: string;
  /** SP certificate (PEM): encrypts assertions and verifies signed AuthnRequests. */
  spCertPem?: string;
  /** Encrypt the Assertion to spCertPem (RSA-OAEP key transport). Default false. */
  encryptAssertions?: boolean;
  /** Sign the Response element. Default true. */
  signResponse?: boolean;
  /** Sign the Assertion element. Default true. */
  signAssertion?: boolean;
  /** Refuse AuthnRequests without a valid signature by spCertPem. Default false. */
  validateAuthnRequestSignature?: boolean;
  /** NameID format when the request does not ask for one. Default 'emailAddress'. */
  nameIdFormat?: NameIdFormat;
  /**
   * Attribute whose first value becomes the NameID. Default 'email' for emailAddress, none otherwise:
   * persistent then is SimpleSAMLphp's opaque per-SP hash of eduPersonPrincipalName, transient is random.
   */
  nameIdAttribute?: string | null;
  /** Attribute NameFormat. Default 'basic' (attribute names exactly as configured). */
  attributeNameFormat?: AttributeNameFormat;
}

export interface SimpleSamlIdpOptions extends SimpleSamlSpOptions {
  /** Default: DEFAULT_SAML_USERS. */
  users?: Record<string, SamlTestUser>;
  /** Log SimpleSAMLphp at DEBUG level into logs(). Default false. */
  debug?: boolean;
  /** How long to wait for the metadata URL to answer. Default 20 s. */
  startTimeoutMs?: number;
}

export interface SimpleSamlIdp {
  /** http://127.0.0.1:<port> (no trailing slash). */
  baseUrl: string;
  /** `${baseUrl}/saml2/idp/metadata.php` */
  entityId: string;
  /** SingleSignOnService (HTTP-Redirect and HTTP-POST bindings both answer here). */
  ssoUrl: string;
  /** SingleLogoutService. */
  sloUrl: string;
  metadataUrl: string;
  /** The IdP's EntityDescriptor as served by SimpleSAMLphp. */
  metadataXml: string;
  /** IdP signing certificate (PEM). */
  certPem: string;
  /** IdP private key (PEM): a throwaway, handy for forging "validly signed but wrong" messages. */
  keyPem: string;
  /** Unsolicited (IdP-initiated) SSO start URL for a configured SP. */
  idpInitiatedUrl(spEntityId: string, relayState?: string): string;
  /** Register (or replace) another SP; effective for the next request. */
  addSp(sp: SimpleSamlSpOptions): Promise<void>;
  /** The throwaway directory (config/, metadata/, cert/, sessions/ ...), removed by close(). */
  dir: string;
  /** What php -S and SimpleSAMLphp printed (request lines, errors), newest last, bounded. */
  logs(): string;
  close(): Promise<void>;
}

export const DEFAULT_SAML_USERS: Record<string, SamlTestUser> = {
  alice: {
    password: 'alice-password',
    attributes: {
      email: ['alice@example.com'],
      givenName: ['Alice'],
      sn: ['Liddell'],
      eduPersonPrincipalName: ['alice@example.com'],
      groups: ['staff', 'admins'],
    },
  },
  bob: {
    password: 'bob-password',
    attributes: {
      email: ['bob@example.com'],
      givenName: ['Bob'],
      sn: ['Builder'],
      eduPersonPrincipalName: ['bob@example.com'],
      groups: ['staff'],
    },
  },
};

/** CSS selectors of SimpleSAMLphp 1.19's core:loginuserpass page (both the old and the twig template). */
export const SIMPLESAMLPHP_LOGIN = {
  username: '#username',
  password: '#password',
  submit: '#submit_button',
} as const;

interface SpRecord {
  entityId: string;
  acsUrl: string;
  sloUrl: string | null;
  certData: string | null;
  encryptAssertions: boolean;
  signResponse: boolean;
  signAssertion: boolean;
  validateAuthnRequestSignature: boolean;
  nameIdFormat: string;
  nameIdAttribute: string | null;
  attributeNameFormat: string;
}

const pemBody = (pem: string) => pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');

function spRecord(sp: SimpleSamlSpOptions): SpRecord {
  const needsCert = sp.encryptAssertions || sp.validateAuthnRequestSignature;
  if (needsCert && !sp.spCertPem) throw new Error('simplesamlphp: encryptAssertions/validateAuthnRequestSignature need spCertPem');
  const nameIdFormat = sp.nameIdFormat ?? 'emailAddress';
  return {
    entityId: sp.spEntityId,
    acsUrl: sp.acsUrl,
    sloUrl: sp.sloUrl ?? null,
    certData: sp.spCertPem ? pemBody(sp.spCertPem) : null,
    encryptAssertions: sp.encryptAssertions ?? false,
    signResponse: sp.signResponse ?? true,
    signAssertion: sp.signAssertion ?? true,
    validateAuthnRequestSignature: sp.validateAuthnRequestSignature ?? false,
    nameIdFormat: NAMEID_FORMATS[nameIdFormat],
    nameIdAttribute: sp.nameIdAttribute !== undefined ? sp.nameIdAttribute : nameIdFormat === 'emailAddress' ? 'email' : null,
    attributeNameFormat: ATTRIBUTE_NAME_FORMATS[sp.attributeNameFormat ?? 'basic'],
  };
}

/** A port that was free a moment ago (php -S cannot report the port it got for :0). */
async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startSimpleSamlIdp(opts: SimpleSamlIdpOptions): Promise<SimpleSamlIdp> {
  const users = opts.users ?? DEFAULT_SAML_USERS;
  for (const name of Object.keys(users)) {
    if (name.includes(':')) throw new Error(`simplesamlphp: username ${name} contains ':' (exampleauth:UserPass splits on it)`);
  }
  const sps = new Map<string, SpRecord>([[opts.spEntityId, spRecord(opts)]]);

  const root = await mkdtemp(join(tmpdir(), 'portico-ssp-'));
  const dirs = {
    config: join(root, 'config'),
    metadata: join(root, 'metadata'),
    cert: join(root, 'cert'),
    log: join(root, 'log'),
    data: join(root, 'data'),
    temp: join(root, 'tmp'),
    sessions: join(root, 'sessions'),
  };
  let child: ChildProcess | undefined;
  const output: string[] = [];
  let outputChars = 0;
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString('utf8'));
    outputChars += chunk.length;
    while (outputChars > 200_000 && output.length > 1) outputChars -= output.shift()!.length;
  };
  const logs = () => output.join('');
  const onExit = () => child?.kill('SIGKILL');

  try {
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
    const pems = await generate([{ name: 'commonName', value: 'simplesamlphp.test' }], { keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + 7 * 86400_000) });
    await writeFile(join(dirs.cert, 'idp.key'), pems.private, { mode: 0o600 });
    await writeFile(join(dirs.cert, 'idp.crt'), pems.cert);
    await copyFile(join(FIXTURES, 'config.php'), join(dirs.config, 'config.php'));
    await copyFile(join(FIXTURES, 'authsources.php'), join(dirs.config, 'authsources.php'));
    await copyFile(join(FIXTURES, 'saml20-idp-hosted.php'), join(dirs.metadata, 'saml20-idp-hosted.php'));
    await copyFile(join(FIXTURES, 'saml20-sp-remote.php'), join(dirs.metadata, 'saml20-sp-remote.php'));
    await writeJsonAtomic(join(dirs.config, 'sps.json'), [...sps.values()]);

    // The port is baked into config (baseurlpath), so pick it first and retry if someone took it.
    let baseUrl = '';
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      baseUrl = `http://127.0.0.1:${port}`;
      await writeJsonAtomic(join(dirs.config, 'settings.json'), {
        baseUrl,
        hostPort: `127.0.0.1:${port}`,
        certDir: dirs.cert,
        logDir: dirs.log,
        dataDir: dirs.data,
        tempDir: dirs.temp,
        metadataDir: dirs.metadata,
        sessionDir: dirs.sessions,
        secretSalt: randomBytes(24).toString('hex'),
        adminPassword: randomBytes(24).toString('hex'),
        debug: opts.debug ?? false,
        users,
        idp: {
          entityId: `${baseUrl}/saml2/idp/metadata.php`,
          nameIdFormat: NAMEID_FORMATS.emailAddress,
          attributeNameFormat: ATTRIBUTE_NAME_FORMATS.basic,
        },
      });
      const proc = spawn(
        'php',
        // opcache off: metadata files are re-read on every request so addSp() is seen at once.
        ['-d', 'opcache.enable_cli=0', '-d', 'display_errors=stderr', '-d', 'log_errors=1', '-S', `127.0.0.1:${port}`, '-t', SIMPLESAMLPHP_WWW],
        {
          cwd: root,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, TMPDIR: dirs.temp, SIMPLESAMLPHP_CONFIG_DIR: dirs.config },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child = proc;
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      process.once('exit', onExit);
      const ready = await waitForMetadata(`${baseUrl}/saml2/idp/metadata.php`, proc, opts.startTimeoutMs ?? 20_000);
      if (ready.ok) break;
      await stopChild(proc);
      process.removeListener('exit', onExit);
      const busy = /Address already in use|Failed to listen/i.test(logs());
      if (!busy || attempt >= 5) throw new Error(`simplesamlphp did not start: ${ready.reason}\n${logs().slice(-4000)}`);
    }

    const entityId = `${baseUrl}/saml2/idp/metadata.php`;
    const metadataXml = await (await fetch(entityId)).text();
    const running = child!;

    return {
      baseUrl,
      entityId,
      ssoUrl: `${baseUrl}/saml2/idp/SSOService.php`,
      sloUrl: `${baseUrl}/saml2/idp/SingleLogoutService.php`,
      metadataUrl: entityId,
      metadataXml,
      certPem: pems.cert,
      keyPem: pems.private,
      idpInitiatedUrl(spEntityId, relayState) {
        const u = new URL(`${baseUrl}/saml2/idp/SSOService.php`);
        u.searchParams.set('spentityid', spEntityId);
        if (relayState !== undefined) u.searchParams.set('RelayState', relayState);
        return u.toString();
      },
      async addSp(sp) {
        sps.set(sp.spEntityId, spRecord(sp));
        await writeJsonAtomic(join(dirs.config, 'sps.json'), [...sps.values()]);
      },
      logs,
      dir: root,
      async close() {
        await stopChild(running);
        process.removeListener('exit', onExit);
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (child) await stopChild(child);
    process.removeListener('exit', onExit);
    await rm(root, { recursive: true, force: true });
    throw e;
  }
}

async function waitForMetadata(url: string, proc: ChildProcess, timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return { ok: false, reason: `php exited (${proc.exitCode ?? proc.signalCode})` };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.ok && body.includes('EntityDescriptor')) return { ok: true };
      last = `HTTP ${res.status}: ${body.slice(0, 500)}`;
      // A PHP-level error will not fix itself by waiting.
      if (res.status >= 400) return { ok: false, reason: last };
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(50);
  }
  return { ok: false, reason: `timed out after ${timeoutMs} ms (${last})` };
}
