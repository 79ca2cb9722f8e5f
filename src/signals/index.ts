import type { Runtime } from '../runtime.js';
import { startCertificateExpiryChecks } from './certificate-expiry.js';
import { DEFAULT_TRACE_RETENTION_DAYS, startTraceRetention } from './trace-retention.js';
import { WebhookDelivery } from './webhook-delivery.js';
import type { BackchannelQueue } from '../provider/backchannel.js';
import { everyInterval } from './periodic.js';

/**
 * The background work of one server process: webhook delivery (every second), the certificate
 * expiry check and the login-trace evidence purge (at start, then hourly), and with `backchannel`
 * (the serving app's logout queue) the take-over of back-channel logouts a stopped process left
 * (at start, then every 30 s). Every process runs them; the database keeps them from doing a
 * piece of work twice. The returned stop waits for rounds in flight.
 */
export function startSignals(rt: Runtime, opts: { backchannel?: () => BackchannelQueue } = {}): () => Promise<void> {
  const stopDelivery = new WebhookDelivery({ repo: rt.store.webhooks, fetch: rt.fetch, logger: rt.logger }).start();
  const stopExpiry = startCertificateExpiryChecks({ store: rt.store, certsDir: rt.config.certsDir, logger: rt.logger });
  const stopRetention = startTraceRetention({
    traces: rt.store.traces,
    logger: rt.logger,
    retentionDays: rt.config.traceRetentionDays ?? DEFAULT_TRACE_RETENTION_DAYS,
  });
  // The current app's queue: an app reloaded for new signing keys has a new one.
  const recoverLogouts = (queue: () => BackchannelQueue) => async () => {
    const n = await queue().recover();
    if (n) rt.logger.info({ notices: n }, 'back-channel logout: took over notices a stopped process left');
  };
  const stopRecovery = opts.backchannel ? everyInterval(recoverLogouts(opts.backchannel), 30_000, rt.logger, 'back-channel logout recovery') : async () => undefined;
  return async () => {
    await Promise.all([stopDelivery(), stopExpiry(), stopRetention(), stopRecovery()]);
  };
}
