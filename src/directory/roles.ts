/**
 * IdP groups and roles to Portico roles, the same for every protocol. `attribute_mapping` keys
 * `role:<portico role>` list the upstream values (groups or roles, comma-separated) that grant it:
 *   { "role:admin": "Portico-Admins", "role:viewer": "3f2a…guid, Readers" }
 * When any `role:` key is present, the user's roles are exactly the Portico roles so granted (an
 * allow-list: an upstream cannot hand out a role nobody mapped); without one, the upstream's
 * roles are kept as sent.
 */
export function mapRoles(identityRoles: string[], groups: string[], mapping: Record<string, string>): string[] {
  const rules = Object.entries(mapping).filter(([k]) => k.startsWith('role:') && k.length > 5);
  if (!rules.length) return [...new Set(identityRoles)].sort();
  const values = new Set([...identityRoles, ...groups]);
  const roles = rules
    .filter(([, v]) =>
      String(v)
        .split(',')
        .map((s) => s.trim())
        .some((w) => w && values.has(w)),
    )
    .map(([k]) => k.slice(5));
  return [...new Set(roles)].sort();
}

export const hasRoleRules = (mapping: Record<string, string>): boolean => Object.keys(mapping).some((k) => k.startsWith('role:') && k.length > 5);

/**
 * The roles a login writes to the directory, or undefined to leave the user's roles as they are.
 * With `role:` rules the connection owns the roles: every login sets exactly the granted ones, so a
 * group the IdP no longer sends takes its role away (even the last one: []). Without rules the
 * upstream's roles replace the user's when it sends some; a login that sends none (a login link, an
 * IdP without a roles claim) leaves the roles set through the users API alone.
 */
export function rolesForLogin(identityRoles: string[], groups: string[], mapping: Record<string, string>): string[] | undefined {
  const roles = mapRoles(identityRoles, groups, mapping);
  return roles.length || hasRoleRules(mapping) ? roles : undefined;
}
