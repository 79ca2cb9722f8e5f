/**
 * Every admin API route, described: the one table GET /api/v1/openapi.json is generated from
 * (src/admin/openapi.ts). Adding a route to the admin router? Add its line here too;
 * test/admin/openapi.test.ts fails, naming the route, while the router and this table differ, and
 * until a real success and a real error response of it have been validated against the description.
 *
 * Bodies and responses are the zod schemas the routes themselves use, kept next to them.
 * `errors` lists the problem `code`s a route answers beyond the ones every route shares
 * (COMMON_ERRORS in openapi.ts: 400 invalid_json, 401 unauthorized, 429 rate_limited, …).
 */
import { z } from 'zod';
import * as apiKeys from './api-keys.js';
import * as apis from './apis.js';
import * as applications from './applications.js';
import * as connections from './connections.js';
import * as directories from './directories.js';
import { domainResponse } from './domains.js';
import { eventResponse } from './events.js';
import * as loginLinks from './login-links.js';
import * as organizations from './organizations.js';
import * as setupLinks from './setup-links.js';
import * as users from './users.js';
import { listOf } from './validation.js';
import * as webhooks from './webhooks.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface AdminRoute {
  method: Method;
  /** Relative to /api/v1, parameters as `{name}`. */
  path: string;
  tag: string;
  summary: string;
  /** Operator keys only: an organization-scoped key gets 404. */
  operatorOnly?: boolean;
  /** No API key needed. */
  public?: boolean;
  /** A JSON body (its zod schema, or one of several), or a raw text body of these content types. */
  body?: z.ZodType | z.ZodType[] | { raw: readonly string[]; description: string };
  /** Query parameters (strings) besides ?limit= and ?cursor= of lists. */
  query?: Record<string, string>;
  /** A list: ?limit= and ?cursor=. */
  paged?: boolean;
  /** The success status and its body (none for 204). */
  status: 200 | 201 | 204;
  response?: z.ZodType;
  errors?: Partial<Record<400 | 403 | 404 | 409 | 415 | 422 | 503, string[]>>;
}

const conflictsOf = (...codes: string[]) => ({ 409: codes });

