/** A running Portico with one organization and one SCIM directory, and a SCIM client for it. */
import { startPortico, type RunningPortico } from '../support/portico.js';
import type { DbBackend } from '../support/backends.js';

export interface ScimResponse<T = Record<string, unknown>> {
  status: number;
  contentType: string | null;
  body: T;
}

export interface ScimFixture {
  p: RunningPortico;
  orgId: string;
  directory: Record<string, unknown> & { id: string; bearer_token: string; scim_base_url: string };
  scim<T = Record<string, any>>(method: string, path: string, body?: unknown, opts?: { token?: string | null; raw?: string; contentType?: string }): Promise<ScimResponse<T>>;
  close(): Promise<void>;
}

let n = 0;

export async function scimFixture(backend: DbBackend, directory: Record<string, unknown> = {}): Promise<ScimFixture> {
  const p = await startPortico({ backend });
  const slug = `scim-${Date.now().toString(36)}-${n++}`;
  const org = await p.admin<{ id: string }>('POST', '/organizations', { slug, name: 'Acme', domains: ['acme.example'] });
  if (org.status !== 201) throw new Error(`organization: ${org.status} ${JSON.stringify(org.body)}`);
  const dir = await p.admin<ScimFixture['directory']>('POST', `/organizations/${org.body.id}/directories`, { provider: 'azure', name: 'Entra', ...directory });
  if (dir.status !== 201) throw new Error(`directory: ${dir.status} ${JSON.stringify(dir.body)}`);
  const fx: ScimFixture = {
    p,
    orgId: org.body.id,
    directory: dir.body,
    async scim(method, path, body, opts = {}) {
      const token = opts.token === undefined ? dir.body.bearer_token : opts.token;
      const res = await fetch(`${p.base}/scim/v2/${dir.body.id}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined || opts.raw !== undefined ? { 'content-type': opts.contentType ?? 'application/scim+json' } : {}),
        },
        body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      const text = await res.text();
      return { status: res.status, contentType: res.headers.get('content-type'), body: (text ? JSON.parse(text) : {}) as never };
    },
    close: () => p.close(),
  };
  return fx;
}

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
