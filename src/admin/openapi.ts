/**
 * GET /api/v1/openapi.json: an OpenAPI 3.1 description of the admin API, generated from the route
 * table (api-routes.ts) and the zod schemas the routes validate with (zod's JSON Schema output is
 * draft 2020-12, OpenAPI 3.1's dialect).
 */
import { z } from 'zod';
import { ADMIN_ROUTES, type AdminRoute } from './api-routes.js';
import { pageSchema } from './validation.js';

/** Problem codes any route may answer (docs/reference.md "Admin API"), by status. */
const AUTHENTICATED_ERRORS: Record<number, string[]> = {
  // Bodies are parsed (and checked for NUL characters) before any route runs.
  400: ['invalid_json', 'validation_failed', 'request_aborted', 'invalid_request'],
  401: ['unauthorized', 'invalid_api_key'],
  413: ['payload_too_large'],
  415: ['unsupported_media_type'],
  429: ['rate_limited'],
  500: ['internal_error'],
  503: ['capacity_exceeded', 'database_unavailable', 'store_unavailable'],
};
const PUBLIC_ERRORS: Record<number, string[]> = { 500: ['internal_error'] };

export const COMMON_ERRORS = AUTHENTICATED_ERRORS;

/** The problem codes a route can answer, by status. */
export function routeErrors(route: AdminRoute): Record<number, string[]> {
  const out: Record<number, Set<string>> = {};
  const add = (status: number, codes: string[]) => codes.forEach((c) => (out[status] ??= new Set()).add(c));
  for (const [s, codes] of Object.entries(route.public ? PUBLIC_ERRORS : AUTHENTICATED_ERRORS)) add(Number(s), codes);
  for (const [s, codes] of Object.entries(route.errors ?? {})) add(Number(s), codes ?? []);
  // A path parameter names something that may not exist (or lie outside the key's organization).
  if (route.path.includes('{') || route.operatorOnly) add(404, ['not_found']);
  if (route.paged || route.query) add(400, ['validation_failed']);
  return Object.fromEntries(Object.entries(out).map(([s, codes]) => [s, [...codes].sort()]));
}

/** Every stable problem code of the admin API. */
export const ADMIN_PROBLEM_CODES = [...new Set(ADMIN_ROUTES.flatMap((r) => Object.values(routeErrors(r)).flat()))].sort();

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details with a stable `code`',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', enum: ADMIN_PROBLEM_CODES },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      description: 'validation_failed: each field and what is wrong with it',
      items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};

type Json = Record<string, unknown>;
/** zod -> JSON Schema (2020-12); request bodies as clients write them, responses as the server writes them. */
const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return rest;
};

function requestBody(route: AdminRoute): Json | undefined {
  const body = route.body;
  if (!body) return undefined;
  if ('raw' in body) {
    return { required: true, description: body.description, content: Object.fromEntries(body.raw.map((t) => [t, { schema: { type: 'string' } }])) };
  }
  const schema = Array.isArray(body) ? { oneOf: body.map((b) => jsonSchema(b, 'input')) } : jsonSchema(body, 'input');
  return { required: true, content: { 'application/json': { schema } } };
}

function parameters(route: AdminRoute): Json[] {
  const params: Json[] = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
    ...(m[1] === 'org' ? { description: 'organization id or slug' } : {}),
  }));
  if (route.paged) {
    const page = jsonSchema(pageSchema, 'input') as { properties: Record<string, Json> };
    params.push({ name: 'limit', in: 'query', schema: page.properties.limit, description: '1-200, default 50' });
    params.push({ name: 'cursor', in: 'query', schema: page.properties.cursor, description: 'next_cursor of the previous page' });
  }
  for (const [name, description] of Object.entries(route.query ?? {})) params.push({ name, in: 'query', schema: { type: 'string' }, description });
  return params;
}

function responses(route: AdminRoute): Json {
  const out: Json = {
    [route.status]: route.response
      ? { description: 'success', content: { 'application/json': { schema: jsonSchema(route.response, 'output') } } }
      : { description: 'done; no content' },
  };
  for (const [status, codes] of Object.entries(routeErrors(route))) {
    out[status] = {
      description: codes.join(', '),
      content: {
        'application/problem+json': {
          schema: { allOf: [{ $ref: '#/components/schemas/Problem' }, { properties: { status: { const: Number(status) }, code: { enum: codes } } }] },
        },
      },
    };
  }
  return out;
}

const operationId = (route: AdminRoute) =>
  `${route.method}${route.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`;

export function openApiDocument(issuer: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of ADMIN_ROUTES) {
    const body = requestBody(route);
    const params = parameters(route);
    (paths[route.path] ??= {})[route.method] = {
      operationId: operationId(route),
      tags: [route.tag],
      summary: route.summary,
      ...(route.operatorOnly ? { description: 'Operator keys only; an organization-scoped key gets 404.' } : {}),
      ...(route.public ? { security: [] } : {}),
      ...(params.length ? { parameters: params } : {}),
      ...(body ? { requestBody: body } : {}),
      responses: responses(route),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Portico admin API',
      version: '1',
      description:
        'Organizations, applications, connections, users, login links, API keys and events. Errors are application/problem+json with a stable `code`.',
    },
    servers: [{ url: `${issuer}/api/v1` }],
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key (pk_…) or PORTICO_ADMIN_API_KEY' } },
      schemas: { Problem: problemSchema },
    },
  };
}
