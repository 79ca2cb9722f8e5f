import type { Response } from 'express';
import type { Logger } from 'pino';
import type { Provisioning } from '../directory/provisioning.js';
import type { DirectoryEvents } from '../events/directory.js';
import type { Store } from '../store/index.js';
import type { DirectoryRow } from '../store/types.js';
import { SCIM_CONTENT_TYPE } from './errors.js';

/** Why a user's access ended; the same names as the lead's UserAccess.end. */
export type AccessEndReason = 'suspended' | 'deleted' | 'sessions_revoked' | 'deprovisioned' | 'removed';
export type OnAccessEnded = (organizationId: string, userId: string, reason: AccessEndReason) => Promise<void>;

/** What every handler gets: the authenticated directory and its SCIM base URL. */
export interface ScimContext {
  directory: DirectoryRow;
  baseUrl: string;
  provisioning: Provisioning;
  events: DirectoryEvents;
  onAccessEnded: OnAccessEnded;
  logger: Logger;
  store: Store;
}

export const scimContext = (res: Response): ScimContext => res.locals.scim as ScimContext;

export function sendScim(res: Response, status: number, body: unknown, location?: string) {
  if (location) res.set('Location', location);
  res.status(status).type(SCIM_CONTENT_TYPE).send(JSON.stringify(body));
}

