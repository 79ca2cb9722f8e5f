/** SCIM filters become SQL conditions with bound parameters only: no input text reaches the SQL. */
import { filterToSql } from '../../src/scim/filter.js';
import { ScimError } from '../../src/scim/errors.js';

const compile = (f: string, r: 'User' | 'Group' = 'User') => {
  const params: unknown[] = [];
  const sql = filterToSql(f, r)((v) => {
    params.push(v);
    return `$${params.length}`;
  });
  return { sql, params };
};

describe('SCIM filter to SQL', () => {
  test('userName is case-insensitive, externalId case-exact; and/or/not keep their structure', () => {
    expect(compile('userName eq "Bjensen@Example.com"')).toEqual({ sql: 'du.user_name_normalized = $1', params: ['bjensen@example.com'] });
    expect(compile('externalId eq "AbC"')).toEqual({ sql: 'du.external_id = $1', params: ['AbC'] });
    expect(compile('userName eq "a" or (externalId eq "b" and not (active eq false))')).toEqual({
      sql: "(du.user_name_normalized = $1 or (du.external_id = $2 and (not ((u.status = 'active')) = $3)))",
      params: ['a', 'b', false],
    });
  });

  test('emails[type eq "work"].value eq and value filters over multi-valued attributes', () => {
    const { sql, params } = compile('emails[type eq "work"].value eq "A@x.example"');
    expect(sql).toContain('u.email_normalized = $2');
    expect(sql).toContain("exists (select 1 from jsonb_array_elements(coalesce(du.resource->'emails', '[]'::jsonb)) as elem where lower((elem->>'type')) = $1)");
    expect(params).toEqual(['work', 'a@x.example']);
    expect(compile('members[value eq "usr_1"]', 'Group').sql).toBe('exists (select 1 from directory_group_members elem where elem.group_id = g.id and elem.user_id = $1)');
  });

  test("quotes and LIKE wildcards in values stay data", () => {
    const { sql, params } = compile(`displayName co "50%_'; drop table users; --"`);
    expect(sql).toBe('lower(du.display_name) like $1');
    expect(params).toEqual(["%50\\%\\_'; drop table users; --%"]);
  });

  test('unparsable filters, unknown attributes and wrong types are invalidFilter', () => {
    for (const f of ['userName eq', 'userName zz "a"', 'password eq "x"', 'active eq "yes"', 'meta.created gt "not a date"', 'emails[nope eq "x"]x']) {
      let err: unknown;
      try {
        compile(f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ScimError);
      expect((err as ScimError).scimType).toBe('invalidFilter');
    }
  });
});
