/**
 * The SCIM router's onAccessEnded dependency (wired by the composition root to what ends a user's
 * sessions, grants and refresh tokens): called once per deactivation or deletion, with the reason,
 * before the SCIM response goes out; never for an update or a reactivation.
 */
import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { createStore, type Store } from '../../src/store/index.js';
import { SecretBox } from '../../src/store/secrets.js';
import { scimRoutes, type AccessEndReason } from '../../src/scim/routes.js';
import { pgliteBackend } from '../support/backends.js';
import { PATCH_OP, USER_SCHEMA } from './helpers.js';

describe('SCIM onAccessEnded', () => {
  let store: Store;
  let close: () => Promise<void>;
  const calls: [string, string, AccessEndReason][] = [];
  let app: express.Express;
  let orgId: string;

  beforeAll(async () => {
    const { db, cleanup } = await pgliteBackend.open();
    close = cleanup;
    store = createStore(db, new SecretBox('x'.repeat(32)));
    orgId = (await store.organizations.create({ slug: 'access-ended', name: 'A', domains: [] })).id;
    app = express();
    app.use(
      '/scim/v2/:directory',
      scimRoutes({
        store,
        logger: pino({ level: 'silent' }),
        issuer: 'http://localhost:8080',
        onAccessEnded: async (org, user, reason) => {
          // Slow on purpose: each expect right after a response proves the answer waited for it.
          await new Promise((r) => setTimeout(r, 50));
          calls.push([org, user, reason]);
        },
      }),
    );
  });
  afterAll(() => close?.());

  test('deactivation and DELETE end access (deprovisioned / deleted); updates and reactivation do not', async () => {
    const { directory, token } = await store.directories.create(orgId, { name: 'D', provider: 'okta' });
    const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' };
    const base = `/scim/v2/${directory.id}`;
    const created = await request(app).post(`${base}/Users`).set(auth).send(JSON.stringify({ schemas: [USER_SCHEMA], userName: 'u@a.example' })).expect(201);
    const id = created.body.id as string;
    const patch = (value: unknown) => request(app).patch(`${base}/Users/${id}`).set(auth).send(JSON.stringify({ schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value }] }));

    await request(app).put(`${base}/Users/${id}`).set(auth).send(JSON.stringify({ schemas: [USER_SCHEMA], userName: 'u@a.example', title: 'CTO' })).expect(200);
    expect(calls).toEqual([]);
    await patch(false).expect(200);
    expect(calls).toEqual([[orgId, id, 'deprovisioned']]);
    // Deactivating an inactive user again ends nothing more.
    await patch(false).expect(200);
    await patch(true).expect(200);
    expect(calls).toHaveLength(1);
    await request(app).delete(`${base}/Users/${id}`).set(auth).expect(204);
    expect(calls).toEqual([
      [orgId, id, 'deprovisioned'],
      [orgId, id, 'deprovisioned'],
    ]);

    await store.directories.update(directory.id, orgId, { user_deletion: 'delete' });
    const other = await request(app).post(`${base}/Users`).set(auth).send(JSON.stringify({ schemas: [USER_SCHEMA], userName: 'v@a.example' })).expect(201);
    await request(app).delete(`${base}/Users/${other.body.id}`).set(auth).expect(204);
    expect(calls[2]).toEqual([orgId, other.body.id, 'deleted']);
    expect(await store.users.get(other.body.id)).toBeUndefined();
  });
});
