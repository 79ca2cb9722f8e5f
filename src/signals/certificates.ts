/**
 * The certificates whose expiry Portico watches: every SAML connection's IdP signing certificates
 * (`config.idp_certificates`) and Portico's own SAML SP certificates in PORTICO_CERTS_DIR
 * (saml-sp-signing.crt, saml-sp-encryption.crt). JWT signing keys are bare keys with no expiry.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Store } from '../store/index.js';
import { describeCertificate } from '../upstream/saml/certificates.js';
import { spKeyFiles } from '../upstream/saml/sp-keys.js';

export interface WatchedCertificate {
  /** Who holds it: the connection id, or `portico-saml-sp-signing` / `portico-saml-sp-encryption`. */
  holder: string;
  organization_id: string | null;
  connection_id: string | null;
  fingerprint_sha256: string;
  subject: string;
  notAfter: Date;
}

export interface CertificateSources {
  store: Store;
  certsDir: string;
}

export async function watchedCertificates(src: CertificateSources): Promise<WatchedCertificate[]> {
  const out: WatchedCertificate[] = [];
  const add = (pem: string, holder: Omit<WatchedCertificate, 'fingerprint_sha256' | 'subject' | 'notAfter'>) => {
    try {
      const c = describeCertificate(pem);
      out.push({ ...holder, fingerprint_sha256: c.fingerprint_sha256, subject: c.subject, notAfter: new Date(c.not_after) });
    } catch {
      /* an unreadable certificate is refused on input; nothing to watch */
    }
  };
  for (const c of await src.store.connections.listByType('saml')) {
    const pems = Array.isArray(c.config.idp_certificates) ? (c.config.idp_certificates as unknown[]) : [];
    for (const pem of pems) if (typeof pem === 'string') add(pem, { holder: c.id, organization_id: c.organization_id, connection_id: c.id });
  }
  for (const use of ['signing', 'encryption'] as const) {
    const file = spKeyFiles(src.certsDir, use).cert;
    let pem: string | undefined;
    try {
      pem = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    } catch {
      pem = undefined;
    }
    if (pem) add(pem, { holder: `portico-saml-sp-${use}`, organization_id: null, connection_id: null });
  }
  return out;
}
