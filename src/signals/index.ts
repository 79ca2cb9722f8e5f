import type { Runtime } from '../runtime.js';
import { startCertificateExpiryChecks } from './certificate-expiry.js';
import { WebhookDelivery } from './webhook-delivery.js';

/**
 * The background work of one server process: webhook delivery (every second) and the certificate
 * expiry check (at start, then hourly). Every process runs both; the database keeps them from
 * doing a piece of work twice. The returned stop waits for rounds in flight.
 */
export function startSignals(rt: Runtime): () => Promise<void> {
  const stopDelivery = new WebhookDelivery({ repo: rt.store.webhooks, fetch: rt.fetch, logger: rt.logger }).start();
  const stopExpiry = startCertificateExpiryChecks({ store: rt.store, certsDir: rt.config.certsDir, logger: rt.logger });
  return async () => {
    await Promise.all([stopDelivery(), stopExpiry()]);
  };
}
