/** /Users (RFC 7644 §3.3–3.6): create, get, list with filter, PUT, PATCH, DELETE. */
import { Router, type Request, type Response } from 'express';
import { NotProvisioned, ProvisioningConflict } from '../directory/provisioning.js';
import type { DirectoryUser } from '../store/types.js';
import { scimNotFound, uniqueness } from './errors.js';
import { filterToSql } from './filter.js';
import { applyPatch, patchOperations } from './patch.js';
import { filterParam, pagination } from './query.js';
import { project, projectionOf, userView, wants } from './resources.js';
import { listOf } from './discovery.js';
import { profileOf, USER_SCHEMA, userResource, type Json } from './schema.js';
import { scimContext, sendScim, type ScimContext } from './context.js';

async function withUniqueness<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    if (e instanceof ProvisioningConflict) throw uniqueness(e.message);
    if (e instanceof NotProvisioned) throw scimNotFound('user');
    throw e;
  }
}

async function load(ctx: ScimContext, id: string): Promise<DirectoryUser> {
  const user = id.length <= 100 ? await ctx.store.directoryUsers.get(ctx.directory.id, id) : undefined;
  if (!user) throw scimNotFound('user');
  return user;
}

async function view(ctx: ScimContext, req: Request, u: DirectoryUser, knownGroups?: { id: string; display_name: string }[]): Promise<Json> {
  const p = projectionOf(req.query);
  const groups = wants(p, 'groups') ? (knownGroups ?? (await ctx.store.directoryGroups.groupsOf(u.user_id))) : undefined;
  return project(userView(ctx.baseUrl, u, groups), p);
}

/**
 * Writes the new resource and says what happened to the person: a deactivation ends their access
 * at once (onAccessEnded: gateway sessions, grants, refresh tokens), a reactivation restores login.
 */
async function replace(ctx: ScimContext, req: Request, before: DirectoryUser, resource: Json, keepStatus = false): Promise<DirectoryUser> {
  // keepStatus: a PATCH that does not change `active` writes no status, so that it cannot undo a
  // deactivation another request made since it read the user (attacker review: it did, silently).
  const profile = { ...profileOf(resource), ...(keepStatus ? { active: undefined } : {}) };
  const { id: _id, ...stored } = resource;
  await withUniqueness(() => ctx.provisioning.replaceUser(ctx.directory, before.user_id, profile, stored));
  const after = (await ctx.store.directoryUsers.get(ctx.directory.id, before.user_id))!;
  const ev = { organization_id: ctx.directory.organization_id, directory_id: ctx.directory.id, ip: req.ip ?? null };
  if (before.status === 'active' && after.status === 'suspended') {
    await ctx.onAccessEnded(ctx.directory.organization_id, after.user_id, 'deprovisioned');
    await ctx.events.record('user.deprovisioned', ev, after.user_id, { deleted: false });
  } else if (before.status === 'suspended' && after.status === 'active') {
    await ctx.events.record('user.reactivated', ev, after.user_id);
  } else await ctx.events.record('user.updated', ev, after.user_id);
  return after;
}

/** The resource as a PATCH sees it: what is stored, with `active` as it is now. */
const current = (u: DirectoryUser): Json => ({ ...u.resource, active: u.status === 'active' });

export function userRoutes(): Router {
  const r = Router();

  r.post('/Users', async (req: Request, res: Response) => {
    const ctx = scimContext(res);
    const resource = userResource(req.body);
    const profile = profileOf(resource);
    const { userId, adopted, suspended } = await withUniqueness(() => ctx.provisioning.createUser(ctx.directory, profile, resource));
    const user = (await ctx.store.directoryUsers.get(ctx.directory.id, userId))!;
    const ev = { organization_id: ctx.directory.organization_id, directory_id: ctx.directory.id, ip: req.ip ?? null };
    await ctx.events.record('user.provisioned', ev, userId, { adopted });
    // An active user adopted with active: false is deprovisioned: their sessions end now (attacker review: they did not).
    if (suspended) {
      await ctx.onAccessEnded(ctx.directory.organization_id, userId, 'deprovisioned');
      await ctx.events.record('user.deprovisioned', ev, userId, { deleted: false });
    }
    // Just provisioned: in no group of this directory yet.
    sendScim(res, 201, await view(ctx, req, user, []), `${ctx.baseUrl}/Users/${userId}`);
  });

  r.get('/Users', async (req, res) => {
    const ctx = scimContext(res);
    const filter = filterParam(req);
    const where = filter ? filterToSql(filter, 'User') : undefined;
    const { startIndex, count } = pagination(req);
    const p = projectionOf(req.query);
    const page = await ctx.store.directoryUsers.list(ctx.directory.id, ctx.directory.organization_id, where, startIndex - 1, count);
    const resources = await Promise.all(page.rows.map((u) => view(ctx, req, u)));
    sendScim(res, 200, listOf(resources.map((x) => project(x, p)), page.total, startIndex));
  });

  r.get('/Users/:id', async (req, res) => {
    const ctx = scimContext(res);
    sendScim(res, 200, await view(ctx, req, await load(ctx, req.params.id!)));
  });

  // Okta updates (and deactivates, with active: false) by PUT of the whole user.
  r.put('/Users/:id', async (req, res) => {
    const ctx = scimContext(res);
    const before = await load(ctx, req.params.id!);
    const after = await replace(ctx, req, before, userResource(req.body));
    sendScim(res, 200, await view(ctx, req, after));
  });

  // Entra ID updates by PATCH, including `active` as "False" and path-less replaces.
  r.patch('/Users/:id', async (req, res) => {
    const ctx = scimContext(res);
    const ops = patchOperations(req.body);
    const before = await load(ctx, req.params.id!);
    const resource = userResource(applyPatch(current(before), ops, USER_SCHEMA));
    const keepStatus = (resource.active !== false) === (before.status === 'active');
    const after = await replace(ctx, req, before, resource, keepStatus);
    sendScim(res, 200, await view(ctx, req, after));
  });

  r.delete('/Users/:id', async (req, res) => {
    const ctx = scimContext(res);
    const user = await load(ctx, req.params.id!);
    // With user_deletion 'delete', an admin-suspended user is detached all the same (Provisioning.deleteUser).
    let deleted = false;
    if (ctx.directory.user_deletion === 'delete') deleted = await ctx.provisioning.deleteUser(ctx.directory, user.user_id);
    else await ctx.provisioning.detachUser(ctx.directory, user.user_id);
    await ctx.onAccessEnded(ctx.directory.organization_id, user.user_id, deleted ? 'deleted' : 'deprovisioned');
    await ctx.events.record(
      'user.deprovisioned',
      { organization_id: ctx.directory.organization_id, directory_id: ctx.directory.id, ip: req.ip ?? null },
      user.user_id,
      { deleted },
    );
    res.status(204).end();
  });

  return r;
}
