/**
 * Accounts for oidc-provider: the Portico user (sub = user id) and its organization, plus what
 * THIS login was (which connection, which methods) — per login, not per user row.
 *
 * oidc-provider carries `amr` from the interaction result into the session, code and id_token, but
 * has no slot for the connection id. finishLogin records it and the login is stored under the
 * browser session's uid (`login:<sessionUid>`), which every code, access token and refresh token
 * of that session carries as `sessionUid`. A re-login in the same session overwrites the record.
 */
import type { Account, FindAccount } from 'oidc-provider';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Store } from '../store/index.js';
import { inVerifiedDomain } from '../directory/email-verified.js';

export interface LoginRecord {
  /** Connection id of the login. */
  idp: string;
  amr: string[];
  /** Seconds since the epoch. */
  auth_time: number;
}

/** Which claims each scope releases (id_token, userinfo and the access token use the same map). */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub', 'org_id', 'org', 'roles', 'idp', 'amr', 'auth_time'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name'],
};

export const SCOPES = ['openid', 'email', 'profile', 'offline_access'];

export function claimsForScope(all: Record<string, unknown>, scope: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of (scope ?? '').split(' ')) {
    for (const c of SCOPE_CLAIMS[s] ?? []) if (all[c] !== undefined) out[c] = all[c];
  }
  return out;
}

export interface LoginRecords {
  put(sessionUid: string, login: LoginRecord): Promise<void>;
  get(sessionUid: string): Promise<LoginRecord | undefined>;
}

export function loginRecords(store: EphemeralStore, ttlSeconds: number): LoginRecords {
  const ephemeral = store.space('sessions');
  const key = (uid: string) => `op:login:${uid}`;
  return {
    put: (uid, login) => ephemeral.set(key(uid), JSON.stringify(login), ttlSeconds),
    async get(uid) {
      const raw = await ephemeral.get(key(uid));
      return raw ? (JSON.parse(raw) as LoginRecord) : undefined;
    },
  };
}

export interface PorticoAccount extends Account {
  /** Every claim Portico can release for this user and login, before scope filtering. */
  portico: Record<string, unknown>;
}

/** Claims of an active user; undefined for a missing or suspended user (so no tokens are issued). */
export async function loadAccount(store: Store, logins: LoginRecords, userId: string, sessionUid?: string): Promise<PorticoAccount | undefined> {
  if (typeof userId !== 'string' || !userId.startsWith('usr_') || userId.length > 100) return undefined;
  const user = await store.users.get(userId);
  if (!user || user.status !== 'active') return undefined;
  const [org, login] = await Promise.all([store.organizations.get(user.organization_id), sessionUid ? logins.get(sessionUid) : undefined]);
  if (!org) return undefined;
  const all: Record<string, unknown> = {
    sub: user.id,
    email: user.email ?? undefined,
    // docs/reference.md "Rules every part keeps": never true for an address outside the organization's verified domains, whoever set it.
    email_verified: user.email ? user.email_verified && inVerifiedDomain(user.email, org.verified_domains) : undefined,
    name: user.name ?? undefined,
    given_name: user.given_name ?? undefined,
    family_name: user.family_name ?? undefined,
    org_id: org.id,
    org: org.slug,
    roles: user.roles,
    idp: login?.idp,
    amr: login?.amr,
    auth_time: login?.auth_time,
  };
  for (const k of Object.keys(all)) if (all[k] === undefined) delete all[k];
  return {
    accountId: user.id,
    portico: all,
    // oidc-provider masks the result by the granted scopes (configuration `claims`) and, for the
    // id_token, overrides amr/auth_time with the values it carried from the login itself.
    claims: () => ({ ...all, sub: user.id }),
  };
}

export function findAccountFor(store: Store, logins: LoginRecords): FindAccount {
  return (_ctx, sub, token) => loadAccount(store, logins, sub, (token as { sessionUid?: string } | undefined)?.sessionUid);
}