export const ADMIN_ROUTES: AdminRoute[] = [
  // organizations
  { method: 'post', path: '/organizations', tag: 'organizations', summary: 'Create an organization (its domains are verified: the operator vouches for them)', operatorOnly: true, body: organizations.createSchema, status: 201, response: organizations.organizationResponse, errors: { 400: ['validation_failed'], ...conflictsOf('slug_taken', 'domain_taken') } },
  { method: 'get', path: '/organizations', tag: 'organizations', summary: 'List organizations (an organization-scoped key sees its own)', paged: true, status: 200, response: listOf(organizations.organizationResponse) },
  { method: 'get', path: '/organizations/{org}', tag: 'organizations', summary: 'Get an organization by id or slug', status: 200, response: organizations.organizationResponse },
  { method: 'patch', path: '/organizations/{org}', tag: 'organizations', summary: "Change the fields sent (the slug: operator keys only)", body: organizations.patchSchema, status: 200, response: organizations.organizationResponse, errors: { 400: ['validation_failed'], 403: ['operator_only'], ...conflictsOf('slug_taken', 'domain_taken') } },
  { method: 'delete', path: '/organizations/{org}', tag: 'organizations', summary: 'Delete an organization and everything in it; each of its users who holds a session or grant has it ended, with a logout token to each application (`user.sessions_ended`, reason `removed`)', operatorOnly: true, status: 204 },
  // domains
  { method: 'get', path: '/organizations/{org}/domains', tag: 'domains', summary: "The organization's domains and the TXT record that proves each", status: 200, response: listOf(domainResponse) },
  { method: 'post', path: '/organizations/{org}/domains/{domain}/verify', tag: 'domains', summary: 'Look the TXT record up now and verify the domain', status: 200, response: domainResponse, errors: { 422: ['domain_unverified'], ...conflictsOf('domain_taken') } },
  // applications
  { method: 'post', path: '/applications', tag: 'applications', summary: 'Register an application (client_secret shown once)', operatorOnly: true, body: applications.createSchema, status: 201, response: applications.applicationResponse, errors: { 400: ['validation_failed', 'unknown_api'] } },
  { method: 'get', path: '/applications', tag: 'applications', summary: 'List applications', operatorOnly: true, paged: true, status: 200, response: listOf(applications.applicationResponse) },
  { method: 'get', path: '/applications/{client_id}', tag: 'applications', summary: 'Get an application', operatorOnly: true, status: 200, response: applications.applicationResponse },
  { method: 'patch', path: '/applications/{client_id}', tag: 'applications', summary: 'Change the fields sent (becoming confidential issues a secret, shown once)', operatorOnly: true, body: applications.patchSchema, status: 200, response: applications.applicationResponse, errors: { 400: ['validation_failed', 'unknown_api'] } },
  { method: 'delete', path: '/applications/{client_id}', tag: 'applications', summary: 'Delete an application', operatorOnly: true, status: 204 },
  { method: 'post', path: '/applications/{client_id}/rotate-secret', tag: 'applications', summary: 'A new client_secret (shown once); the old one stops working', operatorOnly: true, status: 200, response: applications.applicationResponse, errors: { 400: ['public_client'] } },
  // APIs (resource servers: access tokens for them are JWTs with aud = identifier)
  { method: 'post', path: '/apis', tag: 'APIs', summary: 'Register an API (resource server) applications may ask access tokens for with resource=', operatorOnly: true, body: apis.createSchema, status: 201, response: apis.apiResponse, errors: { 400: ['validation_failed'], ...conflictsOf('identifier_taken') } },
  { method: 'get', path: '/apis', tag: 'APIs', summary: 'List APIs', operatorOnly: true, paged: true, status: 200, response: listOf(apis.apiResponse) },
  { method: 'get', path: '/apis/{id}', tag: 'APIs', summary: 'Get an API', operatorOnly: true, status: 200, response: apis.apiResponse },
  { method: 'patch', path: '/apis/{id}', tag: 'APIs', summary: 'Change the fields sent (the identifier never changes)', operatorOnly: true, body: apis.patchSchema, status: 200, response: apis.apiResponse, errors: { 400: ['validation_failed'] } },
  { method: 'delete', path: '/apis/{id}', tag: 'APIs', summary: 'Delete an API no application allows any more', operatorOnly: true, status: 204, errors: conflictsOf('api_in_use') },
  // connections
  { method: 'post', path: '/organizations/{org}/connections', tag: 'connections', summary: 'Create a connection to an IdP (oidc, saml) or a partner (jwt)', body: connections.createSchemas(), status: 201, response: connections.connectionResponse, errors: { 400: ['validation_failed', 'invalid_discovery', 'invalid_metadata', 'url_refused', 'fetch_failed'] } },
  { method: 'get', path: '/organizations/{org}/connections', tag: 'connections', summary: "List the organization's connections", paged: true, status: 200, response: listOf(connections.connectionResponse) },
  { method: 'get', path: '/organizations/{org}/connections/{id}', tag: 'connections', summary: 'Get a connection', status: 200, response: connections.connectionResponse },
  { method: 'patch', path: '/organizations/{org}/connections/{id}', tag: 'connections', summary: 'Change the fields sent (the type cannot change)', body: connections.patchSchemas(), status: 200, response: connections.connectionResponse, errors: { 400: ['validation_failed', 'invalid_discovery', 'invalid_metadata', 'url_refused', 'fetch_failed'] } },
  { method: 'delete', path: '/organizations/{org}/connections/{id}', tag: 'connections', summary: 'Delete a connection', status: 204 },
  { method: 'put', path: '/organizations/{org}/connections/{id}/metadata', tag: 'connections', summary: "Replace a SAML connection's IdP metadata with the uploaded XML", body: { raw: connections.XML_TYPES, description: 'SAML IdP metadata (EntityDescriptor)' }, status: 200, response: connections.connectionResponse, errors: { 400: ['validation_failed', 'invalid_metadata', 'wrong_connection_type'], 415: ['unsupported_media_type'] } },
  { method: 'post', path: '/organizations/{org}/connections/{id}/certificates', tag: 'connections', summary: 'Add an IdP signing certificate (PEM) to a SAML connection', body: { raw: connections.PEM_TYPES, description: 'one PEM certificate' }, status: 201, response: connections.connectionResponse, errors: { 400: ['validation_failed', 'wrong_connection_type'], 415: ['unsupported_media_type'] } },
  // users
  { method: 'post', path: '/organizations/{org}/users', tag: 'users', summary: 'Create a user in the organization', body: users.createSchema, status: 201, response: users.userResponse, errors: { 400: ['validation_failed'], ...conflictsOf('email_taken', 'external_id_taken') } },
  { method: 'get', path: '/organizations/{org}/users', tag: 'users', summary: "List the organization's users", query: { email: 'only the user with this email (case-insensitive)' }, paged: true, status: 200, response: listOf(users.userResponse) },
  { method: 'get', path: '/organizations/{org}/users/{id}', tag: 'users', summary: 'Get a user', status: 200, response: users.userResponse },
  { method: 'patch', path: '/organizations/{org}/users/{id}', tag: 'users', summary: 'Change the fields sent', body: users.patchSchema, status: 200, response: users.userResponse, errors: { 400: ['validation_failed'], ...conflictsOf('email_taken', 'external_id_taken') } },
  { method: 'delete', path: '/organizations/{org}/users/{id}', tag: 'users', summary: 'Delete a user', status: 204 },
  { method: 'post', path: '/organizations/{org}/users/{id}/sessions/revoke', tag: 'users', summary: "End the user's sessions, grants and refresh tokens (back-channel logout to applications)", status: 204, errors: { 503: ['unavailable'] } },
  // directories (SCIM 2.0)
  { method: 'post', path: '/organizations/{org}/directories', tag: 'directories', summary: 'Create a SCIM directory (its bearer_token is shown once)', body: directories.createSchema, status: 201, response: directories.directoryWithTokenResponse, errors: { 400: ['validation_failed'] } },
  { method: 'get', path: '/organizations/{org}/directories', tag: 'directories', summary: "List the organization's directories", paged: true, status: 200, response: listOf(directories.directoryResponse) },
  { method: 'get', path: '/organizations/{org}/directories/{id}', tag: 'directories', summary: 'Get a directory', status: 200, response: directories.directoryResponse },
  { method: 'patch', path: '/organizations/{org}/directories/{id}', tag: 'directories', summary: 'Change the fields sent (a new attribute_mapping recomputes every provisioned user\'s roles)', body: directories.patchSchema, status: 200, response: directories.directoryResponse, errors: { 400: ['validation_failed'] } },
  { method: 'delete', path: '/organizations/{org}/directories/{id}', tag: 'directories', summary: 'Delete a directory (its SCIM base URL stops answering)', status: 204 },
  { method: 'post', path: '/organizations/{org}/directories/{id}/rotate-token', tag: 'directories', summary: 'A new SCIM bearer token (shown once); the old one stops working', status: 200, response: directories.directoryWithTokenResponse },
  // login links
  { method: 'post', path: '/organizations/{org}/login-links', tag: 'login links', summary: "A one-time URL that signs a user in and lands at the application's initiate_login_uri (never the console's application, `portico-console`: `portico console-link` is its link)", body: loginLinks.createSchema, status: 201, response: loginLinks.loginLinkResponse, errors: { 400: ['validation_failed', 'invalid_target'] } },
  // setup links
  { method: 'post', path: '/organizations/{org}/setup-links', tag: 'setup links', summary: "A URL (shown once) with which a customer's IT admin configures one SAML or OIDC connection; send_email mails it", body: setupLinks.createSchema, status: 201, response: setupLinks.createdSetupLinkResponse, errors: { 400: ['validation_failed', 'smtp_not_configured'] } },
  { method: 'get', path: '/organizations/{org}/setup-links', tag: 'setup links', summary: "List the organization's setup links and how far each got", paged: true, status: 200, response: listOf(setupLinks.setupLinkResponse) },
  { method: 'get', path: '/organizations/{org}/setup-links/{id}', tag: 'setup links', summary: 'Get a setup link (status and progress)', status: 200, response: setupLinks.setupLinkResponse },
  { method: 'delete', path: '/organizations/{org}/setup-links/{id}', tag: 'setup links', summary: 'Revoke a setup link: its URL stops working', status: 204 },
  // API keys
  { method: 'post', path: '/api-keys', tag: 'API keys', summary: 'Create an API key (the key is shown once)', body: apiKeys.createSchema, status: 201, response: apiKeys.apiKeyResponse, errors: { 400: ['validation_failed'], 403: ['operator_only'], 404: ['not_found'], ...conflictsOf('limit_reached') } },
  { method: 'get', path: '/api-keys', tag: 'API keys', summary: 'List API keys', query: { organization: "only this organization's keys (id or slug)" }, paged: true, status: 200, response: listOf(apiKeys.apiKeyResponse), errors: { 404: ['not_found'] } },
  { method: 'delete', path: '/api-keys/{id}', tag: 'API keys', summary: 'Delete an API key (the login links it issued stop working)', status: 204 },
  // events
  { method: 'get', path: '/organizations/{org}/events', tag: 'events', summary: "The organization's login events, newest first", query: { type: 'login.succeeded, login.failed, …', user_id: 'one user', connection_id: 'one connection' }, paged: true, status: 200, response: listOf(eventResponse) },
  { method: 'get', path: '/events', tag: 'events', summary: "Every organization's events, and refusals no organization can be named for", operatorOnly: true, query: { type: 'login.succeeded, login.failed, …', user_id: 'one user', connection_id: 'one connection' }, paged: true, status: 200, response: listOf(eventResponse) },
  // webhooks
  { method: 'post', path: '/webhooks', tag: 'webhooks', summary: 'Subscribe a URL to events (its signing secret is shown once)', body: webhooks.createSchema, status: 201, response: webhooks.createdWebhookResponse, errors: { 400: ['validation_failed'], 404: ['not_found'], ...conflictsOf('limit_reached') } },
  { method: 'get', path: '/webhooks', tag: 'webhooks', summary: 'List webhooks (an organization-scoped key sees its own)', paged: true, status: 200, response: listOf(webhooks.webhookResponse) },
  { method: 'get', path: '/webhooks/{id}', tag: 'webhooks', summary: 'Get a webhook', status: 200, response: webhooks.webhookResponse },
  { method: 'get', path: '/webhooks/{id}/deliveries', tag: 'webhooks', summary: "The webhook's delivery log, newest first", paged: true, status: 200, response: listOf(webhooks.deliveryResponse) },
  { method: 'delete', path: '/webhooks/{id}', tag: 'webhooks', summary: 'Delete a webhook (pending deliveries are dropped)', status: 204 },
  // this description
  { method: 'get', path: '/openapi.json', tag: 'description', summary: 'This OpenAPI 3.1 description of the admin API', public: true, status: 200, response: z.looseObject({ openapi: z.literal('3.1.0') }) },
];
