import { Gauge, type Registry } from 'prom-client';
import { watchedCertificates, type CertificateSources } from './certificates.js';

const METRIC = 'portico_connection_certificate_not_after_seconds';

/**
 * `portico_connection_certificate_not_after_seconds{organization,connection}`: when each SAML
 * connection's IdP certificate expires (Unix seconds; with several — a rotation — the latest, the
 * one logins keep working until), and Portico's own SP certificates (`organization=""`,
 * `connection="portico-saml-sp-signing"|"portico-saml-sp-encryption"`). Read from the database at
 * each scrape, so every process reports the same and nothing is kept in memory.
 */
export function registerCertificateGauge(registry: Registry, src: CertificateSources): void {
  // A reloaded app (new signing keys) shares the registry and the runtime: the gauge is there already.
  if (registry.getSingleMetric(METRIC)) return;
  new Gauge({
    name: METRIC,
    help: 'notAfter of IdP and SP certificates, Unix seconds (latest per connection)',
    labelNames: ['organization', 'connection'],
    registers: [registry],
    // Every worker of a cluster reads the same rows: the aggregate is the value, not N times it.
    aggregator: 'max',
    async collect() {
      this.reset();
      const latest = new Map<string, { organization: string; seconds: number }>();
      // A database that does not answer leaves the gauge empty for this scrape; /metrics still answers.
      const certificates = await watchedCertificates(src).catch(() => []);
      for (const c of certificates) {
        const seconds = Math.floor(c.notAfter.getTime() / 1000);
        const prev = latest.get(c.holder);
        if (!prev || prev.seconds < seconds) latest.set(c.holder, { organization: c.organization_id ?? '', seconds });
      }
      for (const [connection, v] of latest) this.set({ organization: v.organization, connection }, v.seconds);
    },
  });
}
