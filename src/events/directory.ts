import type { Logger } from 'pino';
import type { EventRepo } from '../store/repos/events.js';

/** DESIGN §8: what a SCIM directory did to the organization's directory. Each carries `detail.directory_id`. */
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

  /** Never lets the failure of writing the event change the answer to the request. */
  async failed(reason: string, ctx: DirectoryEventContext, detail: Record<string, unknown> = {}): Promise<void> {
    this.logger.info({ org: ctx.organization_id, directory: ctx.directory_id, reason }, 'SCIM request refused');
    try {
      await this.repo.append({
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
