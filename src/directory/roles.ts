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
