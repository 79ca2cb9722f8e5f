import { pino } from 'pino';
import { checkCertificateExpiry, crossedThreshold, startCertificateExpiryChecks } from '../../src/signals/certificate-expiry.js';
import { describeCertificate } from '../../src/upstream/saml/certificates.js';
import { ensureSpKeys } from '../../src/upstream/saml/sp-keys.js';
import { api, createOrg } from '../admin/helpers.js';
import { selfSignedCert } from '../admin/upstream-fixtures.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { dbBackends } from '../support/backends.js';

const DAY = 86_400_000;
const logger = pino({ level: 'silent' });

interface Ev {
  type: string;
  organization_id: string | null;
  connection_id: string | null;
  detail: { threshold_days?: number; not_after: string; fingerprint_sha256: string; certificate: string };
}

describe.each(dbBackends)('certificate expiry ($name)', (backend) => {
  let t: TestApp;
  let org: { id: string; slug: string };
  let conn: { id: string };
  let notAfter: Date;
  let fingerprint: string;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
    org = await createOrg(t);
    const cert = await selfSignedCert('expiring-idp.example.com');
    ({ fingerprint_sha256: fingerprint } = describeCertificate(cert));
    notAfter = new Date(describeCertificate(cert).not_after);
    conn = (
      await api(t)
        .post(`/api/v1/organizations/${org.slug}/connections`)
        .set(bearer())
        .send({ type: 'saml', name: 'Expiring IdP', idp_entity_id: 'https://idp.expiring.example', idp_sso_url: 'https://idp.expiring.example/sso', idp_certificates: [cert] })
        .expect(201)
    ).body;
  });
  afterAll(() => t.close());

  const deps = () => ({ store: t.runtime.store, certsDir: t.runtime.config.certsDir, logger });
  const notices = async (): Promise<Ev[]> =>
    (await api(t).get(`/api/v1/organizations/${org.slug}/events?type=connection.*&connection_id=${conn.id}`).set(bearer()).expect(200)).body.data;
  const at = (msBeforeNotAfter: number) => new Date(notAfter.getTime() - msBeforeNotAfter);

  it('writes connection.certificate_expiring at 30, 7 and 1 days and connection.certificate_expired, each once, whatever the number of processes', async () => {
    const run = async (when: Date) => (await checkCertificateExpiry(deps(), when)).filter((e) => e.connection_id === conn.id).length;
    expect(await run(at(40 * DAY))).toBe(0);
    expect(await run(at(30 * DAY - 1000))).toBe(1);
    expect(await run(at(29 * DAY))).toBe(0); // hourly checks go on: nothing new
    expect(await run(at(8 * DAY))).toBe(0);
    // Several processes check at the same moment: one notice.
    const together = await Promise.all([at(6 * DAY), at(6 * DAY), at(6 * DAY)].map(run));
    expect(together.reduce((a, b) => a + b, 0)).toBe(1);
    expect(await run(at(DAY - 1000))).toBe(1);
    expect(await run(at(3600_000))).toBe(0);
    expect(await run(at(-1000))).toBe(1);
    expect(await run(at(-30 * DAY))).toBe(0);

    const list = await notices();
    expect(list.map((e) => [e.type, e.detail.threshold_days ?? null])).toEqual([
      ['connection.certificate_expired', null],
      ['connection.certificate_expiring', 1],
      ['connection.certificate_expiring', 7],
      ['connection.certificate_expiring', 30],
    ]);
    for (const e of list) {
      expect(e).toMatchObject({ organization_id: org.id, connection_id: conn.id });
      expect(e.detail).toMatchObject({ certificate: 'idp', fingerprint_sha256: fingerprint, not_after: notAfter.toISOString() });
    }
  });

  it("watches Portico's own SAML SP certificates too", async () => {
    const sp = await ensureSpKeys(t.runtime.config.certsDir);
    const spNotAfter = new Date(describeCertificate(sp.signing.certPem).not_after);
    const written = await checkCertificateExpiry(deps(), new Date(spNotAfter.getTime() - 2 * DAY));
    const own = written.filter((e) => e.organization_id === null).map((e) => [e.type, e.detail.certificate, e.detail.threshold_days]);
    expect(own).toEqual(
      expect.arrayContaining([
        ['connection.certificate_expiring', 'portico-saml-sp-signing', 7],
        ['connection.certificate_expiring', 'portico-saml-sp-encryption', 7],
      ]),
    );
    const all = (await api(t).get('/api/v1/events?type=connection.certificate_expiring').set(bearer()).expect(200)).body.data as Ev[];
    expect(all.filter((e) => e.organization_id === null)).toHaveLength(2);
  });

  it('the hourly job runs at start on its clock and stops cleanly', async () => {
    const other = await createOrg(t);
    const cert = await selfSignedCert('job-idp.example.com');
    const c = (
      await api(t)
        .post(`/api/v1/organizations/${other.slug}/connections`)
        .set(bearer())
        .send({ type: 'saml', name: 'Job IdP', idp_entity_id: 'https://idp.job.example', idp_sso_url: 'https://idp.job.example/sso', idp_certificates: [cert] })
        .expect(201)
    ).body;
    const when = new Date(new Date(describeCertificate(cert).not_after).getTime() - 20 * DAY);
    const stop = startCertificateExpiryChecks(deps(), { clock: () => when, intervalMs: 3600_000 });
    await stop(); // waits for the check in flight
    const list = (await api(t).get(`/api/v1/organizations/${other.slug}/events?type=connection.certificate_expiring`).set(bearer()).expect(200)).body.data as Ev[];
    expect(list.map((e) => [e.connection_id, e.detail.threshold_days])).toEqual([[c.id, 30]]);
  });

  it('publishes portico_connection_certificate_not_after_seconds on /metrics', async () => {
    await ensureSpKeys(t.runtime.config.certsDir);
    const text = (await api(t).get('/metrics').expect(200)).text;
    const value = (labels: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`portico_connection_certificate_not_after_seconds{${labels}}`));
      return line ? Number(line.split(' ').pop()) : undefined;
    };
    expect(value(`organization="${org.id}",connection="${conn.id}"`)).toBe(Math.floor(notAfter.getTime() / 1000));
    const sp = describeCertificate((await ensureSpKeys(t.runtime.config.certsDir)).signing.certPem);
    expect(value('organization="",connection="portico-saml-sp-signing"')).toBe(Math.floor(Date.parse(sp.not_after) / 1000));
  });
});

describe('crossedThreshold', () => {
  const notAfter = new Date('2027-01-31T00:00:00Z');
  it.each([
    [31 * DAY, undefined],
    [30 * DAY, 30],
    [8 * DAY, 30],
    [7 * DAY, 7],
    [5 * DAY, 7],
    [DAY, 1],
    [1, 1],
    [0, 'expired'],
    [-DAY, 'expired'],
  ])('%d ms before notAfter -> %s', (before, expected) => {
    expect(crossedThreshold(notAfter, new Date(notAfter.getTime() - before))).toBe(expected);
  });
});
