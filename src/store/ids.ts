import { randomBytes } from 'node:crypto';

/**
 * Prefixed ids that sort by creation time (cursor pagination uses `id > cursor`):
 * `<prefix>_` + 9 base36 chars of milliseconds + 16 hex chars of randomness.
 * An underscore never appears in an organization slug, so `{org}` is unambiguous.
 */
export function newId(prefix: 'org' | 'con' | 'usr' | 'key' | 'evt' | 'app' | 'sul' | 'api' | 'dir' | 'grp' | 'whk' | 'bcl'): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}
