/**
 * The example application's settings, from the environment. The defaults match the README's
 * quick start: Portico on http://localhost:8080, this application on http://localhost:3000.
 */
import { randomBytes } from 'node:crypto';

export function readConfig(env = process.env) {
  const clientId = env.CLIENT_ID;
  if (!clientId) throw new Error('CLIENT_ID is required: the client_id Portico returned when the application was created');
  const appUrl = new URL(env.APP_URL ?? `http://localhost:${env.PORT ?? 3000}`);
  return {
    /** Portico's issuer: discovery is at `${issuer}/.well-known/openid-configuration`. */
    issuer: new URL(env.PORTICO_URL ?? 'http://localhost:8080'),
    clientId,
    /** Absent for a `public` application (then PKCE alone protects the code). */
    clientSecret: env.CLIENT_SECRET || undefined,
    appUrl,
    port: Number(env.PORT ?? (appUrl.port || 3000)),
    /** Signs the session cookie; a random one per start is fine for an example (sessions end with the process). */
    sessionSecret: env.SESSION_SECRET ?? randomBytes(32).toString('hex'),
  };
}
