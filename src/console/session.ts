/**
 * Console sessions: separate from the gateway session and from admin API keys. The browser holds a
 * random id (cookie `portico_console`, path /console); the ephemeral store (Redis with REDIS_URL,
 * so every process sees it) holds the rest under the id's hash. A session ends 8 hours after the
 * authentication it came from (absolute: a sign-in by SSO gets what is left of it) or 30 minutes
 * after its last request (idle), by the injected clock, or at sign-out. (The shell signs in only
 * with an authentication at most 30 minutes old: index.ts isFresh.)
 */
import { randomBytes } from 'node:crypto';
import type { EphemeralStore } from '../store/ephemeral.js';
import { hashToken } from '../store/secrets.js';

export const CONSOLE_COOKIE = 'portico_console';
export const CONSOLE_ABSOLUTE_MS = 8 * 3600 * 1000;
export const CONSOLE_IDLE_MS = 30 * 60 * 1000;

export interface ConsoleSessionRecord {
  userId: string;
  organizationId: string;
  /** The CSRF token every form of this session carries. */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  /** When it ends however active (ms): 8 h after the authentication it came from. */
  endsAt?: number;
  /** The connection the sign-in came through (`link` for a console link); it must stay enabled (provider/account.ts loginConnectionEnabled). */
  connectionId?: string;
  /**
   * The console application's grant the sign-in's code was issued under. The session lives only
   * while it does: ending the user's sessions (a revocation, a suspension) and a sign-out of every
   * application end the grant, and so the console session (attacker review: it outlived both).
   */
  grantId?: string;
}

/** A record written before `endsAt` existed ends 8 h after its sign-in. */
const endOf = (r: ConsoleSessionRecord) => r.endsAt ?? r.createdAt + CONSOLE_ABSOLUTE_MS;

/** 43 base64url characters (256 bits); anything else is not looked up. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
const key = (id: string) => `console-session:${hashToken(id)}`;

export class ConsoleSessions {
  private readonly space: EphemeralStore;
  constructor(
    ephemeral: EphemeralStore,
    private readonly now: () => number,
  ) {
    this.space = ephemeral.space('sessions');
  }

  /** Seconds the record must outlive its last write (the store's own expiry backs the clock's). */
  private ttlSeconds(r: ConsoleSessionRecord): number {
    const until = Math.min(endOf(r), r.lastSeenAt + CONSOLE_IDLE_MS);
    return Math.max(1, Math.ceil((until - this.now()) / 1000));
  }

  /** `authTime`: when the IdP authenticated the person (epoch seconds), from the redeemed code. */
  async create(user: { id: string; organization_id: string }, authTime?: number, connectionId?: string, grantId?: string): Promise<{ id: string; record: ConsoleSessionRecord }> {
    const id = randomBytes(32).toString('base64url');
    const at = this.now();
    const endsAt = Math.min(at, authTime === undefined ? Infinity : authTime * 1000) + CONSOLE_ABSOLUTE_MS;
    const record: ConsoleSessionRecord = {
      userId: user.id,
      organizationId: user.organization_id,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: at,
      lastSeenAt: at,
      endsAt,
      ...(connectionId ? { connectionId } : {}),
      ...(grantId ? { grantId } : {}),
    };
    await this.space.set(key(id), JSON.stringify(record), this.ttlSeconds(record));
    return { id, record };
  }

  /** The live session for this id, its idle clock restarted; undefined (and forgotten) when expired. */
  async touch(id: string | undefined): Promise<ConsoleSessionRecord | undefined> {
    if (!id || !SESSION_ID.test(id)) return undefined;
    const raw = await this.space.get(key(id));
    if (!raw) return undefined;
    let r: ConsoleSessionRecord;
    try {
      r = JSON.parse(raw) as ConsoleSessionRecord;
    } catch {
      return undefined;
    }
    const at = this.now();
    if (at >= endOf(r) || at >= r.lastSeenAt + CONSOLE_IDLE_MS) {
      await this.space.delete(key(id));
      return undefined;
    }
    const next = { ...r, lastSeenAt: at };
    await this.space.set(key(id), JSON.stringify(next), this.ttlSeconds(next));
    return next;
  }

  async end(id: string | undefined): Promise<void> {
    if (id && SESSION_ID.test(id)) await this.space.delete(key(id));
  }
}

/** One cookie's value from the Cookie header (no cookie-parser in the app). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
