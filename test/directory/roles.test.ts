import { mapRoles } from '../../src/directory/roles.js';

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
