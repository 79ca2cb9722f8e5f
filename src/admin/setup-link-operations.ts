/**
 * What the admin API does to setup links, as functions of already-authorized inputs (a resolved
 * organization, a flat body): the one code path of the admin routes (src/admin/setup-links.ts)
 * and the console's pages (src/console/setup-links.ts). Same zod schema, same events
 * (`setup.link_created`, `setup.emailed`, `setup.email_failed`, `setup.revoked`), same errors.
 */
import { z } from 'zod';
import { esc } from '../http/html.js';
import type { Mailer } from '../http/mail.js';
import { HttpProblem, notFound } from '../http/problem.js';
import type { Runtime } from '../runtime.js';
import type { SetupLink } from '../store/repos/setup-links.js';
import type { Organization } from '../store/types.js';
import { SETUP_PROVIDER_NAMES, setupIdpFor } from '../setup/idps.js';
import type { Actor } from './audit.js';
import { emailAddress, parse } from './validation.js';

const DAY = 86_400;
export const createSchema = z.strictObject({
  admin_email: emailAddress.optional(),
  connection_type: z.enum(['saml', 'oidc']).optional(),
  provider: z.enum(SETUP_PROVIDER_NAMES).optional(),
  connection_id: z.string().min(1).max(100).optional(),
  ttl_seconds: z.number().int().min(60).max(30 * DAY).default(7 * DAY),
  send_email: z.boolean().default(false),
});

const fieldError = (field: string, message: string, code = 'validation_failed') =>
  new HttpProblem(400, code, `${field}: ${message}`, { errors: [{ field, message }] });

/** Invitations one organization may send an hour, whoever asks (attacker review: the operator's mail server for anyone's text). */
export const INVITATIONS_PER_HOUR = 20;
/** How much of the organization's name the subject line carries. */
const SUBJECT_NAME_CHARS = 60;

const shortName = (name: string) => (name.length > SUBJECT_NAME_CHARS ? `${name.slice(0, SUBJECT_NAME_CHARS - 1)}…` : name);

function invitation(org: Organization, url: string, expiresAt: Date) {
  const until = expiresAt.toUTCString();
  return {
    // The name is the organization's own text: quoted and cut short, it reads as a name, not as the message.
    subject: `Set up single sign-on for "${shortName(org.name)}"`,
    text: `Hello,\n\nyou have been asked to connect ${org.name}'s identity provider for single sign-on.\n\nOpen this link to start (it works until ${until}):\n${url}\n\nThe page walks you through every step. Do not forward this link: anyone with it can configure the connection.\n`,
    html: `<p>Hello,</p><p>you have been asked to connect ${esc(org.name)}'s identity provider for single sign-on.</p><p><a href="${esc(url)}">Open the setup page</a> (it works until ${esc(until)}).</p><p>Do not forward this link: anyone with it can configure the connection.</p>`,
  };
}

/** Who asks, for the `setup.*` events: the API key (null: the bootstrap key), or the console user as `actor`. */
export interface Requester {
  keyId?: string | null;
  actor?: Actor;
  ip: string | null;
  /** The caller is the organization's own key (not the operator): its invitations go to the organization's verified domains only. */
  organizationScoped?: boolean;
}

export interface CreatedSetupLink {
  link: SetupLink;
  /** The link's URL, with its token: shown this once. */
  url: string;
  /** Why the invitation could not be sent (the link was still created). */
  emailError?: string;
}

export interface SetupLinkOperations {
  /** The organization's setup link, or 404 `not_found`. */
  load(org: Organization, id: string): Promise<SetupLink>;
  /** POST /organizations/{org}/setup-links: `body` is the admin API's JSON body. */
  create(org: Organization, body: Record<string, unknown>, by: Requester): Promise<CreatedSetupLink>;
  /** DELETE …/setup-links/{id}: the link stops working at once (every process reads the row). */
  revoke(org: Organization, id: string, by: Requester): Promise<SetupLink>;
}

