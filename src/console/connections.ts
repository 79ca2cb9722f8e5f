/**
 * The console's connection pages (issue "Operator console", Pages → Connections), mounted by the
 * shell under /console: an organization's connections with their last logins and certificate
 * expiry, a detail page (the values for the IdP, its settings), create, enable/disable, IdP
 * metadata and certificate uploads. Every change goes through the admin API's own operations
 * (src/admin/connection-operations.ts: same validation, same stored form) and writes the same
 * `admin.connection.*` audit event as the API, naming the console user.
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import multer from 'multer';
import { resolveOrg } from '../admin/auth.js';
import { connectionOperations } from '../admin/connection-operations.js';
import { connectionView } from '../admin/connections.js';
import { pageQuery } from '../admin/validation.js';
import { HttpProblem } from '../http/problem.js';
import type { Connection, ConnectionType, Organization } from '../store/types.js';
import { CONNECTION_TYPES } from '../upstream/registry.js';
import { METADATA_MAX_BYTES } from '../upstream/saml/metadata.js';
import { chooseTypePage, connectionDetailPage, connectionListPage, createConnectionPage, type ConnectionRow, type CreateForm } from './connection-views.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';
import { operatorsChangeOnly, problemPages, problemText, recordRouteChange } from './page-kit.js';

/** The admin API's caps: metadata as its parser's bound (1 MB), a PEM certificate as PUT …/certificates (64 KB). */
export const METADATA_UPLOAD_MAX_BYTES = METADATA_MAX_BYTES;
export const CERTIFICATE_UPLOAD_MAX_BYTES = 64 * 1024;
const MAX_LABEL = { metadata: '1 MB', certificate: '64 KB' };

const LOGIN_TYPES = ['login.succeeded', 'login.failed'];

/** Form text fields the create form passes on to the admin operation (empty ones are left out). */
const CREATE_FIELDS: Record<ConnectionType, string[]> = {
  saml: ['metadata_url', 'metadata_xml'],
  oidc: ['discovery_url', 'client_id', 'client_secret'],
  jwt: ['jwks_url', 'public_key', 'secret'],
};
/** Never shown again on a re-rendered form. */
const SECRET_FIELDS = new Set(['client_secret', 'secret']);

/** A multipart form with at most one file, refused with a page (413) when the file is too large. */
function upload(file: string, maxBytes: number, onTooLarge: (req: Request, res: Response) => Promise<void>): RequestHandler {
  const parse = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: maxBytes, fieldSize: METADATA_UPLOAD_MAX_BYTES, files: 1, fields: 20, parts: 22 },
  }).single(file);
  return (req, res, next) => {
    // Under the console shell the form is already parsed (its CSRF field must be read before any
    // page runs): take this form's one file from what the shell read, with this form's own limits.
    if (Array.isArray(req.files)) {
      const files = req.files as Express.Multer.File[];
      if (files.length > 1 || files.some((f) => f.fieldname !== file)) return next(new HttpProblem(400, 'validation_failed', `${file}: one file expected`));
      req.file = files[0];
      if (req.file && req.file.size > maxBytes) return void onTooLarge(req, res).catch(next);
      return next();
    }
    parse(req, res, (err: unknown) => {
      if (!err) return next();
      if (err instanceof multer.MulterError) {
        if (err.code === 'LIMIT_FILE_SIZE' || err.code === 'LIMIT_FIELD_VALUE') return void onTooLarge(req, res).catch(next);
        return next(new HttpProblem(400, 'validation_failed', `${err.field ?? 'form'}: ${err.message}`));
      }
      next(err);
    });
  };
}

const fileText = (req: Request): string | undefined => (req.file ? req.file.buffer.toString('utf8') : undefined);
const field = (req: Request, name: string): string => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

