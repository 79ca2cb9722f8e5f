/**
 * The self-service setup portal (`/setup/{token}`, docs/reference.md): a customer's IT admin configures
 * one connection of one organization — choose the IdP, follow its instructions, enter its side,
 * test sign-in (src/setup/test-sign-in.ts), activate. A link touches only the connection it was
 * made for or created; never users, applications, other connections or organizations.
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import multer from 'multer';
import { multipartAtMost } from '../http/body-size.js';
import { sendOutbound } from '../http/outbound-form.js';
import { settingsContext, type Runtime } from '../runtime.js';
import { newId } from '../store/ids.js';
import type { SetupLink } from '../store/repos/setup-links.js';
import type { Connection, Organization } from '../store/types.js';
import { readSamlConfig, samlEndpoints } from '../upstream/saml/config.js';
import { spKeySource } from '../upstream/saml/sp-keys.js';
import { configure, currentConfig, formValues, SetupInputError, type Uploads } from './configure.js';
import { checkCsrf, loadLink, securityHeaders } from './guard.js';
import { SETUP_IDPS, setupIdp, type SetupIdp } from './idps.js';
import { activatePage, choosePage, configurePage, messagePage, testPage, type ConfigureForm } from './pages.js';
import { settingsFingerprint, settingsUnderTest, type TestSignIn } from './test-sign-in.js';

/** Uploads and pasted metadata are capped at 1 MB (the metadata parser's own bound). */
export const UPLOAD_MAX_BYTES = 1024 * 1024;

export interface SetupPortalDeps {
  /** The gateway session (the test sign-in binds its transaction to it). */
  session: RequestHandler;
  /** The test sign-in engine; absent: the test step says it is unavailable. */
  testSignIn?: TestSignIn;
}

