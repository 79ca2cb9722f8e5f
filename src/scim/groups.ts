/** /Groups (RFC 7644 §3.3–3.6). Members are users of the same directory; roles follow attribute_mapping. */
import { Router, type Request, type Response } from 'express';
import { ProvisioningConflict, UnknownMember } from '../directory/provisioning.js';
import type { DirectoryGroup } from '../store/types.js';
import { invalidValue, scimNotFound, uniqueness } from './errors.js';
import { filterToSql } from './filter.js';
import { applyPatch, memberValuesIn, patchOperations } from './patch.js';
import { filterParam, pagination } from './query.js';
import { project, projectionOf, groupView, wants } from './resources.js';
import { listOf } from './discovery.js';
import { GROUP_SCHEMA, groupInput, MAX_MEMBERS_PER_REQUEST, tooManyMembers, type Json } from './schema.js';
import { scimContext, sendScim, type ScimContext } from './context.js';

async function guarded<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    if (e instanceof ProvisioningConflict) throw uniqueness(e.message);
    if (e instanceof UnknownMember) throw invalidValue(e.message);
    throw e;
  }
}

async function load(ctx: ScimContext, id: string): Promise<DirectoryGroup> {
  const g = id.length <= 100 ? await ctx.store.directoryGroups.get(ctx.directory.id, id) : undefined;
  if (!g) throw scimNotFound('group');
  return g;
}

async function view(ctx: ScimContext, req: Request, g: DirectoryGroup): Promise<Json> {
  const p = projectionOf(req.query);
  const members = wants(p, 'members') ? await ctx.store.directoryGroups.members(g.id) : undefined;
  return project(groupView(ctx.baseUrl, g, members), p);
}

const ev = (ctx: ScimContext, req: Request) => ({ organization_id: ctx.directory.organization_id, directory_id: ctx.directory.id, ip: req.ip ?? null });

export function groupRoutes(): Router {
  const r = Router();

  r.post('/Groups', async (req: Request, res: Response) => {
    const ctx = scimContext(res);
    const input = groupInput(req.body);
    const id = await guarded(() => ctx.provisioning.createGroup(ctx.directory, input));
    await ctx.events.record('group.created', ev(ctx, req), null, { group_id: id, display_name: input.displayName, members: input.members.length });
    sendScim(res, 201, await view(ctx, req, (await ctx.store.directoryGroups.get(ctx.directory.id, id))!), `${ctx.baseUrl}/Groups/${id}`);
  });

  r.get('/Groups', async (req, res) => {
    const ctx = scimContext(res);
    const filter = filterParam(req);
    const where = filter ? filterToSql(filter, 'Group') : undefined;
    const { startIndex, count } = pagination(req);
    const page = await ctx.store.directoryGroups.list(ctx.directory.id, where, startIndex - 1, count);
    sendScim(res, 200, listOf(await Promise.all(page.rows.map((g) => view(ctx, req, g))), page.total, startIndex));
  });

  r.get('/Groups/:id', async (req, res) => {
    const ctx = scimContext(res);
    sendScim(res, 200, await view(ctx, req, await load(ctx, req.params.id!)));
  });

  r.put('/Groups/:id', async (req, res) => {
    const ctx = scimContext(res);
    const input = groupInput(req.body);
    const g = await load(ctx, req.params.id!);
    const change = await guarded(() => ctx.provisioning.replaceGroup(ctx.directory, g.id, input));
    await ctx.events.record('group.updated', ev(ctx, req), null, { group_id: g.id, added: change.added.length, removed: change.removed.length });
    sendScim(res, 200, await view(ctx, req, (await ctx.store.directoryGroups.get(ctx.directory.id, g.id))!));
  });

  // Entra ID adds and removes members in batches of PATCH operations; Okta with value filters.
  r.patch('/Groups/:id', async (req, res) => {
    const ctx = scimContext(res);
    const ops = patchOperations(req.body);
    if (memberValuesIn(ops) > MAX_MEMBERS_PER_REQUEST) throw tooManyMembers();
    const g = await load(ctx, req.params.id!);
    const members = await ctx.store.directoryGroups.members(g.id);
    const doc: Json = { displayName: g.display_name, externalId: g.external_id, members: members.map((m) => ({ value: m.user_id })) };
    const input = groupInput(applyPatch(doc, ops, GROUP_SCHEMA), false);
    // What this PATCH changes, as a delta on the members it read (replaceGroup).
    const read = new Set(members.map((m) => m.user_id));
    const next = new Set(input.members);
    const delta = { added: input.members.filter((m) => !read.has(m)), removed: [...read].filter((m) => !next.has(m)) };
    const change = await guarded(() => ctx.provisioning.replaceGroup(ctx.directory, g.id, input, delta));
    await ctx.events.record('group.updated', ev(ctx, req), null, { group_id: g.id, added: change.added.length, removed: change.removed.length });
    // RFC 7644 §3.5.2: 204 unless the client asked for attributes back.
    if (req.query.attributes === undefined) return void res.status(204).end();
    sendScim(res, 200, await view(ctx, req, (await ctx.store.directoryGroups.get(ctx.directory.id, g.id))!));
  });

  r.delete('/Groups/:id', async (req, res) => {
    const ctx = scimContext(res);
    const g = await load(ctx, req.params.id!);
    await ctx.provisioning.deleteGroup(ctx.directory, g.id);
    await ctx.events.record('group.deleted', ev(ctx, req), null, { group_id: g.id, display_name: g.display_name });
    res.status(204).end();
  });

  return r;
}
