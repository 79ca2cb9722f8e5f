import type { Database } from '../database.js';
import { newId } from '../ids.js';
import { hashToken, randomToken, type SecretBox } from '../secrets.js';
import type { ConnectionType, Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

/** The stable step keys of a setup link's progress (docs/reference.md "Admin API", setup links), in order. */
export const SETUP_STEPS = ['opened', 'provider_selected', 'idp_configured', 'test_succeeded', 'activated'] as const;
export type SetupStep = (typeof SETUP_STEPS)[number];
export type SetupStatus = 'pending' | 'in_progress' | 'completed' | 'expired' | 'revoked';

/** A completed link keeps working this long (the IT admin sees the result, re-tests). */
export const COMPLETED_GRACE_SECONDS = 3600;

export interface SetupLink {
  id: string;
  organization_id: string;
  admin_email: string | null;
  connection_type: 'saml' | 'oidc' | null;
  provider: string | null;
  /** The connection the link was made for (reconfigure) or the one it created. */
  connection_id: string | null;
  reconfigure: boolean;
  /** step key -> ISO time it was first reached. */
  progress: Partial<Record<SetupStep, string>>;
  /**
   * New IdP settings for a connection that is live (enabled): kept here, not on the connection,
   * until a test sign-in of exactly these settings passed and the IT admin switches (applyTested).
   */
  pending: PendingSettings | null;
  emailed: boolean;
  expires_at: Date;
  completed_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

/** The IdP settings of a connection (StoredSettings in src/upstream/settings.ts), secrets opened. */
export interface PendingSettings {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
}

/** What a settings fingerprint covers (src/setup/test-sign-in.ts settingsFingerprint). */
export interface FingerprintedSettings {
  type: ConnectionType;
  /** The IdP preset: it picks how the subject, email and name are read from the IdP's answer. */
  provider: string;
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  attribute_mapping: Record<string, string>;
  user_matching: 'jit' | 'existing';
  /** Whether the test linked (or refused) by email depends on it. */
  trust_email: boolean;
}

/** How pending settings are stored: the secrets sealed exactly as the connection stores them. */
interface SealedSettings {
  config: Record<string, unknown>;
  secrets_enc: string | null;
}

type Row = Omit<SetupLink, 'pending'> & { pending: SealedSettings | null };

export interface SetupLinkInput {
  admin_email: string | null;
  connection_type: 'saml' | 'oidc' | null;
  provider: string | null;
  connection_id: string | null;
  ttlSeconds: number;
}

const COLS =
  'id, organization_id, admin_email, connection_type, provider, connection_id, reconfigure, progress, pending, emailed, expires_at, completed_at, revoked_at, created_at';
const NOW_ISO = `to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export function setupLinkStatus(l: SetupLink, now = new Date()): SetupStatus {
  if (l.revoked_at) return 'revoked';
  if (l.completed_at) return 'completed';
  if (l.expires_at.getTime() <= now.getTime()) return 'expired';
  return Object.keys(l.progress).length ? 'in_progress' : 'pending';
}

/** Whether the link's URL still opens the portal: not revoked, not expired, not past the grace after completion. */
export function setupLinkUsable(l: SetupLink, now = new Date()): boolean {
  if (l.revoked_at || l.expires_at.getTime() <= now.getTime()) return false;
  return !l.completed_at || l.completed_at.getTime() + COMPLETED_GRACE_SECONDS * 1000 > now.getTime();
}

/**
 * Setup links live for days and must survive restarts: they are rows, and only the SHA-256 of the
 * 256-bit token is kept. Every portal request reads the row, so a revocation is seen by every
 * process at once (no cache).
 */
export class SetupLinkRepo {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  #open = (secretsEnc: string | null): Record<string, string> => (secretsEnc ? (JSON.parse(this.box.open(secretsEnc)) as Record<string, string>) : {});

  #toLink = (r: Row | undefined): SetupLink | undefined => {
    if (!r) return undefined;
    const { pending, ...rest } = r;
    return { ...rest, pending: pending ? { config: pending.config, secrets: this.#open(pending.secrets_enc) } : null };
  };

  async create(organizationId: string, input: SetupLinkInput): Promise<{ token: string; link: SetupLink }> {
    const token = randomToken('', 32);
    const [row] = await this.db.query<Row>(
      `insert into setup_links (id, organization_id, token_hash, admin_email, connection_type, provider, connection_id, reconfigure, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9)) returning ${COLS}`,
      [
        newId('sul'),
        organizationId,
        hashToken(token),
        input.admin_email,
        input.connection_type,
        input.provider,
        input.connection_id,
        input.connection_id !== null,
        input.ttlSeconds,
      ],
    );
    return { token, link: this.#toLink(row)! };
  }

  async byToken(token: string): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<Row>(`select ${COLS} from setup_links where token_hash = $1`, [hashToken(token)]);
    return this.#toLink(row);
  }

  async get(id: string, organizationId: string): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<Row>(`select ${COLS} from setup_links where id = $1 and organization_id = $2`, [id, organizationId]);
    return this.#toLink(row);
  }

  /** Newest first. */
  async list(organizationId: string, q: PageQuery): Promise<Page<SetupLink>> {
    const rows = await this.db.query<Row>(
      `select ${COLS} from setup_links where organization_id = $1 and ($2::text is null or id < $2) order by id desc limit $3`,
      [organizationId, q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows.map((r) => this.#toLink(r)!), q.limit, (l) => l.id);
  }

  /** Every organization's links, newest first (the console's "setup links" page); the primary key orders them. */
  async listAll(q: PageQuery): Promise<Page<SetupLink>> {
    const rows = await this.db.query<Row>(
      `select ${COLS} from setup_links where ($1::text is null or id < $1) order by id desc limit $2`,
      [q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows.map((r) => this.#toLink(r)!), q.limit, (l) => l.id);
  }

  async revoke(id: string, organizationId: string): Promise<boolean> {
    const rows = await this.db.query(
      'update setup_links set revoked_at = coalesce(revoked_at, now()) where id = $1 and organization_id = $2 returning id',
      [id, organizationId],
    );
    return rows.length > 0;
  }

  /** Records a step the first time it is reached (later visits keep the first time). */
  async reach(id: string, step: SetupStep): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<Row>(
      `update setup_links set progress = case when progress ? $2::text then progress else progress || jsonb_build_object($2::text, to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) end,
         completed_at = case when $2::text = 'activated' then coalesce(completed_at, now()) else completed_at end
       where id = $1 returning ${COLS}`,
      [id, step],
    );
    return this.#toLink(row);
  }

  /**
   * New IdP settings were entered: idp_configured now, and an earlier successful test no longer
   * counts. `pending` (a live connection): they are kept on the link, not on the connection;
   * without it (saved onto a disabled connection) any earlier pending settings go.
   */
  async configured(id: string, pending?: PendingSettings): Promise<SetupLink | undefined> {
    const sealed: SealedSettings | null = pending ? { config: pending.config, secrets_enc: this.#seal(pending.secrets) } : null;
    const [row] = await this.db.query<Row>(
      `update setup_links set progress = (progress - 'test_succeeded') || jsonb_build_object('idp_configured', ${NOW_ISO}),
         pending = $2::jsonb, tested_settings = null
       where id = $1 returning ${COLS}`,
      [id, sealed ? JSON.stringify(sealed) : null],
    );
    return this.#toLink(row);
  }

  #seal(secrets: Record<string, string>): string | null {
    return Object.keys(secrets).length ? this.box.seal(JSON.stringify(secrets)) : null;
  }

  /** A test sign-in of the settings with this fingerprint succeeded: test_succeeded, and what it tested. */
  async testSucceeded(id: string, fingerprint: string): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<Row>(
      `update setup_links set tested_settings = $2,
         progress = case when progress ? 'test_succeeded' then progress else progress || jsonb_build_object('test_succeeded', ${NOW_ISO}) end
       where id = $1 returning ${COLS}`,
      [id, fingerprint],
    );
    return this.#toLink(row);
  }

  /**
   * Activate / switch, the one check-and-write: in one transaction (both rows locked), the
   * settings that will be live (the link's pending ones, else the connection's own) must have the
   * fingerprint of the last successful test; then the pending settings are copied onto the
   * connection as stored (sealed secrets unchanged), the connection is enabled, pending is cleared
   * and the link reaches `activated`. False (nothing written) when they were not tested.
   */
  async applyTested(id: string, organizationId: string, fingerprint: (s: FingerprintedSettings) => string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [link] = await tx.query<{ connection_id: string | null; pending: SealedSettings | null; tested_settings: string | null }>(
        'select connection_id, pending, tested_settings from setup_links where id = $1 and organization_id = $2 for update',
        [id, organizationId],
      );
      if (!link?.connection_id || !link.tested_settings) return false;
      const [conn] = await tx.query<Omit<FingerprintedSettings, 'secrets'> & { secrets_enc: string | null }>(
        'select type, provider, config, secrets_enc, attribute_mapping, user_matching, trust_email from connections where id = $1 and organization_id = $2 for update',
        [link.connection_id, organizationId],
      );
      if (!conn) return false;
      const next: SealedSettings = link.pending ?? { config: conn.config, secrets_enc: conn.secrets_enc };
      const fp = fingerprint({ type: conn.type, provider: conn.provider, config: next.config, secrets: this.#open(next.secrets_enc), attribute_mapping: conn.attribute_mapping, user_matching: conn.user_matching, trust_email: conn.trust_email });
      if (fp !== link.tested_settings) return false;
      await tx.query('update connections set config = $3::jsonb, secrets_enc = $4, enabled = true, updated_at = now() where id = $1 and organization_id = $2', [
        link.connection_id,
        organizationId,
        JSON.stringify(next.config),
        next.secrets_enc,
      ]);
      await tx.query(
        `update setup_links set pending = null,
           progress = case when progress ? 'activated' then progress else progress || jsonb_build_object('activated', ${NOW_ISO}) end,
           completed_at = coalesce(completed_at, now())
         where id = $1`,
        [id],
      );
      return true;
    });
  }

  /** The IT admin's choice of IdP (and the connection made for it). */
  async choose(id: string, choice: { connection_type: 'saml' | 'oidc'; provider: string; connection_id: string }): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<Row>(
      `update setup_links set connection_type = $2, provider = $3, connection_id = $4 where id = $1 returning ${COLS}`,
      [id, choice.connection_type, choice.provider, choice.connection_id],
    );
    return this.#toLink(row);
  }

  async markEmailed(id: string): Promise<void> {
    await this.db.query('update setup_links set emailed = true where id = $1', [id]);
  }
}
