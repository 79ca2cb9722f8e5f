import { HttpProblem } from '../http/problem.js';
import { settingsContext, type Runtime } from '../runtime.js';
import type { Connection } from '../store/types.js';
import { metadataRefreshDue, refreshMetadata } from '../upstream/saml/index.js';

export interface RefreshReport {
  refreshed: string[];
  /** Changed by someone else while its metadata was fetched: left for the next run. */
  skipped: string[];
  failed: { id: string; error: string }[];
}

/** The IdP settings a refresh may change, named in its connection.updated event. */
const IDP_FIELDS = ['idp_entity_id', 'idp_sso_url', 'idp_sso_binding', 'idp_certificates'] as const;

/**
 * SAML connections configured by `metadata_url` are re-fetched once their metadata is older than
 * `maxAgeSeconds` (IdPs publish rotated certificates there first). One node refreshes a given
 * connection at a time (a short lock in the shared ephemeral store); a failed fetch keeps the
 * metadata the connection already has, so logins go on, and is logged. The new settings are
 * written only over the config they were made from: an admin's change that landed while the
 * metadata was fetched (a certificate removed, IdP-initiated sign-in turned off) stays, and the
 * next run starts from it (attacker review: the job wrote back what it had read). A refresh that
 * changes the IdP's settings is a `connection.updated` event naming the fields.
 */
export async function refreshDueMetadata(rt: Runtime, now = new Date(), maxAgeSeconds = 86_400): Promise<RefreshReport> {
  const report: RefreshReport = { refreshed: [], skipped: [], failed: [] };
  const due = (await rt.store.connections.listByType('saml')).filter((c) => metadataRefreshDue(c.config, now, maxAgeSeconds));
  await eachAtMost(byOrganizationInTurn(due), REFRESH_CONCURRENCY, async (c) => {
    if (!(await rt.ephemeral.setIfAbsent(`saml-metadata-refresh:${c.id}`, '1', 300))) return;
    try {
      const next = await refreshMetadata({ config: c.config, secrets: c.secrets }, settingsContext(rt, c.id), now);
      const written = await rt.store.connections.update(c.id, c.organization_id, { config: next.config }, { ifConfig: c.config });
      if (!written) {
        report.skipped.push(c.id);
        return;
      }
      report.refreshed.push(c.id);
      const changed = IDP_FIELDS.filter((f) => JSON.stringify(c.config[f]) !== JSON.stringify(next.config[f]));
      if (changed.length) {
        await rt.store.events.append({
          type: 'connection.updated',
          reason: null,
          organization_id: c.organization_id,
          connection_id: c.id,
          user_id: null,
          ip: null,
          detail: { source: 'metadata_refresh', changed },
        });
      }
    } catch (e) {
      const error = e instanceof Error ? e.message.slice(0, 300) : 'refresh failed';
      report.failed.push({ id: c.id, error });
      rt.logger.warn({ connection: c.id, error }, 'SAML metadata refresh failed; keeping the current metadata');
      // The organization's admins see it too (events, webhooks), once a day while it keeps failing:
      // a rotated certificate the IdP published must not go unnoticed until sign-ins fail.
      await noteFailure(rt, c, e, error, maxAgeSeconds).catch((err: unknown) => rt.logger.warn({ err, connection: c.id }, 'the failed refresh could not be recorded'));
    }
  });
  return report;
}

/** How many metadata fetches a refresh run has in flight at once. */
const REFRESH_CONCURRENCY = 8;

/**
 * The organizations' connections taken in turn (one of each organization, then the next of each):
 * one organization's metadata servers that hang (each fetch waits its timeout) delay another's
 * refresh by a turn, not by all of theirs (attacker review: serial, 720 of them held every
 * organization's certificate rotations for an hour).
 */
function byOrganizationInTurn(connections: Connection[]): Connection[] {
  const queues = new Map<string, Connection[]>();
  for (const c of connections) {
    const queue = queues.get(c.organization_id);
    if (queue) queue.push(c);
    else queues.set(c.organization_id, [c]);
  }
  const out: Connection[] = [];
  for (let i = 0; out.length < connections.length; i++) for (const q of queues.values()) if (q[i]) out.push(q[i]!);
  return out;
}

/** Runs `fn` over `items` in order, at most `limit` at once. */
async function eachAtMost<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function noteFailure(rt: Runtime, c: Connection, e: unknown, error: string, onceEverySeconds: number): Promise<void> {
  if (await rt.ephemeral.setIfAbsent(`saml-metadata-refresh-failed:${c.id}`, '1', onceEverySeconds)) {
    await rt.store.events.append({
      type: 'connection.metadata_refresh_failed',
      reason: e instanceof HttpProblem ? e.code : 'invalid_metadata',
      organization_id: c.organization_id,
      connection_id: c.id,
      user_id: null,
      ip: null,
      detail: { error },
    });
  }
}

/** Runs refreshDueMetadata every `intervalMs` until the returned stop function is called. */
export function startMetadataRefresh(rt: Runtime, intervalMs = 15 * 60_000): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await refreshDueMetadata(rt);
    } catch (e) {
      rt.logger.warn({ err: e }, 'SAML metadata refresh run failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
