/** Too many form parameters is a 413 with the stable payload_too_large code (review: it was a generic bad_request). */
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app.js';

describe('a form with too many parameters', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  it('is refused 413 payload_too_large on a browser route (an HTML page), and a normal form is read', async () => {
    const many = new URLSearchParams(Array.from({ length: 30 }, (_, i) => [`f${i}`, 'x'])).toString();
    const res = await request(t.express).post('/login').type('form').send(many);
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('payload_too_large');
    const normal = await request(t.express).post('/login').type('form').send('email=someone%40nowhere.test');
    expect(normal.status).not.toBe(413);
    expect(normal.text).not.toContain('payload_too_large');
  });
});
