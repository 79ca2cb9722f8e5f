import { Router } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import { verificationRecord, type DomainVerifier } from '../directory/domains.js';
import type { Store } from '../store/index.js';
import type { OrganizationDomain } from '../store/types.js';
import { resolveOrg } from './auth.js';
import { withConflicts } from './conflicts.js';
import { domain as domainName, timestamp } from './validation.js';

export const domainResponse = z.strictObject({
  domain: z.string(),
  verified: z.boolean(),
  verified_at: timestamp.nullable(),
  verification_record: z.string().describe('publish as a TXT record at the domain: portico-verification=<token>'),
});

export const domainView = (d: OrganizationDomain) => ({
  domain: d.domain,
  verified: d.verified,
  verified_at: d.verified_at,
  verification_record: verificationRecord(d.verification_token),
});

/**
 * An organization's domains and their proof (docs/reference.md "Admin API" domains). Domains are added and removed
 * through the organization's `domains[]`; one an organization-scoped key adds is pending until
 * `POST …/domains/{domain}/verify` finds its TXT record `portico-verification=<token>` at the domain.
 */
export function domainRoutes(store: Store, verifier: DomainVerifier): Router {
  const r = Router();

  r.get('/organizations/:org/domains', async (req, res) => {
    const org = await resolveOrg(store, req);
    res.json({ data: (await store.organizations.listDomains(org.id)).map(domainView), next_cursor: null });
  });

  r.post('/organizations/:org/domains/:domain/verify', async (req, res) => {
    const org = await resolveOrg(store, req);
    const name = domainName.safeParse(String(req.params.domain ?? ''));
    const claimed = name.success ? await store.organizations.getDomain(org.id, name.data) : undefined;
    if (!claimed) throw notFound('domain');
    if (claimed.verified) return void res.json(domainView(claimed));
    const record = verificationRecord(claimed.verification_token);
    const check = await verifier.check(claimed.domain, record);
    if (!check.found) {
      throw new HttpProblem(422, 'domain_unverified', `${check.reason}: publish the TXT record "${record}" at ${claimed.domain}, then verify again`, {
        domain: claimed.domain,
        verification_record: record,
      });
    }
    const verified = await withConflicts(() => store.organizations.markDomainVerified(org.id, claimed.domain));
    if (!verified) throw notFound('domain');
    res.json(domainView(verified));
  });

  return r;
}
