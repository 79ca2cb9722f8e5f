import { Router, type Request } from 'express';
import { z } from 'zod';
import { isEmailAddress } from '../directory/email.js';
import { HttpProblem, notFound } from '../http/problem.js';
import type { Store } from '../store/index.js';
import { userEmailVerified } from '../directory/email-verified.js';
import type { Organization, User } from '../store/types.js';
import { resolveOrg } from './auth.js';
import type { UserAccess } from '../login/user-access.js';
import { withConflicts } from './conflicts.js';
import { emailAddress, jsonBody, pageQuery, parse, presentKeys, queryString, timestamp } from './validation.js';

const email = emailAddress;
const optionalText = (max: number) => z.string().trim().min(1).max(max).nullable();

const fields = {
  email: email.nullable(),
  email_verified: z.boolean(),
  name: optionalText(200),
  given_name: optionalText(100),
  family_name: optionalText(100),
  phone_number: z
    .string()
    .regex(/^\+?[0-9 ().-]{3,32}$/, 'must be a phone number such as +1 555 0100')
    .nullable(),
  external_id: optionalText(255),
  roles: z.array(z.string().trim().min(1).max(100)).max(100),
  status: z.enum(['active', 'suspended']),
};
export const createSchema = z
  .strictObject({
    ...fields,
    email: fields.email.optional(),
    email_verified: fields.email_verified.default(false),
    name: fields.name.optional(),
    given_name: fields.given_name.optional(),
    family_name: fields.family_name.optional(),
    phone_number: fields.phone_number.optional(),
    external_id: fields.external_id.optional(),
    roles: fields.roles.default([]),
    status: fields.status.default('active'),
  })
  // A user nobody can find is useless: identities are linked later, but one handle is needed now.
  .refine((u) => u.email || u.external_id, { message: 'email or external_id is required', path: ['email'] });
export const patchSchema = z.strictObject(fields).partial();
export const userResponse = z.strictObject({
  id: z.string(),
  email: z.string().nullable(),
  email_verified: z.boolean(),
  name: z.string().nullable(),
  given_name: z.string().nullable(),
  family_name: z.string().nullable(),
  phone_number: z.string().nullable(),
  /** Partner JWTs may find the user by phone_number: false when only an IdP sent it (README "Partner sign-in"). */
  phone_number_verified: z.boolean(),
  /** Other upstreams' sign-ins with this email may be linked to the user: false when an IdP wrote it without vouching for it (README "Who gets in"). */
  email_vouched: z.boolean(),
  external_id: z.string().nullable(),
  roles: z.array(z.string()),
  status: z.enum(['active', 'suspended']),
  /** Who suspended the user (null while active); a SCIM directory cannot lift an admin's suspension. */
  suspended_by: z.enum(['admin', 'directory']).nullable(),
  identities: z.array(z.strictObject({ connection_id: z.string(), subject: z.string() })),
  created_at: timestamp,
  last_login_at: timestamp.nullable(),
});

/**
 * A user as the API shows it. `email_verified` is what applications receive in the claim (stored
 * flag and a verified domain of the organization, directory/email-verified.ts); setting it true
 * also vouches for the address (`email_vouched`), in any domain.
 */
export const userView = (u: User, org: Pick<Organization, 'verified_domains'>) => ({
  id: u.id,
  email: u.email,
  email_verified: userEmailVerified(u, org.verified_domains),
  name: u.name,
  given_name: u.given_name,
  family_name: u.family_name,
  phone_number: u.phone_number,
  phone_number_verified: u.phone_number_verified,
  email_vouched: u.email_vouched,
  external_id: u.external_id,
  roles: u.roles,
  status: u.status,
  suspended_by: u.suspended_by,
  identities: u.identities,
  created_at: u.created_at,
  last_login_at: u.last_login_at,
});

