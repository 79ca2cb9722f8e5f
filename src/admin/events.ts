import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Store } from '../store/index.js';
import type { LoginEvent } from '../store/types.js';
import { operatorOnly, resolveOrg } from './auth.js';
import { pageQuery, queryString, timestamp } from './validation.js';

export const eventResponse = z.strictObject({
  id: z.string(),
  organization_id: z.string().nullable(),
  type: z.string().describe('login.succeeded, login.failed, …'),
  reason: z.string().nullable().describe('a stable reason code (docs/reference.md)'),
  connection_id: z.string().nullable(),
  user_id: z.string().nullable(),
  ip: z.string().nullable(),
  at: timestamp,
  detail: z.record(z.string(), z.unknown()),
});

export const eventView = (e: LoginEvent) => ({
  id: e.id,
  organization_id: e.organization_id,
  type: e.type,
  reason: e.reason,
  connection_id: e.connection_id,
  user_id: e.user_id,
  ip: e.ip,
  at: e.at,
  detail: e.detail,
});

/**
 * The login audit trail of one organization, newest first (docs/reference.md "Admin API" events). Read-only.
 * Operators also get `GET /events`: every organization's, plus refusals that could not be tied to
 * one (an unregistered redirect_uri sent without routing hints, a login link that matches nothing).
 */
export function eventRoutes(store: Store): Router {
  const r = Router();
  const list = async (organizationId: string | null, req: Request, res: Response) => {
    const filters: { type?: string; user_id?: string; connection_id?: string } = {};
    for (const name of ['type', 'user_id', 'connection_id'] as const) {
      const v = queryString(req, name);
      if (v !== undefined) filters[name] = v;
    }
    const page = await store.events.list(organizationId, { ...pageQuery(req), ...filters });
    res.json({ data: page.data.map(eventView), next_cursor: page.next_cursor });
  };
  r.get('/organizations/:org/events', async (req, res) => list((await resolveOrg(store, req)).id, req, res));
  r.get('/events', operatorOnly, async (req, res) => list(null, req, res));
  return r;
}