export function setupPortal(rt: Runtime, deps: SetupPortalDeps): Router {
  const { store, config } = rt;
  const r = Router();
  const base = (req: Request) => `/setup/${req.setup!.token}`;
  const spKeys = spKeySource(config.certsDir);
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  // The configure step also takes a plain urlencoded form (no files), up to the same 1 MB.
  const bigForm = express.urlencoded({ extended: false, limit: UPLOAD_MAX_BYTES + 64 * 1024, parameterLimit: 20 });
  const uploads = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: UPLOAD_MAX_BYTES, fieldSize: UPLOAD_MAX_BYTES, files: 2, fields: 20, parts: 24 },
  }).fields([
    { name: 'metadata_file', maxCount: 1 },
    { name: 'certificate_file', maxCount: 1 },
  ]);

  r.use('/setup/:token', securityHeaders, loadLink(store, rt.secret, config.issuer.startsWith('https:')));

  const event = (link: SetupLink, type: string, connectionId: string | null, req: Request, detail: Record<string, unknown> = {}) =>
    store.events.append({ organization_id: link.organization_id, connection_id: connectionId, user_id: null, ip: req.ip ?? null, type, reason: null, detail: { setup_link_id: link.id, ...detail } });

  /** The link's own connection, in its own organization: the only connection a link can touch. */
  const connectionOf = async (link: SetupLink): Promise<Connection | undefined> => {
    if (!link.connection_id) return undefined;
    const c = await store.connections.get(link.connection_id, link.organization_id);
    return c && (c.type === 'saml' || c.type === 'oidc') ? c : undefined;
  };
  const idpOf = (link: SetupLink, conn: Connection): SetupIdp =>
    setupIdp(link.provider) ?? SETUP_IDPS.find((i) => i.protocol === conn.type && i.provider === conn.provider) ?? setupIdp(conn.type)!;

  const refuseCsrf = (res: Response) =>
    res.status(403).type('html').send(messagePage('Please try again', 'This form has expired or was sent from another page. Reload the page and submit it again.'));

  const sendPage = (res: Response, html: string, status = 200) => res.status(status).type('html').send(html);

  // Overview: where the link stands -> the page of its next step.
  r.get('/setup/:token', async (req, res) => {
    let { link } = req.setup!;
    if (!link.progress.opened) {
      link = (await store.setupLinks.reach(link.id, 'opened')) ?? link;
      await event(link, 'setup.opened', link.connection_id, req);
    }
    const conn = await connectionOf(link);
    if (!conn) return void sendPage(res, choosePage({ ...req.setup!, link, action: `${base(req)}/provider`, only: link.connection_type ?? undefined }));
    const next = link.progress.test_succeeded ? 'activate' : link.progress.idp_configured ? 'test' : 'configure';
    res.redirect(303, `${base(req)}/${next}`);
  });

  r.get('/setup/:token/provider', (req, res) => {
    const { link } = req.setup!;
    // A link made for an existing connection keeps it (and its type): there is nothing to choose.
    if (link.reconfigure) return res.redirect(303, `${base(req)}/configure`);
    sendPage(res, choosePage({ ...req.setup!, action: `${base(req)}/provider`, only: link.connection_type ?? undefined }));
  });

  r.post('/setup/:token/provider', form, async (req, res) => {
    if (!checkCsrf(req)) return void refuseCsrf(res);
    const { link, org } = req.setup!;
    if (link.reconfigure) return void res.redirect(303, `${base(req)}/configure`);
    const idp = setupIdp(String(req.body?.idp ?? ''));
    if (!idp || (link.connection_type && idp.protocol !== link.connection_type)) {
      return void sendPage(res, choosePage({ ...req.setup!, action: `${base(req)}/provider`, only: link.connection_type ?? undefined, error: 'Choose one of the identity providers listed.' }), 400);
    }
    // A live connection's IdP preset (how the subject and email are read) changes only through a new
    // test and activation: a completed link, in its grace hour, re-preset the live connection with no
    // test at all (attacker review).
    const current = await connectionOf(link);
    const live = () => sendPage(res, messagePage('This connection is live', 'Its identity provider cannot be changed from this link. Ask for a new setup link to reconfigure it.'), 409);
    if (link.progress.activated || current?.enabled) return void live();
    const conn = await chooseConnection(link, org, idp, req, current);
    if (!conn) return void live();
    await store.setupLinks.choose(link.id, { connection_type: idp.protocol, provider: idp.key, connection_id: conn.id });
    await store.setupLinks.reach(link.id, 'provider_selected');
    await event(link, 'setup.provider_selected', conn.id, req, { provider: idp.key });
    res.redirect(303, `${base(req)}/configure`);
  });

  /**
   * The connection for the chosen IdP, created disabled (its ACS / redirect URL contain its id, which
   * the IT admin enters at the IdP). A later choice of the same protocol renames the one the link made;
   * of the other protocol, replaces it while it has never been activated.
   */
  async function chooseConnection(link: SetupLink, org: Organization, idp: SetupIdp, req: Request, existing: Connection | undefined): Promise<Connection | undefined> {
    if (existing && existing.type === idp.protocol) {
      // undefined: it went live since the caller's check (an activation in between).
      return store.connections.update(existing.id, org.id, { provider: idp.provider, name: idp.label }, { whileDisabled: true });
    }
    if (existing && !existing.enabled && !link.progress.activated) await store.connections.delete(existing.id, org.id);
    const conn = await store.connections.create(org.id, { id: newId('con'), type: idp.protocol, provider: idp.provider, name: idp.label, enabled: false, config: {} });
    await event(link, 'connection.created', conn.id, req, { provider: idp.key });
    return conn;
  }

  async function renderConfigure(req: Request, res: Response, conn: Connection, formIn: ConfigureForm, error?: SetupInputError, status = 200) {
    const { link } = req.setup!;
    const idp = idpOf(link, conn);
    const values =
      conn.type === 'saml'
        ? { ...samlEndpoints(config.issuer, conn.id), sp_certificate: (await spKeys.get()).signing.certPem }
        : { redirect_uri: `${config.issuer}/oidc/${conn.id}/callback` };
    sendPage(
      res,
      configurePage({
        ...req.setup!,
        action: `${base(req)}/configure`,
        idp,
        values,
        metadataDownload: conn.type === 'saml' ? `/saml/${conn.id}/metadata` : undefined,
        form: formIn,
        current: link.reconfigure ? currentConfig(conn) : undefined,
        live: conn.enabled,
        pending: Boolean(link.pending),
        error: error ? { message: error.message, fix: error.fix } : undefined,
      }),
      status,
    );
  }

  r.get('/setup/:token/configure', async (req, res) => {
    const conn = await connectionOf(req.setup!.link);
    if (!conn) return void res.redirect(303, base(req));
    const c = conn.config as Record<string, unknown>;
    const prefill: ConfigureForm =
      conn.type === 'oidc'
        ? { discovery_url: String(c.discovery_url ?? ''), client_id: String(c.client_id ?? ''), response_mode: String(c.response_mode ?? 'query') }
        : // The binding select shows the one in force: a new URL typed alone keeps it (attacker review: it fell back to HTTP-Redirect).
          { idp_sso_binding: readSamlConfig(c).idp_sso_binding };
    await renderConfigure(req, res, conn, prefill);
  });

  // The whole multipart body: the two files at most, and the form's small fields.
  const wholeUpload = multipartAtMost(2 * UPLOAD_MAX_BYTES + 64 * 1024, (_req, res, status) =>
    sendPage(
      res,
      status === 411
        ? messagePage('The form could not be read', 'Reload the page and submit it again.')
        : messagePage('File too large', 'Uploads and pasted metadata are limited to 1 MB. Upload the metadata of this one application, not a whole federation.'),
      status,
    ),
  );
  r.post('/setup/:token/configure', wholeUpload, (req, res, next) => {
    const parse = req.is('multipart/form-data') ? uploads : bigForm;
    parse(req, res, (err: unknown) => {
      if (!err) return next();
      const code = (err as { code?: string; type?: string }).code ?? (err as { type?: string }).type ?? '';
      if (/^LIMIT_|too.large/.test(code)) {
        return void sendPage(res, messagePage('File too large', 'Uploads and pasted metadata are limited to 1 MB. Upload the metadata of this one application, not a whole federation.'), 413);
      }
      sendPage(res, messagePage('The form could not be read', 'Reload the page and submit it again.'), 400);
    });
  }, async (req, res) => {
    if (!checkCsrf(req)) return void refuseCsrf(res);
    const { link, org } = req.setup!;
    const conn = await connectionOf(link);
    if (!conn) return void res.redirect(303, base(req));
    const body = (req.body ?? {}) as Record<string, unknown>;
    const files = req.files as Record<string, Express.Multer.File[]> | undefined;
    const up: Uploads = { metadata_file: files?.metadata_file?.[0]?.buffer, certificate_file: files?.certificate_file?.[0]?.buffer };
    let stored;
    try {
      stored = await configure(conn, body, up, settingsContext(rt, conn.id));
    } catch (e) {
      if (!(e instanceof SetupInputError)) throw e;
      return void (await renderConfigure(req, res, conn, formValues(body), e, 400));
    }
    const source = conn.type === 'saml' ? stored.config.source : 'discovery_url';
    // Written to the connection only while it is not live, in the same statement: an activation
    // landing after this request read it must not let untested settings onto it (review of 296b75b).
    if (!conn.enabled && (await store.connections.update(conn.id, org.id, stored, { whileDisabled: true }))) {
      await store.setupLinks.configured(link.id);
      await event(link, 'connection.updated', conn.id, req, { source });
    } else {
      // A live connection keeps its settings: the new ones wait on the link until tested and switched.
      await store.setupLinks.configured(link.id, stored);
      await event(link, 'setup.settings_pending', conn.id, req, { source });
    }
    res.redirect(303, `${base(req)}/test`);
  });

  r.get('/setup/:token/test', async (req, res) => {
    let { link } = req.setup!;
    const conn = await connectionOf(link);
    if (!conn || !link.progress.idp_configured) return void res.redirect(303, base(req));
    let outcomeHtml: string | undefined;
    const resultId = typeof req.query.result === 'string' && req.query.result.length <= 100 ? req.query.result : undefined;
    if (resultId && deps.testSignIn) {
      const outcome = await deps.testSignIn.outcome(link.id, resultId);
      // Only an outcome of the settings entered now (pending ones on a live connection): one from
      // before a reconfiguration tested other settings.
      if (outcome && outcome.connectionId === conn.id && outcome.settings === settingsFingerprint(settingsUnderTest(conn, link))) {
        outcomeHtml = deps.testSignIn.render(outcome);
        if (outcome.ok) link = (await store.setupLinks.testSucceeded(link.id, outcome.settings)) ?? link;
      }
    }
    sendPage(
      res,
      testPage({ ...req.setup!, link, action: `${base(req)}/test`, outcomeHtml, activateUrl: `${base(req)}/activate`, back: `${base(req)}/configure`, unavailable: !deps.testSignIn, pending: Boolean(link.pending) }),
    );
  });

  r.post('/setup/:token/test', form, deps.session, async (req, res) => {
    if (!checkCsrf(req)) return void refuseCsrf(res);
    const { link } = req.setup!;
    const conn = await connectionOf(link);
    if (!conn || !link.progress.idp_configured || !deps.testSignIn) return void res.redirect(303, base(req));
    sendOutbound(res, await deps.testSignIn.begin(req, settingsUnderTest(conn, link), { linkId: link.id, returnTo: `${base(req)}/test` }));
  });

  r.get('/setup/:token/activate', async (req, res) => {
    const { link } = req.setup!;
    const conn = await connectionOf(link);
    if (!conn) return void res.redirect(303, base(req));
    sendPage(
      res,
      activatePage({ ...req.setup!, action: `${base(req)}/activate`, enabled: conn.enabled, pending: Boolean(link.pending), canActivate: Boolean(link.progress.test_succeeded), back: `${base(req)}/test` }),
    );
  });

  r.post('/setup/:token/activate', form, async (req, res) => {
    if (!checkCsrf(req)) return void refuseCsrf(res);
    const { link, org } = req.setup!;
    const conn = await connectionOf(link);
    if (!conn) return void res.redirect(303, base(req));
    // Only settings that passed a test sign-in go live: checked and written in one transaction, so a
    // reconfiguration racing this request cannot slip untested settings in (applyTested).
    const applied = await store.setupLinks.applyTested(link.id, org.id, settingsFingerprint);
    if (!applied) {
      return void sendPage(res, messagePage('Test the new settings first', 'These settings have not passed a test sign-in (or were changed since). Run the test sign-in again, then switch.'), 409);
    }
    if (link.pending) await event(link, 'connection.updated', conn.id, req, { switched_pending: true });
    if (!conn.enabled) await event(link, 'connection.activated', conn.id, req, { sso_policy: org.sso_policy });
    res.redirect(303, `${base(req)}/activate`);
  });

  return r;
}
