import type { Request } from 'express';
import { z } from 'zod';
import { isEmailAddress } from '../directory/email.js';
import { HttpProblem } from '../http/problem.js';

/** Validates a body against a strict schema; the error names the first offending field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const errors = r.error.issues.map((i) => ({
    field: i.path.join('.') || (i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys?.join(',') : '') || 'body',
    message: i.message,
  }));
  const first = errors[0]!;
  throw new HttpProblem(400, 'validation_failed', `${first.field}: ${first.message}`, { errors });
}

/** JSON bodies only: a wrong Content-Type is a 415, not a silently empty body. */
export function jsonBody(req: Request): unknown {
  if (!req.is('application/json')) throw new HttpProblem(415, 'unsupported_media_type', 'Content-Type must be application/json');
  return req.body;
}

export const pageSchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(100).optional(),
});

/** Response schemas (GET /openapi.json): a timestamp as JSON writes a Date, and a page of a list. */
export const timestamp = z.iso.datetime({ offset: true });
export const listOf = <T extends z.ZodType>(item: T) => z.strictObject({ data: z.array(item), next_cursor: z.string().nullable() });

export function pageQuery(req: Request) {
  const { limit, cursor } = parse(pageSchema, { limit: req.query.limit, cursor: req.query.cursor });
  return { limit, cursor };
}

/** zod's email syntax and Portico's one rule that every way in applies (src/directory/email.ts: no trailing dot). */
export const emailAddress = z
  .email({ message: 'must be an email address', abort: true })
  .max(320)
  .refine(isEmailAddress, 'must be an email address');
export const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'lowercase letters, digits and dashes');
export const domain = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, 'must be a domain name such as example.com')
  .transform((d) => d.toLowerCase());
export const text = (max = 200) => z.string().trim().min(1).max(max);
export const queryString = (req: Request, name: string): string | undefined => {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > 320) throw new HttpProblem(400, 'validation_failed', `${name}: must be a single string`);
  return v;
};

/**
 * Keeps only the fields the client actually sent. A PATCH parsed with `.partial()` still fills
 * in schema defaults, which would silently reset fields the client did not mention.
 */
export function presentKeys<T extends Record<string, unknown>>(parsed: T, raw: unknown): Partial<T> {
  const sent = raw && typeof raw === 'object' ? new Set(Object.keys(raw)) : new Set<string>();
  return Object.fromEntries(Object.entries(parsed).filter(([k]) => sent.has(k))) as Partial<T>;
}

/** A JSON object body (not an array, not a scalar), for routes that split one body across schemas. */
export function jsonObject(req: Request): Record<string, unknown> {
  const body = jsonBody(req);
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpProblem(400, 'validation_failed', 'body: must be a JSON object', { errors: [{ field: 'body', message: 'must be a JSON object' }] });
  }
  return body as Record<string, unknown>;
}
