/**
 * The fetch used for admin-supplied URLs (discovery, JWKS, SAML metadata): no private addresses,
 * no plain http (those documents carry the keys logins are verified with), unless the operator
 * lifts the rules with PORTICO_ALLOW_PRIVATE_URLS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSafeFetch, UrlRefusedError } from '../../src/http/safe-fetch.js';

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big') {
      res.end('x'.repeat(2048));
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    if (e instanceof UrlRefusedError) return e.message;
    throw e;
  }
  throw new Error('expected a refusal');
};

test('private addresses are refused by literal and by name, before any connection', async () => {
  const strict = createSafeFetch({ allowPrivate: false });
  expect(await refusal(strict(`${base}/doc`))).toMatch(/private address/);
  expect(await refusal(strict('https://127.0.0.1:8443/doc'))).toMatch(/private address/);
  expect(await refusal(strict('https://[::1]:8443/doc'))).toMatch(/private address/);
  expect(await refusal(strict('https://localhost:8443/doc'))).toMatch(/resolves to a private address/);
});

test('plain http is refused unless allowed; the same URL is fetched when it is', async () => {
  const noHttp = createSafeFetch({ allowPrivate: true, allowHttp: false });
  expect(await refusal(noHttp(`${base}/doc`))).toMatch(/plain http is not fetched/);
  const strict = createSafeFetch({ allowPrivate: false });
  expect(await refusal(strict('http://idp.example.com/metadata'))).toMatch(/plain http is not fetched/);
  const lax = createSafeFetch({ allowPrivate: true });
  expect(await (await lax(`${base}/doc`)).json()).toEqual({ ok: true });
});

test('other schemes are never fetched, and bodies over the cap are refused', async () => {
  const lax = createSafeFetch({ allowPrivate: true, maxBytes: 1024 });
  expect(await refusal(lax('file:///etc/passwd'))).toMatch(/file: URLs are not fetched/);
  expect(await refusal(lax(`${base}/big`))).toMatch(/larger than 1024 bytes/);
  expect((await lax(`${base}/doc`)).status).toBe(200);
});
