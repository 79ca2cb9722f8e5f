import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventRepo } from '../store/repos/events.js';

/** docs/reference.md "Events": what a SCIM directory did to the organization's directory. Each carries `detail.directory_id`. */
export type DirectoryEventType =
  | 'user.provisioned'
  | 'user.updated'
  | 'user.deprovisioned'
  | 'user.reactivated'
  | 'group.created'
  | 'group.updated'
  | 'group.deleted';

/** A refused SCIM request (bad token, invalid filter, uniqueness, …), with its reason code. */
export const DIRECTORY_REQUEST_FAILED = 'directory.request_failed';

export interface DirectoryEventContext {
  organization_id: string | null;
  directory_id: string;
  ip?: string | null;
}

export class DirectoryEvents {
  constructor(
    private readonly repo: EventRepo,
    private readonly logger: Logger,
  ) {}

  async record(type: DirectoryEventType, ctx: DirectoryEventContext, userId: string | null, detail: Record<string, unknown> = {}): Promise<void> {
    await this.repo.append({
      type,
      reason: null,
      organization_id: ctx.organization_id,
      connection_id: null,
      user_id: userId,
      ip: ctx.ip ?? null,
      detail: { directory_id: ctx.directory_id, ...detail },
    });
  }

  /**
   * Never lets the failure of writing the event change the answer to the request. `aggregate`
   * (refusals of anonymous callers: a missing or wrong token) makes identical refusals from one IP
   * within a minute one row with `detail.count`, so nobody can flood the organization's event log
   * by knowing a directory id.
   */
  async failed(reason: string, ctx: DirectoryEventContext, detail: Record<string, unknown> = {}, aggregate = false): Promise<void> {
    this.logger.info({ org: ctx.organization_id, directory: ctx.directory_id, reason }, 'SCIM request refused');
    try {
      const write = aggregate ? (e: Parameters<EventRepo['append']>[0]) => this.repo.appendOrCount(windowId(ctx, reason), e) : (e: Parameters<EventRepo['append']>[0]) => this.repo.append(e);
      await write({
        type: DIRECTORY_REQUEST_FAILED,
        reason,
        organization_id: ctx.organization_id,
        connection_id: null,
        user_id: null,
        ip: ctx.ip ?? null,
        detail: { directory_id: ctx.directory_id, ...detail },
      });
    } catch (err) {
      this.logger.error({ err }, 'could not record a refused SCIM request');
    }
  }
}

const WINDOW_MS = 60_000;

/** The id of the row counting this minute's identical refusals: time-ordered like every event id (store/ids.ts). */
function windowId(ctx: DirectoryEventContext, reason: string): string {
  const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
  const key = createHash('sha256').update(`${ctx.directory_id}\n${reason}\n${ctx.ip ?? ''}`).digest('hex').slice(0, 16);
  return `evt_${start.toString(36).padStart(9, '0')}${key}`;
}
