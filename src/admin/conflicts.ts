import { HttpProblem } from '../http/problem.js';
import { uniqueViolation } from '../store/database.js';

/** Unique constraints the domain relies on, and the stable code each one becomes. */
const CONFLICTS: Record<string, [code: string, message: string]> = {
  organizations_slug_key: ['slug_taken', 'an organization with this slug already exists'],
  organization_domains_pkey: ['domain_taken', 'this domain already belongs to an organization'],
  organization_domains_verified_key: ['domain_taken', 'this domain is verified by another organization'],
  users_org_email_key: ['email_taken', 'a user with this email already exists in the organization'],
  users_org_external_id_key: ['external_id_taken', 'a user with this external_id already exists in the organization'],
  identities_pkey: ['identity_taken', 'this identity is already linked to a user'],
  applications_pkey: ['client_id_taken', 'an application with this client_id already exists'],
  apis_identifier_key: ['identifier_taken', 'an API with this identifier already exists'],
};

/** Runs a write and turns a unique-constraint violation into a 409 with a stable code. */
export async function withConflicts<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    const constraint = uniqueViolation(e);
    if (constraint) {
      const [code, message] = CONFLICTS[constraint] ?? ['conflict', 'conflicts with an existing resource'];
      throw new HttpProblem(409, code, message);
    }
    throw e;
  }
}
