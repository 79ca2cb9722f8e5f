/** The access log: one line per request, URL redacted, 5xx at error, nothing for /healthz and /metrics. */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { accessLog } from '../../src/http/access-log.js';
import { createLogger } from '../../src/http/logging.js';

function appLogging(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(level, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const app = express();
  app.use(accessLog(logger, (path) => path === '/healthz'));
  const link = express.Router();
  link.get('/:token', (_req, res) => void res.status(303).set('Location', '/x').end());
  app.use('/link', link);
  app.get('/jwt/:id/login', (_req, res) => void res.send('ok'));
  app.get('/boom', (_req, res) => void res.status(500).send('no'));
  app.get('/healthz', (_req, res) => void res.send('ok'));
  return { app, lines };
}

describe('accessLog', () => {
  it('writes one line per answered request: method, redacted URL (prefix of a mounted router kept), status, time', async () => {
    const { app, lines } = appLogging();
    await request(app).get('/link/lnk_secret-token-value').expect(303);
    await request(app).get('/jwt/con_1/login?token=eyJ.secret.sig&client_id=app').expect(200);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'request completed', req: { method: 'GET', url: '/link/[redacted]' }, res: { statusCode: 303 }, responseTime: expect.any(Number) });
    expect(lines[1]).toMatchObject({ req: { url: '/jwt/con_1/login?token=[redacted]&client_id=[redacted]' }, res: { statusCode: 200 } });
    expect(lines[1]!.req).toEqual({ id: expect.any(Number), method: 'GET', url: expect.any(String) });
    expect(JSON.stringify(lines)).not.toMatch(/secret/);
  });

  it('redacts a secret path segment in any case (Express routes /LINK/<token> as /link/<token>)', async () => {
    const { app, lines } = appLogging();
    await request(app).get('/LINK/lnk_secret-token-value').expect(303);
    await request(app).get('/Link/lnk_secret-token-value').expect(303);
    expect(lines.map((l) => (l.req as { url: string }).url)).toEqual(['/LINK/[redacted]', '/Link/[redacted]']);
  });

  it('redacts the token of an absolute-form request line, of doubled slashes and of an encoded slash (attacker review: logged in full)', async () => {
    const { app, lines } = appLogging();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    // A request line as a proxy (or a client that keeps the absolute URL) sends it: `GET http://host/link/<token> HTTP/1.1`.
    const send = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await send(`http://127.0.0.1:${port}/link/lnk_secret-token-value`)).toBe(303); // routed: the link works this way too
      await send(`HTTP://127.0.0.1:${port}/setup/secret-token-value/provider?x=1`);
      await send('//link/lnk_secret-token-value');
      await send('/link%2Flnk_secret-token-value');
      await send(`http://127.0.0.1:${port}/jwt/con_1/login?token=eyJ.secret.sig`);
      // Express reads an absolute-form target's backslash as a slash: routed as /link/<token> (review).
      expect(await send(`http://127.0.0.1:${port}/link\\lnk_secret-token-value`)).toBe(303);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(lines.map((l) => (l.req as { url: string }).url)).toEqual([
      '/link/[redacted]',
      '/setup/[redacted]/provider?x=[redacted]',
      '/link/[redacted]',
      '/link/[redacted]',
      '/jwt/con_1/login?token=[redacted]',
      '/link/[redacted]',
    ]);
    expect(JSON.stringify(lines)).not.toMatch(/secret/);
  });

  it('logs 5xx answers at error; skips the paths it is told to; writes nothing below info', async () => {
    const { app, lines } = appLogging();
    await request(app).get('/boom').expect(500);
    await request(app).get('/healthz').expect(200);
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'request errored', res: { statusCode: 500 } })]);
    const quiet = appLogging('warn');
    await request(quiet.app).get('/jwt/con_1/login').expect(200);
    expect(quiet.lines).toEqual([]);
  });
});
