import { mapRoles, rolesForLogin } from '../../src/directory/roles.js';

describe('mapRoles', () => {
  it('without role: rules keeps the upstream roles as sent', () => {
    expect(mapRoles(['viewer', 'admin', 'admin'], ['Engineering'], {})).toEqual(['admin', 'viewer']);
  });
  it('with role: rules grants exactly the mapped roles, from groups or roles (an allow-list)', () => {
    const mapping = { 'role:admin': 'Portico-Admins', 'role:auditor': 'Auditors, /eng', 'role:nobody': 'Nope', email: 'upn' };
    expect(mapRoles(['superuser'], ['/eng', 'Portico-Admins'], mapping)).toEqual(['admin', 'auditor']);
    expect(mapRoles(['Auditors'], [], mapping)).toEqual(['auditor']);
    expect(mapRoles(['superuser'], ['Other'], mapping)).toEqual([]);
  });
});

describe('rolesForLogin (what a login writes; undefined = leave the roles as they are)', () => {
  const mapping = { 'role:admin': 'Portico-Admins' };
  it('with role: rules every login writes the granted set, including the empty one (the group is gone)', () => {
    expect(rolesForLogin([], ['Portico-Admins'], mapping)).toEqual(['admin']);
    expect(rolesForLogin([], ['Staff'], mapping)).toEqual([]);
    expect(rolesForLogin([], [], mapping)).toEqual([]);
  });
  it('without role: rules the upstream roles replace when sent; none sent leaves them', () => {
    expect(rolesForLogin(['viewer'], [], { email: 'upn' })).toEqual(['viewer']);
    expect(rolesForLogin([], ['Staff'], {})).toBeUndefined();
    expect(rolesForLogin([], [], { 'role:': 'x' })).toBeUndefined();
  });
});