export function setupLinkOperations(rt: Runtime, mailer: Mailer | undefined): SetupLinkOperations {
  const { store, config } = rt;
  const who = (by: Requester) => ({ key_id: by.keyId ?? null, ...(by.actor ? { actor: by.actor } : {}) });

  const load = async (org: Organization, id: string) => {
    const link = id.length <= 100 ? await store.setupLinks.get(id, org.id) : undefined;
    if (!link) throw notFound('setup link');
    return link;
  };

  return {
    load,

    async create(org, body, by) {
      const input = parse(createSchema, body);
      // The connection to reconfigure first: its type is the protocol a provider name means (okta + an OIDC connection: okta-oidc).
      const conn = input.connection_id ? await store.connections.get(input.connection_id, org.id) : undefined;
      if (input.connection_id && !conn) throw fieldError('connection_id', 'no such connection in this organization');
      if (conn && conn.type !== 'saml' && conn.type !== 'oidc') throw fieldError('connection_id', 'only SAML and OIDC connections can be set up through a link');
      const connType = conn?.type as 'saml' | 'oidc' | undefined;
      if (connType && input.connection_type && input.connection_type !== connType) throw fieldError('connection_type', `the connection is ${connType}`);
      const protocol = input.connection_type ?? connType;
      const idp = input.provider ? setupIdpFor(input.provider, protocol) : undefined;
      if (input.provider && !idp) throw fieldError('provider', `the setup portal does not offer ${input.provider} over ${protocol}`);
      if (idp && protocol && idp.protocol !== protocol) {
        throw fieldError('provider', `${input.provider} is a ${idp.protocol} provider, not ${protocol}`);
      }
      const type = protocol ?? idp?.protocol ?? null;
      if (input.send_email) {
        if (!input.admin_email) throw fieldError('admin_email', 'required with send_email');
        // Nothing is created when the invitation cannot be sent at all.
        if (!mailer) throw new HttpProblem(400, 'smtp_not_configured', 'send_email: no SMTP server is configured (PORTICO_SMTP_URL and PORTICO_MAIL_FROM)');
        // SECURITY: an organization's own key would otherwise have the operator's mail server write
        // to any address, under the operator's sender, with the organization's name (its own text)
        // in the message. It invites its own people: addresses at its verified domains.
        const domain = input.admin_email.slice(input.admin_email.lastIndexOf('@') + 1).toLowerCase();
        if (by.organizationScoped && !org.verified_domains.includes(domain)) {
          throw fieldError('admin_email', `an organization's key sends invitations to its verified domains only (${org.verified_domains.join(', ') || 'none yet'}); create the link without send_email and pass its url on`);
        }
        // Checked before anything is created; counted per organization, whoever asks.
        const sent = await rt.ephemeral.space('counters').increment(`setup-invitations:${org.id}`, 3600);
        if (sent > INVITATIONS_PER_HOUR) {
          throw new HttpProblem(429, 'rate_limited', `send_email: this organization sent ${INVITATIONS_PER_HOUR} invitations in the last hour; create the link without send_email, or try again later`);
        }
      }
      const { token, link } = await store.setupLinks.create(org.id, {
        admin_email: input.admin_email ?? null,
        connection_type: type,
        provider: idp?.key ?? null,
        connection_id: input.connection_id ?? null,
        ttlSeconds: input.ttl_seconds,
      });
      const url = `${config.issuer}/setup/${token}`;
      const event = { organization_id: org.id, connection_id: link.connection_id, user_id: null, ip: by.ip };
      await store.events.append({ ...event, type: 'setup.link_created', reason: null, detail: { setup_link_id: link.id, ...who(by) } });
      let emailed = false;
      let emailError: string | undefined;
      if (input.send_email && mailer) {
        try {
          await mailer.send({ to: input.admin_email!, ...invitation(org, url, link.expires_at) });
          emailed = true;
          await store.setupLinks.markEmailed(link.id);
          await store.events.append({ ...event, type: 'setup.emailed', reason: null, detail: { setup_link_id: link.id } });
        } catch (e) {
          // The link still works: the operator can pass it on another way.
          emailError = (e as Error)?.message?.slice(0, 200) ?? 'delivery failed';
          rt.logger.warn({ setup_link: link.id, err: emailError }, 'setup link invitation could not be sent');
          await store.events.append({ ...event, type: 'setup.email_failed', reason: 'smtp_failed', detail: { setup_link_id: link.id, error: emailError } });
        }
      }
      return { link: { ...link, emailed }, url, ...(emailError ? { emailError } : {}) };
    },

    async revoke(org, id, by) {
      const link = await load(org, id);
      await store.setupLinks.revoke(link.id, org.id);
      await store.events.append({
        organization_id: org.id,
        connection_id: link.connection_id,
        user_id: null,
        ip: by.ip,
        type: 'setup.revoked',
        reason: null,
        detail: { setup_link_id: link.id, ...(by.actor ? { actor: by.actor } : {}) },
      });
      return (await store.setupLinks.get(link.id, org.id)) ?? link;
    },
  };
}
