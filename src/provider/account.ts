/**
 * Accounts for oidc-provider: the Portico user (sub = user id) and its organization, plus what
 * THIS login was (which connection, which methods) — per login, not per user row.
 *
 * oidc-provider carries `amr` from the interaction result into the session, code and id_token, but
 * has no slot for the connection id. finishLogin records it and the login is stored under the
 * browser session's uid (`login:<sessionUid>`), which every code, access token and refresh token
 * of that session carries as `sessionUid`. A re-login in the same session overwrites the record,
 * but keeps the connections of the logins before it (`earlier`), which the session's earlier
 * grants came from: each must still be enabled for any token of the session to be answered.
 */
import type { Account, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Store } from '../store/index.js';
import { userEmailVerified } from '../directory/email-verified.js';
import { LINK_CONNECTION_ID } from '../upstream/link/identity.js';
import type { RequestPrefetch } from './prefetch.js';

export interface LoginRecord {
  /** Connection id of the login. */
  idp: string;
  amr: string[];
  /** Seconds since the epoch. */
  auth_time: number;
  /** When the IdP says the person authenticated (seconds), where known: login/session.ts GatewayLogin.idpAuthTime. */
  idp_auth_time?: number;
  /** A login link's sign-in: the application the link was made for (the console takes only its own). */
  link_client?: string;
  /**
   * The connections of earlier logins in the same session, when another was used since
   * (recordLogin). Attacker review: a refresh token of a sign-in through C1 was answered, with
   * `idp` C2, after C1 was disabled, once the person signed in again through C2 in that browser.
   */
  earlier?: string[];
}

/** Which claims each scope releases (id_token and userinfo use the same map). */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub', 'org_id', 'org', 'roles', 'idp', 'amr', 'auth_time'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name'],
};

export const SCOPES = ['openid', 'email', 'profile', 'offline_access'];

/**
 * The last login of each browser session (oidc-provider's session uid), read for the claims of every
 * token issued in that session (`idp`, `amr`, `auth_time`), refreshes included. A record is needed as
 * long as the longest grant issued from its session (ttl.ts): every write and every grant save asks
 * for its own time, and the record keeps the longest of them (never shortened).
 */
export interface LoginRecords {
  put(sessionUid: string, login: LoginRecord, seconds: number): Promise<void>;
  /** Keeps an existing record at least `seconds`. */
  keep(sessionUid: string, seconds: number): Promise<void>;
  get(sessionUid: string): Promise<LoginRecord | undefined>;
}

/** `prefetch`: where the token endpoint's read of a code left the record (adapter.ts, on Redis). */
export function loginRecords(store: EphemeralStore, prefetch?: RequestPrefetch): LoginRecords {
  const ephemeral = store.space('sessions');
  // The adapter's key space (adapter.ts PREFIX): its read-ahead script builds the same key.
  const key = (uid: string) => `op:login:${uid}`;
  return {
    put: async (uid, login, seconds) => {
      prefetch?.forget(key(uid));
      await ephemeral.keepAtLeast(key(uid), Math.max(1, seconds), JSON.stringify(login));
    },
    keep: async (uid, seconds) => {
      prefetch?.forget(key(uid));
      await ephemeral.keepAtLeast(key(uid), Math.max(1, seconds));
    },
    async get(uid) {
      const hit = prefetch?.take(key(uid));
      const raw = hit?.hit ? hit.value : await ephemeral.get(key(uid));
      return raw ? (JSON.parse(raw) as LoginRecord) : undefined;
    },
  };
}

export interface PorticoAccount extends Account {
  /** Every claim Portico can release for this user and login, before scope filtering. */
  portico: Record<string, unknown>;
}

/**
 * Whether a sign-in through `connectionId` may still answer for its user: the connection still
 * exists in the organization and is enabled (a login link's `link` has no row and always may).
 * SECURITY: disabling or deleting a connection ends what its sign-ins can do at once — single
 * sign-on from the gateway session (login/routes.ts) or the provider session, refreshes, userinfo —
 * not when the sessions expire (attacker review: up to 24 h of new codes after the switch).
 * Enabling it again gives them back. Read from the in-process configuration cache.
 */
export async function loginConnectionEnabled(store: Store, organizationId: string, connectionId: string | undefined): Promise<boolean> {
  if (!connectionId || connectionId === LINK_CONNECTION_ID) return true;
  const connection = await store.connections.get(connectionId, organizationId);
  return connection?.enabled === true;
}

/**
 * Claims of an active user; undefined for a missing or suspended user, or one signed in through a
 * connection since disabled or deleted (so no tokens are issued, and oidc-provider asks for a new sign-in).
 */
export async function loadAccount(store: Store, logins: LoginRecords, userId: string, sessionUid?: string): Promise<PorticoAccount | undefined> {
  if (typeof userId !== 'string' || !userId.startsWith('usr_') || userId.length > 100) return undefined;
  const user = await store.users.getWithoutIdentities(userId);
  if (!user || user.status !== 'active') return undefined;
  const [org, login] = await Promise.all([store.organizations.get(user.organization_id), sessionUid ? logins.get(sessionUid) : undefined]);
  if (!org) return undefined;
  for (const idp of [login?.idp, ...(login?.earlier ?? [])]) if (!(await loginConnectionEnabled(store, org.id, idp))) return undefined;
  const all: Record<string, unknown> = {
    sub: user.id,
    email: user.email ?? undefined,
    // docs/reference.md "Rules every part keeps": never true for an address outside the organization's verified domains, whoever set it.
    email_verified: user.email ? userEmailVerified(user, org.verified_domains) : undefined,
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

/**
 * `sid` in every id_token (docs/reference.md "Tokens"), not only for clients with back-channel logout: the value is
 * oidc-provider's own per-client session id (the one its logout features send), released through
 * the account's claims for the id_token — the documented `findAccount` route. oidc-provider puts
 * the code's `sid` there itself only for back-channel logout clients (Client#includeSid); when it
 * does, the token's value is the same one. Looked up only when an id_token is being made.
 */
async function sessionSid(ctx: KoaContextWithOIDC, token: TokenRef | undefined): Promise<string | undefined> {
  if (token?.sid) return token.sid;
  if (!token?.sessionUid || !token.clientId) return undefined;
  const session = await ctx.oidc.provider.Session.findByUid(token.sessionUid);
  return session?.sidFor(token.clientId);
}

interface TokenRef {
  sessionUid?: string;
  sid?: string;
  clientId?: string;
}

export function findAccountFor(store: Store, logins: LoginRecords): FindAccount {
  return async (ctx, sub, token) => {
    const ref = token as TokenRef | undefined;
    // Without a token (an authorization request answered from the browser's session): that session's login.
    const sessionUid = ref?.sessionUid ?? (ctx as Partial<KoaContextWithOIDC> | undefined)?.oidc?.session?.uid;
    const account = await loadAccount(store, logins, sub, sessionUid);
    if (!account) return undefined;
    const plain = account.claims;
    return {
      ...account,
      claims: async (use, scope, claims, rejected) => {
        const base = await plain(use, scope, claims, rejected);
        const sid = use === 'id_token' ? await sessionSid(ctx, ref) : undefined;
        return sid ? { ...base, sid } : base;
      },
    };
  };
}
