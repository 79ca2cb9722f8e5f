/**
 * IdP groups to Portico roles. `attribute_mapping` keys of the form `group:<IdP group>` name the
 * role a member of that group gets, e.g. `{ "group:Engineering": "admin" }`. Roles the adapter
 * already produced (an attribute mapped to `roles`) are kept.
 */
export function mapRoles(identityRoles: string[], groups: string[], mapping: Record<string, string>): string[] {
  const roles = new Set(identityRoles);
  for (const g of groups) {
    const role = mapping[`group:${g}`];
    if (role) roles.add(role);
  }
  return [...roles].sort();
}
