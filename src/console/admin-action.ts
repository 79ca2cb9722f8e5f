/**
 * How a console page runs an admin operation (context.ts `ConsoleDeps.adminAction`): as the
 * signed-in person, with operator scope, writing the same `admin.*` audit event the admin route
 * would write, naming the person as actor.
 */
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { AuditTrail } from '../admin/audit.js';
import type { AdminPrincipal } from '../admin/auth.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';

export const consolePrincipal = (res: Response): AdminPrincipal => ({ keyId: null, organizationId: null, actor: { type: 'console_user', id: consoleUserOf(res).id } });

export function consoleAdminAction(audit: AuditTrail, logger: Logger, principal: (res: Response) => AdminPrincipal = consolePrincipal): ConsoleDeps['adminAction'] {
  return async (req: Request, res: Response, change, operation) => {
    const who = principal(res);
    // Resolved before the change, as the admin API's audit does (after a DELETE the organization is gone).
    const organizationId = await audit.organizationIdOf(change.params?.org, who);
    const result = await operation(who);
    const obj = result && typeof result === 'object' ? (result as Record<string, unknown>) : {};
    const answer = { ...(typeof obj.id === 'string' ? { id: obj.id } : {}), ...(typeof obj.client_id === 'string' ? { client_id: obj.client_id } : {}) };
    await audit
      .recordChange(who, { method: change.method, routePath: change.route, params: change.params, fields: change.fields, answer, organizationId, ip: req.ip ?? null })
      .catch((err: unknown) => logger.error({ err, route: change.route }, 'audit event could not be written'));
    return result;
  };
}