export function connectionPages(deps: ConsoleDeps): Router {
  const { rt, audit } = deps;
  const { store, config } = rt;
  const ops = connectionOperations(rt);
  const r = Router();
  r.use('/organizations/:org/connections', operatorsChangeOnly(deps));
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const canWrite = (res: Response) => consoleUserOf(res).role === 'operator';
  const actor = (res: Response) => ({ type: 'console_user' as const, id: consoleUserOf(res).id });

  const loadOrg = (req: Request) => resolveOrg(store, req);
  const loadConn = async (req: Request) => {
    const org = await loadOrg(req);
    return { org, conn: await ops.load(org, String(req.params.id ?? '')) };
  };

  /** The admin API's view of each connection and its last successful / failed login (one query). */
  async function rowsOf(conns: Connection[]): Promise<ConnectionRow[]> {
    const last = await store.events.lastOfTypes(
      conns.map((c) => c.id),
      LOGIN_TYPES,
    );
    return conns.map((c) => {
      const succeeded = last.find((l) => l.connection_id === c.id && l.type === 'login.succeeded');
      const failed = last.find((l) => l.connection_id === c.id && l.type === 'login.failed');
      return {
        view: connectionView(c, config.issuer),
        ...(succeeded ? { lastSucceeded: new Date(succeeded.at) } : {}),
        ...(failed ? { lastFailed: { at: new Date(failed.at), reason: failed.reason } } : {}),
      };
    });
  }

  const record = (req: Request, res: Response, route: string, org: Organization, objectId: string, fields: string[]) =>
    recordRouteChange(deps, req, res, { route, organizationId: org.id, objectId, fields });

  async function renderDetail(req: Request, res: Response, org: Organization, conn: Connection, extra: { error?: string; saved?: string } = {}, status = 200) {
    const [row] = await rowsOf([conn]);
    const warnings = (await ops.warnings(conn)).map((w) => w.message);
    deps.render(
      res,
      {
        title: conn.name,
        section: 'organizations',
        body: connectionDetailPage({ org, row: row!, csrf: deps.csrfField(res), now: deps.now(), canWrite: canWrite(res), maxUpload: MAX_LABEL, warnings, ...extra }),
      },
      status,
    );
  }

  r.get('/organizations/:org/connections', async (req, res) => {
    const org = await loadOrg(req);
    const q = pageQuery(req);
    const page = await store.connections.list(org.id, q);
    deps.render(res, {
      title: `Connections of ${org.name}`,
      section: 'organizations',
      body: connectionListPage({ org, rows: await rowsOf(page.data), nextCursor: page.next_cursor, limit: q.limit, now: deps.now(), canWrite: canWrite(res) }),
    });
  });

  const typeOf = (v: unknown): ConnectionType | undefined => (CONNECTION_TYPES as readonly unknown[]).includes(v) ? (v as ConnectionType) : undefined;

  const renderCreate = (res: Response, org: Organization, type: ConnectionType, formIn: CreateForm, error?: string, status = 200) =>
    deps.render(
      res,
      { title: 'New connection', section: 'organizations', body: createConnectionPage({ org, type, csrf: deps.csrfField(res), form: formIn, maxUpload: MAX_LABEL.metadata, ...(error ? { error } : {}) }) },
      status,
    );

  r.get('/organizations/:org/connections/new', async (req, res) => {
    const org = await loadOrg(req);
    const type = typeOf(req.query.type);
    if (!type) return deps.render(res, { title: 'New connection', section: 'organizations', body: chooseTypePage(org) });
    renderCreate(res, org, type, {});
  });

  /** The create form, as far as it may be shown again (no secret, no uploaded file). */
  const createForm = (req: Request): CreateForm => {
    const out: Record<string, string> = {};
    for (const k of ['name', 'provider', 'metadata_url', 'metadata_xml', 'discovery_url', 'client_id', 'jwks_url', 'public_key']) out[k] = field(req, k);
    out.enabled = field(req, 'enabled') === 'on' ? 'on' : 'off';
    out.untrusted = field(req, 'untrusted') === 'on' ? 'on' : 'off';
    return out;
  };

  r.post(
    '/organizations/:org/connections',
    upload('metadata_file', METADATA_UPLOAD_MAX_BYTES, async (req, res) => {
      const org = await loadOrg(req);
      renderCreate(res, org, typeOf(field(req, 'type')) ?? 'saml', createForm(req), 'The metadata file is larger than 1 MB.', 413);
    }),
    async (req, res) => {
      const org = await loadOrg(req);
      const type = typeOf(field(req, 'type'));
      if (!type) throw new HttpProblem(400, 'validation_failed', 'type: must be one of saml, oidc, jwt');
      // The admin API's flat body, from the form: only the fields given.
      const body: Record<string, unknown> = { type, name: field(req, 'name'), provider: field(req, 'provider') || 'generic', enabled: field(req, 'enabled') === 'on' };
      for (const k of CREATE_FIELDS[type]) if (field(req, k).trim()) body[k] = field(req, k);
      // Sent only when asked for: a form without the box keeps the admin API's default (trusted).
      if (field(req, 'untrusted') === 'on') body.trust_email = false;
      const file = fileText(req);
      if (type === 'saml' && file !== undefined && file.trim()) {
        // A file and pasted XML: which one was meant cannot be guessed.
        if (body.metadata_xml !== undefined) return renderCreate(res, org, type, createForm(req), 'metadata_xml: give either a metadata file or pasted XML, not both', 400);
        body.metadata_xml = file;
      }
      let conn: Connection;
      try {
        conn = await ops.create(org, body);
      } catch (e) {
        if (!(e instanceof HttpProblem) || e.status >= 500 || e.status === 404) throw e;
        return renderCreate(res, org, type, createForm(req), problemText(e), e.status);
      }
      await record(req, res, 'POST /organizations/:org/connections', org, conn.id, Object.keys(body));
      res.redirect(303, `/console/organizations/${encodeURIComponent(org.slug)}/connections/${encodeURIComponent(conn.id)}?saved=created`);
    },
  );

  const SAVED: Record<string, string> = {
    created: 'The connection was created.',
    enabled: 'The connection is enabled.',
    disabled: 'The connection is disabled.',
    'email-trusted': "The connection's email addresses are trusted: its sign-ins are linked to existing users by email.",
    'email-untrusted': "The connection's email addresses are not trusted: its sign-ins are never linked to existing users by email.",
    metadata: 'The IdP metadata was saved.',
    certificate: 'The certificate was added.',
  };

  r.get('/organizations/:org/connections/:id', async (req, res) => {
    const { org, conn } = await loadConn(req);
    const saved = SAVED[String(req.query.saved ?? '')];
    await renderDetail(req, res, org, conn, saved ? { saved } : {});
  });

  /** Runs a change; a refusal shows on the detail page (its 4xx status), nothing changed. */
  async function change(req: Request, res: Response, org: Organization, conn: Connection, run: () => Promise<unknown>, after: () => Promise<void>, saved: string) {
    try {
      await run();
    } catch (e) {
      if (!(e instanceof HttpProblem) || e.status >= 500 || e.status === 404) throw e;
      return renderDetail(req, res, org, conn, { error: problemText(e) }, e.status);
    }
    await after();
    res.redirect(303, `/console/organizations/${encodeURIComponent(org.slug)}/connections/${encodeURIComponent(conn.id)}?saved=${saved}`);
  }

  // The switches of the detail page: each one boolean field, PATCHed as the admin route does.
  const switches = [
    { path: 'enabled', name: 'enabled', saved: ['enabled', 'disabled'] },
    { path: 'trust-email', name: 'trust_email', saved: ['email-trusted', 'email-untrusted'] },
  ] as const;
  for (const sw of switches) {
    r.post(`/organizations/:org/connections/:id/${sw.path}`, form, async (req, res) => {
      const { org, conn } = await loadConn(req);
      const value = field(req, sw.name);
      const body = { [sw.name]: value === 'true' ? true : value === 'false' ? false : value };
      await change(
        req,
        res,
        org,
        conn,
        () => ops.update(conn, body),
        () => record(req, res, 'PATCH /organizations/:org/connections/:id', org, conn.id, [sw.name]),
        body[sw.name] === true ? sw.saved[0] : sw.saved[1],
      );
    });
  }

  // The two uploads differ only in their field, cap and operation; each is the admin route's change.
  const uploads = [
    { path: 'metadata', what: 'metadata' as const, file: 'metadata_file', maxBytes: METADATA_UPLOAD_MAX_BYTES, route: 'PUT /organizations/:org/connections/:id/metadata', fields: ['metadata_xml'], apply: (conn: Connection, text: string) => ops.replaceMetadata(conn, text) },
    { path: 'certificates', what: 'certificate' as const, file: 'certificate_file', maxBytes: CERTIFICATE_UPLOAD_MAX_BYTES, route: 'POST /organizations/:org/connections/:id/certificates', fields: ['idp_certificates'], apply: (conn: Connection, text: string) => ops.addCertificate(conn, text) },
  ];
  for (const u of uploads) {
    const tooLarge = async (req: Request, res: Response) => {
      const { org, conn } = await loadConn(req);
      await renderDetail(req, res, org, conn, { error: `The ${u.what} file is larger than ${MAX_LABEL[u.what]}.` }, 413);
    };
    r.post(`/organizations/:org/connections/:id/${u.path}`, upload(u.file, u.maxBytes, tooLarge), async (req, res) => {
      const { org, conn } = await loadConn(req);
      await change(req, res, org, conn, () => u.apply(conn, fileText(req) ?? ''), () => record(req, res, u.route, org, conn.id, u.fields), u.what);
    });
  }

  r.use(problemPages(deps));
  return r;
}
