import { pino, type Logger } from 'pino';

/**
 * Paths never logged in full: credentials, cookies, tokens, SAML messages. Query strings are dropped
 * from logged URLs because they can carry codes, tokens (`/jwt/..?token=`) and SAMLRequest/SAMLResponse.
 */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.client_secret',
  '*.secret',
  '*.password',
  '*.token',
  '*.key',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' } });
}

export function stripQuery(url: string | undefined): string {
  if (!url) return '';
  const i = url.indexOf('?');
  return i < 0 ? url : `${url.slice(0, i)}?…`;
}
