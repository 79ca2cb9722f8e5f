/**
 * The console's "Login traces" (issue: operator console): every login attempt, filterable by
 * organization, connection, user, reason, outcome and time, the URL's query string being the
 * shareable view (other pages link to `?user=usr_…`, `?connection=con_…`); and one attempt's page,
 * which explains a refusal in plain words (src/setup/explain.ts, the same words the setup portal's
 * test sign-in uses) and shows the evidence kept for it (src/upstream/evidence.ts) until
 * PORTICO_TRACE_RETENTION_DAYS purges it. Read-only: viewers and operators see the same.
 *
 *   GET /console/traces?organization=&connection=&user=&reason=&outcome=&from=&to=&cursor=
 *   GET /console/traces/:id
 */
import { Router, type Request } from 'express';
import { explain } from '../setup/explain.js';
import { DEFAULT_TRACE_RETENTION_DAYS } from '../signals/trace-retention.js';
import { REASON_CODES } from '../upstream/registry.js';
import type { ConsoleDeps } from './context.js';
import { FILTER_PARAMS, FilterError, parseTraceFilters, type TraceFilters } from './trace-filters.js';
import { outcomeOf, renderFilterError, renderTraceDetail, renderTraceList } from './trace-view.js';

export const TRACE_PAGE_SIZE = 50;
const EVENT_ID = /^evt_[0-9a-z]{9}[0-9a-f]{16}$/;
const REASONS = [...REASON_CODES].sort();

/** The filter parameters as given (strings only), to refill the form and build the next page's URL. */
function rawFilters(req: Request): Record<string, string | undefined> {
  return Object.fromEntries(FILTER_PARAMS.map((p) => [p, typeof req.query[p] === 'string' ? (req.query[p] as string).trim().slice(0, 200) : undefined]));
}

export function tracePages(deps: ConsoleDeps): Router {
  const r = Router();
  const store = deps.rt.store;

  r.get('/traces', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const raw = rawFilters(req);
    let f: TraceFilters;
    try {
      f = parseTraceFilters(req.query as Record<string, unknown>);
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      return deps.render(res, { title: 'Login traces', section: 'traces', body: renderFilterError(raw, REASONS, e.message) }, 400);
    }
    // An organization filter takes a slug too; an unknown one matches nothing (and says so).
    let organizationId: string | undefined;
    let note: string | undefined;
    if (f.organization) {
      const org = await store.organizations.get(f.organization);
      organizationId = org?.id ?? f.organization;
      if (!org) note = `No organization is called “${f.organization}”.`;
    }
    const page = await store.traces.list({
      limit: TRACE_PAGE_SIZE,
      ...(organizationId ? { organization_id: organizationId } : {}),
      ...(f.connection ? { connection_id: f.connection } : {}),
      ...(f.user ? { user_id: f.user } : {}),
      ...(f.reason ? { reason: f.reason } : {}),
      ...(f.outcome ? { outcome: f.outcome } : {}),
      ...(f.from ? { from: f.from } : {}),
      ...(f.to ? { to: f.to } : {}),
      ...(f.cursor ? { cursor: f.cursor } : {}),
    });
    const orgNames = new Map<string, string>();
    const orgIds = [...new Set(page.data.map((e) => e.organization_id).filter((id): id is string => !!id))];
    await Promise.all(
      orgIds.map(async (id) => {
        const org = await store.organizations.get(id);
        if (org) orgNames.set(id, org.name);
      }),
    );
    deps.render(res, { title: 'Login traces', section: 'traces', body: renderTraceList({ raw, page, reasons: REASONS, orgNames, ...(note ? { note } : {}) }) });
  });

  r.get('/traces/:id', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const id = String(req.params.id ?? '');
    const event = EVENT_ID.test(id) ? await store.traces.get(id) : undefined;
    if (!event) {
      return deps.render(
        res,
        { title: 'Login attempt not found', section: 'traces', body: '<p>There is no login attempt with this id. <a href="/console/traces">All login attempts</a></p>' },
        404,
      );
    }
    const org = event.organization_id ? await store.organizations.get(event.organization_id) : undefined;
    const failed = outcomeOf(event) === 'failed';
    deps.render(res, {
      title: failed ? 'Failed login attempt' : 'Successful login',
      section: 'traces',
      body: renderTraceDetail({
        event,
        ...(failed ? { explanation: explain(event.reason ?? 'malformed', event.detail) } : {}),
        ...(org ? { organizationName: org.name } : {}),
        retentionDays: deps.rt.config.traceRetentionDays ?? DEFAULT_TRACE_RETENTION_DAYS,
      }),
    });
  });
  return r;
}
