/** RFC 7644 §3.5.2 PATCH on a resource document, with the shapes Entra ID and Okta send. */
import { applyPatch, parsePath, patchOperations } from '../../src/scim/patch.js';
import { ENTERPRISE_SCHEMA, USER_SCHEMA } from '../../src/scim/schema.js';
import { ScimError } from '../../src/scim/errors.js';

const doc = () => ({
  userName: 'a@x.example',
  name: { givenName: 'A', familyName: 'B' },
  emails: [
    { value: 'a@x.example', type: 'work', primary: true },
    { value: 'a@home.example', type: 'home' },
  ],
  active: true,
});

const scimType = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as ScimError).scimType;
  }
  return 'no error';
};

describe('SCIM PATCH', () => {
  test('op names in any case; a message without the PatchOp schema is refused', () => {
    expect(patchOperations({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] })).toEqual([
      { op: 'replace', path: 'active', value: 'False' },
    ]);
    expect(scimType(() => patchOperations({ schemas: ['urn:other'], Operations: [{ op: 'add', path: 'x', value: 1 }] }))).toBe('invalidSyntax');
  });

  test('value-filtered paths replace the matching element only; none matching creates it from the filter', () => {
    const out = applyPatch(doc(), [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'new@x.example' }], USER_SCHEMA);
    expect(out.emails).toEqual([
      { value: 'new@x.example', type: 'work', primary: true },
      { value: 'a@home.example', type: 'home' },
    ]);
    const created = applyPatch(doc(), [{ op: 'replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0100' }], USER_SCHEMA);
    expect(created.phoneNumbers).toEqual([{ type: 'mobile', value: '+1 555 0100' }]);
    expect(applyPatch(doc(), [{ op: 'remove', path: 'emails[type eq "home"]' }], USER_SCHEMA).emails).toEqual([{ value: 'a@x.example', type: 'work', primary: true }]);
  });

  test('path-less add/replace with a value object, including path keys and the enterprise extension', () => {
    const out = applyPatch(
      doc(),
      [{ op: 'replace', value: { active: false, 'name.givenName': 'Z', [`${ENTERPRISE_SCHEMA}:department`]: 'Ops', [ENTERPRISE_SCHEMA]: { employeeNumber: '7' } } }],
      USER_SCHEMA,
    );
    expect(out).toMatchObject({ active: false, name: { givenName: 'Z', familyName: 'B' }, [ENTERPRISE_SCHEMA]: { department: 'Ops', employeeNumber: '7' } });
  });

  test('members: add skips duplicates, remove by value list (Entra) or by value filter (Okta)', () => {
    const g = { displayName: 'G', members: [{ value: 'u1' }, { value: 'u2' }] };
    expect(applyPatch(g, [{ op: 'add', path: 'members', value: [{ value: 'u2' }, { value: 'u3' }] }], USER_SCHEMA).members).toEqual([{ value: 'u1' }, { value: 'u2' }, { value: 'u3' }]);
    expect(applyPatch(g, [{ op: 'remove', path: 'members', value: [{ value: 'u1' }] }], USER_SCHEMA).members).toEqual([{ value: 'u2' }]);
    expect(applyPatch(g, [{ op: 'remove', path: 'members[value eq "u2"]' }], USER_SCHEMA).members).toEqual([{ value: 'u1' }]);
    expect(applyPatch(g, [{ op: 'remove', path: 'members' }], USER_SCHEMA).members).toEqual([]);
    // The input is never modified.
    expect(g.members).toHaveLength(2);
  });

  test('paths: URN prefixes, sub-attributes, and malformed paths', () => {
    expect(parsePath(`${USER_SCHEMA}:name.givenName`, USER_SCHEMA)).toEqual({ extension: false, attr: 'name', sub: 'givenName' });
    expect(parsePath(`${ENTERPRISE_SCHEMA}:Manager`, USER_SCHEMA)).toEqual({ extension: true, attr: 'manager' });
    expect(parsePath('USERNAME', USER_SCHEMA).attr).toBe('userName');
    expect(scimType(() => parsePath('emails[type eq', USER_SCHEMA))).toBe('invalidPath');
    expect(scimType(() => parsePath('a b', USER_SCHEMA))).toBe('invalidPath');
    expect(scimType(() => applyPatch(doc(), [{ op: 'remove' }], USER_SCHEMA))).toBe('noTarget');
  });
});