/** A user of this organization; a user of another one is as unknown as a missing one (404). */
export async function loadUser(store: Store, org: Organization, id: string): Promise<User> {
  const user = id.length <= 100 ? await store.users.get(id, org.id) : undefined;
  if (!user) throw notFound('user');
  return user;
}

/**
 * `PATCH /organizations/{org}/users/{id}`, for the admin API and the console alike: validates the
 * fields sent (`body`, a JSON object) with patchSchema, changes only those, and on suspension ends
 * the user's access everywhere. Throws HttpProblem (4xx) having changed nothing.
 */
export async function updateUser(store: Store, access: UserAccess | undefined, org: Organization, user: User, body: unknown): Promise<User> {
  const patch = presentKeys(parse(patchSchema, body), body);
  const next = { ...user, ...patch };
  if (!next.email && !next.external_id) {
    throw new HttpProblem(400, 'validation_failed', 'email: email or external_id is required', {
      errors: [{ field: 'email', message: 'email or external_id is required' }],
    });
  }
  // An admin who marks the email verified has checked who the user is: other upstreams' sign-ins
  // with this address may be linked to it again (directory/email-verified.ts, linkableByEmail). Only
  // a change vouches: a GET-then-PATCH round trip echoing email_verified: true does not.
  const vouches = patch.email_verified === true && !user.email_verified;
  const write = vouches ? { ...patch, email_vouched: true } : patch;
  const updated = await withConflicts(() => store.users.update(user.id, org.id, write));
  if (!updated) throw notFound('user');
  // A suspended user is signed out everywhere now, not when the sessions expire.
  if (user.status !== 'suspended' && updated.status === 'suspended') await access?.end(org.id, user.id, 'suspended');
  return updated;
}

/** The per-organization directory (docs/reference.md "Admin API" users). Identities are read-only here: logins link them. */
export function userRoutes(store: Store, access?: UserAccess): Router {
  const r = Router();

  async function load(req: Request) {
    const org = await resolveOrg(store, req);
    return { org, user: await loadUser(store, org, String(req.params.id ?? '')) };
  }

  r.post('/organizations/:org/users', async (req, res) => {
    const body = jsonBody(req);
    const org = await resolveOrg(store, req);
    const input = parse(createSchema, body);
    const user = await withConflicts(() => store.users.create(org.id, input));
    res.status(201).json(userView(user, org));
  });

  r.get('/organizations/:org/users', async (req, res) => {
    const org = await resolveOrg(store, req);
    const byEmail = queryString(req, 'email');
    if (byEmail && !isEmailAddress(byEmail.trim())) {
      throw new HttpProblem(400, 'validation_failed', 'email: must be an email address', { errors: [{ field: 'email', message: 'must be an email address' }] });
    }
    const page = await store.users.list(org.id, { ...pageQuery(req), ...(byEmail ? { email: byEmail } : {}) });
    res.json({ data: page.data.map((u) => userView(u, org)), next_cursor: page.next_cursor });
  });

  r.get('/organizations/:org/users/:id', async (req, res) => {
    const { org, user } = await load(req);
    res.json(userView(user, org));
  });

  r.patch('/organizations/:org/users/:id', async (req, res) => {
    const body = jsonBody(req);
    const { org, user } = await load(req);
    res.json(userView(await updateUser(store, access, org, user, body), org));
  });

  r.delete('/organizations/:org/users/:id', async (req, res) => {
    const { org, user } = await load(req);
    if (!(await store.users.delete(user.id, org.id))) throw notFound('user');
    await access?.end(org.id, user.id, 'deleted');
    res.status(204).end();
  });

  // docs/reference.md "Admin API" user sessions: end every gateway session, grant and refresh token; back-channel logout.
  r.post('/organizations/:org/users/:id/sessions/revoke', async (req, res) => {
    const { org, user } = await load(req);
    if (!access) throw new HttpProblem(503, 'unavailable', 'session revocation is not available in this process');
    await access.end(org.id, user.id, 'sessions_revoked');
    res.status(204).end();
  });

  return r;
}
