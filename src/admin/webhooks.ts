import { Router, type Request } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import { checkFetchableUrl, UrlRefusedError } from '../http/safe-fetch.js';
import type { Runtime } from '../runtime.js';
import { WebhookLimitError, type Webhook, type WebhookDelivery } from '../store/repos/webhooks.js';
import { jsonBody, pageQuery, parse, timestamp } from './validation.js';

/** `*`, an event type (`login.failed`), or a prefix of dot-separated names ending in `.*` (`login.*`). */
const eventPattern = z
  .string()
  .max(100)
  .regex(/^(?:\*|[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*(?:\.\*)?)$/, 'an event type, or a prefix ending in .* (login.*), or *');

export const createSchema = z.strictObject({
  url: z.string().min(1).max(2000),
  events: z.array(eventPattern).min(1).max(50),
  organization: z.string().min(1).max(100).optional(),
});

/** What webhookView and deliveryView answer (GET /openapi.json). */
export const webhookResponse = z.strictObject({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  organization: z.string().nullable(),
  created_at: timestamp,
});
/** Creation: the signing secret, shown this once. */
export const createdWebhookResponse = webhookResponse.extend({ secret: z.string() });
export const deliveryResponse = z.strictObject({
  event_id: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  last_attempt_at: timestamp.nullable(),
  last_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  next_attempt_at: timestamp.nullable(),
  delivered_at: timestamp.nullable(),
  created_at: timestamp,
});

export const webhookView = (w: Webhook) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  organization: w.organization_id,
  created_at: w.created_at,
});

export const deliveryView = (d: WebhookDelivery) => ({
  event_id: d.event_id,
  status: d.status,
  attempts: d.attempts,
  last_attempt_at: d.last_attempt_at,
  last_status: d.last_status,
  last_error: d.last_error,
  next_attempt_at: d.status === 'pending' ? d.next_attempt_at : null,
  delivered_at: d.delivered_at,
  created_at: d.created_at,
});

/**
 * Webhooks (docs/reference.md "Admin API"): `POST, GET /webhooks`, `GET, DELETE /webhooks/{id}` and the delivery log
 * `GET /webhooks/{id}/deliveries`. The signing secret is shown once, at creation. An organization's
 * key manages only that organization's webhooks (which receive only its events); an operator's
 * webhook without `organization` receives every event. The URL must pass the SSRF rules of
 * admin-supplied URLs now (scheme, IP literal) and is checked again on every delivery (rt.fetch:
 * what the name resolves to at that time).
 */
export function webhookRoutes(rt: Runtime): Router {
  const r = Router();
  const { store } = rt;

  /** The webhook, if it is within the caller's scope; else 404 as for one that does not exist. */
  async function load(req: Request): Promise<Webhook> {
    const id = String(req.params.id);
    const w = id.length <= 100 ? await store.webhooks.get(id) : undefined;
    const callerOrg = req.admin?.organizationId ?? null;
    if (!w || (callerOrg && w.organization_id !== callerOrg)) throw notFound('webhook');
    return w;
  }

  r.post('/webhooks', async (req, res) => {
    const input = parse(createSchema, jsonBody(req));
    try {
      checkFetchableUrl(input.url, { allowPrivate: rt.config.allowPrivateUrls });
    } catch (e) {
      if (!(e instanceof UrlRefusedError)) throw e;
      throw new HttpProblem(400, 'validation_failed', `url: ${e.message}`, { errors: [{ field: 'url', message: e.message }] });
    }
    const callerOrg = req.admin?.organizationId ?? null;
    let organizationId = callerOrg;
    if (input.organization !== undefined) {
      const org = await store.organizations.get(input.organization);
      if (!org || (callerOrg && callerOrg !== org.id)) throw notFound('organization');
      organizationId = org.id;
    }
    const { webhook, secret } = await store.webhooks.create({ organization_id: organizationId, url: input.url, events: input.events }).catch((e: unknown) => {
      throw e instanceof WebhookLimitError ? new HttpProblem(409, 'limit_reached', e.message) : e;
    });
    res.status(201).json({ ...webhookView(webhook), secret });
  });

  r.get('/webhooks', async (req, res) => {
    const page = await store.webhooks.list(req.admin?.organizationId ?? null, pageQuery(req));
    res.json({ data: page.data.map(webhookView), next_cursor: page.next_cursor });
  });

  r.get('/webhooks/:id', async (req, res) => {
    res.json(webhookView(await load(req)));
  });

  r.get('/webhooks/:id/deliveries', async (req, res) => {
    const w = await load(req);
    const page = await store.webhooks.deliveries(w.id, pageQuery(req));
    res.json({ data: page.data.map(deliveryView), next_cursor: page.next_cursor });
  });

  r.delete('/webhooks/:id', async (req, res) => {
    const w = await load(req);
    await store.webhooks.delete(w.id);
    res.status(204).end();
  });

  return r;
}
