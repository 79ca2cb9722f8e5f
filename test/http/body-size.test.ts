/**
 * A multipart body is capped as a whole from its Content-Length before any byte is read
 * (src/http/body-size.ts): multer caps each part only (attacker review: ~22 MB requests, read
 * before the CSRF check, crashed the server out of memory). The console and the setup portal use it.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { multipartAtMost } from '../../src/http/body-size.js';

describe('multipartAtMost', () => {
  const app = express();
  let bodiesRead = 0;
  app.post(
    '/up',
    multipartAtMost(1000, (_req, res, status) => void res.status(status).send(`refused ${status}`)),
    (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        bodiesRead++;
        res.send(`read ${n}`);
      });
    },
  );
  let base: { host: string; port: number };
  let close: () => Promise<void>;
  beforeAll(async () => {
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
    close = () => new Promise((r) => server.close(() => r()));
  });
  afterAll(() => close());

  const send = (headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest({ ...base, path: '/up', method: 'POST', headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += String(c)));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      if (body !== undefined) req.end(body);
      else req.flushHeaders(); // the length is declared, nothing is sent
    });
  const multipart = { 'content-type': 'multipart/form-data; boundary=x' };

  it('refuses a declared length over the cap (413) and one without a length (411), reading nothing', async () => {
    expect(await send({ ...multipart, 'content-length': String(50 * 1024 * 1024) })).toEqual({ status: 413, text: 'refused 413' });
    expect(await send({ ...multipart, 'content-length': '1001' })).toEqual({ status: 413, text: 'refused 413' });
    expect(await send({ ...multipart, 'transfer-encoding': 'chunked' }, 'a')).toEqual({ status: 411, text: 'refused 411' });
    expect(bodiesRead).toBe(0);
  });

  it('passes a multipart body within the cap, and any other body to its own parser', async () => {
    expect(await send({ ...multipart, 'content-length': '1000' }, 'x'.repeat(1000))).toEqual({ status: 200, text: 'read 1000' });
    expect(await send({ 'content-type': 'application/x-www-form-urlencoded', 'content-length': '2000' }, 'y'.repeat(2000))).toEqual({ status: 200, text: 'read 2000' });
    expect(bodiesRead).toBe(2);
  });
});
