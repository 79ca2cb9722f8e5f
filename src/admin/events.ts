import { Router } from 'express';
import type { Store } from '../store/index.js';
import type { LoginEvent } from '../store/types.js';
import { resolveOrg } from './auth.js';
import { pageQuery, queryString } from './validation.js';

export const eventView = (e: LoginEvent) => ({
  id: e.id,
  type: e.type,
  reason: e.reason,
  connection_id: e.connection_id,
  user_id: e.user_id,
  ip: e.ip,
  at: e.at,
  detail: e.detail,
});

/** The login audit trail of one organization, newest first (DESIGN §5 events). Read-only. */
export function eventRoutes(store: Store): Router {
  const r = Router();
  r.get('/organizations/:org/events', async (req, res) => {
    const org = await resolveOrg(store, req);
    const filters: { type?: string; user_id?: string; connection_id?: string } = {};
    for (const name of ['type', 'user_id', 'connection_id'] as const) {
      const v = queryString(req, name);
      if (v !== undefined) filters[name] = v;
    }
    const page = await store.events.list(org.id, { ...pageQuery(req), ...filters });
    res.json({ data: page.data.map(eventView), next_cursor: page.next_cursor });
  });
  return r;
}
