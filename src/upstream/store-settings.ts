import { HttpProblem } from '../http/problem.js';
import { UrlRefusedError } from '../http/safe-fetch.js';
import type { ConnectionType } from '../store/types.js';
import { connectionSettings } from './registry.js';
import type { SettingsContext, StoredSettings } from './settings.js';

/**
 * Validates a connection's type-specific input and derives its stored form — the one code path of
 * the admin API and the setup portal. Fetch failures of admin-supplied URLs become 400s
 * (`url_refused`, `fetch_failed`); settings problems are the kind's own HttpProblems.
 */
export async function storeSettings(
  type: ConnectionType,
  input: Record<string, unknown>,
  existing: StoredSettings | undefined,
  ctx: SettingsContext,
): Promise<StoredSettings> {
  try {
    return await connectionSettings[type].store(input, existing, ctx);
  } catch (e) {
    if (e instanceof HttpProblem) throw e;
    if (e instanceof UrlRefusedError) throw new HttpProblem(400, 'url_refused', e.message);
    const name = (e as Error)?.name;
    if (name === 'TimeoutError' || name === 'AbortError' || (e instanceof TypeError && /fetch failed/.test(e.message))) {
      throw new HttpProblem(400, 'fetch_failed', 'the URL could not be fetched');
    }
    throw e;
  }
}
