/** Who may use the console, decided from the user row alone (pure: the row in, a verdict out). */
import type { Organization, User } from '../store/types.js';
import type { ConsoleRole, ConsoleUser } from './context.js';

/** Why a signed-in person is refused the console (shown on the refusal page, stable). */
export type ConsoleRefusal = 'console_not_set_up' | 'not_console_organization' | 'no_console_role' | 'user_suspended' | 'user_not_found' | 'connection_disabled';

export const REFUSAL_TEXT: Record<ConsoleRefusal, string> = {
  console_not_set_up: 'The console organization does not exist yet. Run `npx portico console-link` on the server to create it and sign in.',
  not_console_organization: 'You signed in with an account of another organization. Only members of the console organization may use the console.',
  no_console_role: 'Your account has neither the operator nor the viewer role in the console organization. Ask an operator to give you one.',
  user_suspended: 'Your account is suspended.',
  user_not_found: 'Your account no longer exists.',
  connection_disabled: 'The connection you signed in through has been disabled or removed. Sign in again through another one.',
};

/** `operator` wins over `viewer`; any other role gives no access. */
export function consoleRoleOf(roles: readonly string[]): ConsoleRole | undefined {
  if (roles.includes('operator')) return 'operator';
  if (roles.includes('viewer')) return 'viewer';
  return undefined;
}

export function consoleAccess(user: User | undefined, consoleOrg: Organization | undefined): { user: ConsoleUser } | { refused: ConsoleRefusal } {
  if (!consoleOrg) return { refused: 'console_not_set_up' };
  if (!user) return { refused: 'user_not_found' };
  if (user.organization_id !== consoleOrg.id) return { refused: 'not_console_organization' };
  if (user.status !== 'active') return { refused: 'user_suspended' };
  const role = consoleRoleOf(user.roles);
  if (!role) return { refused: 'no_console_role' };
  return { user: { id: user.id, organization_id: user.organization_id, email: user.email ?? '', name: user.name, role } };
}
