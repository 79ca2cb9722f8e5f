/**
 * The work one SCIM PATCH may ask for is bounded (src/scim/patch.ts MAX_PATCH_WORK). Attacker
 * review: a 1 MB PATCH of one user (3,000 emails added, then ~400 removes with 100-term value
 * filters) held the whole process for ~40 s, every organization's sign-ins with it. The shapes
 * Okta and Entra send against a large group still apply.
 */
import { applyPatch, MAX_PATCH_WORK, patchOperations } from '../../src/scim/patch.js';
import { GROUP_SCHEMA, USER_SCHEMA as USER } from '../../src/scim/schema.js';
import { ScimError } from '../../src/scim/errors.js';
import { pgliteBackend } from '../support/backends.js';
import { PATCH_OP, scimFixture, USER_SCHEMA, type ScimFixture } from './helpers.js';

const refusal = (fn: () => unknown) => {
  try {
    fn();
    return 'applied';
  } catch (e) {
    if (!(e instanceof ScimError)) throw e;
    return `${e.status} ${e.scimType} ${e.message}`;
  }
};

/** `emails[type eq "t0" or type eq "t1" …]` of about 2,000 characters (100 terms). */
const wideFilter = () => `emails[${Array.from({ length: 100 }, (_, i) => `type eq "t${i}"`).join(' or ')}]`;
const hundredEmails = () => Array.from({ length: 100 }, (_, i) => ({ value: `a${i}@acme.example`, type: 'x' }));

describe('SCIM PATCH work bound (applyPatch)', () => {
  it('refuses filtered operations that would cost more than the bound, before doing them (400 tooMany)', () => {
    const doc = { userName: 'x@acme.example', emails: hundredEmails() };
    const ops = Array.from({ length: 1000 }, () => ({ op: 'remove' as const, path: wideFilter() }));
    expect(refusal(() => applyPatch(doc, ops, USER))).toMatch(/^400 tooMany this PATCH asks for too much work/);
    // The same operations, fewer of them: applied (a bound, not a ban on wide filters).
    expect(refusal(() => applyPatch(doc, ops.slice(0, 10), USER))).toBe('applied');
  });

  it("refuses a user's list growing past 100 values at the operation that does it", () => {
    const doc = { userName: 'x@acme.example', emails: [] };
    const add = { op: 'add' as const, path: 'emails', value: Array.from({ length: 3000 }, (_, i) => ({ value: `a${i}@acme.example` })) };
    expect(refusal(() => applyPatch(doc, [add, ...Array.from({ length: 400 }, () => ({ op: 'remove' as const, path: wideFilter() }))], USER))).toBe(
      '400 invalidValue emails has too many values',
    );
    expect(refusal(() => applyPatch(doc, [{ ...add, value: add.value.slice(0, 100) }], USER))).toBe('applied');
  });

  it("refuses an operation's value larger than any attribute (second review: 999 merges into a 30,000-key name took 27 s)", () => {
    const big = Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`k${i}`, 0]));
    const merges = Array.from({ length: 999 }, () => ({ op: 'add' as const, path: 'name', value: { a: 1 } }));
    const body = (value: unknown) => ({ Operations: [{ op: 'replace', path: 'name', value }, ...merges] });
    expect(refusal(() => patchOperations(body(big)))).toBe('400 invalidValue Operations[0].value: an object of more than 100 attributes');
    expect(refusal(() => patchOperations({ Operations: [{ op: 'add', path: 'emails', value: [{ value: 'x'.repeat(20_000) }] }] }))).toMatch(/^400 invalidValue .*longer than 16384/);
    // Within the bounds: applied.
    expect(refusal(() => applyPatch({ userName: 'u', name: {} }, patchOperations(body({ givenName: 'A' })), USER))).toBe('applied');
  });

  describe('a group of 50,000 members', () => {
    const members = Array.from({ length: 50_000 }, (_, i) => ({ value: `usr_${i}` }));
    const group = () => ({ displayName: 'All staff', members });

    it("Okta's value-filtered removes (200 in one PATCH) apply", () => {
      const ops = Array.from({ length: 200 }, (_, i) => ({ op: 'remove' as const, path: `members[value eq "usr_${i * 7}"]` }));
      const out = applyPatch(group(), ops, GROUP_SCHEMA) as { members: { value: string }[] };
      expect(out.members).toHaveLength(49_800);
      expect(out.members.some((m) => m.value === 'usr_7')).toBe(false);
      expect(out.members.some((m) => m.value === 'usr_8')).toBe(true);
      // The attribute's name in any case, the value exactly (as scim2-parse-filter compares).
      const cased = applyPatch(group(), [{ op: 'remove', path: 'members[VALUE eq "usr_1"]' }, { op: 'remove', path: 'members[value eq "USR_2"]' }], GROUP_SCHEMA) as {
        members: unknown[];
      };
      expect(cased.members).toHaveLength(49_999);
    });

    it('a run of value-filtered removes gives what applying them one by one gives, mixed with other operations', () => {
      const small = { displayName: 'Some', members: Array.from({ length: 40 }, (_, i) => ({ value: `usr_${i}`, ...(i % 3 ? {} : { Value: `odd_${i}` }) })) };
      let seed = 7;
      const rnd = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
      for (let round = 0; round < 50; round++) {
        const ops = Array.from({ length: 12 }, () => {
          const k = rnd(10);
          if (k < 6) return { op: 'remove' as const, path: `members[${k < 5 ? 'value' : 'VALUE'} eq "usr_${rnd(45)}"]` };
          if (k < 8) return { op: 'add' as const, path: 'members', value: [{ value: `usr_${rnd(45)}` }] };
          return { op: 'remove' as const, path: `members[display eq "x"]` };
        });
        const together = applyPatch(small, ops, GROUP_SCHEMA);
        const oneByOne = ops.reduce((d, op) => applyPatch(d, [op], GROUP_SCHEMA), small as Record<string, unknown>);
        expect(together).toEqual(oneByOne);
      }
    });

    it("Entra's removes by a value list and adds (1,000 values each) apply, duplicates not added twice", () => {
      const removed = applyPatch(group(), [{ op: 'remove', path: 'members', value: Array.from({ length: 1000 }, (_, i) => ({ value: `usr_${i}` })) }], GROUP_SCHEMA) as {
        members: unknown[];
      };
      expect(removed.members).toHaveLength(49_000);
      const added = applyPatch(group(), [{ op: 'add', path: 'members', value: Array.from({ length: 1000 }, (_, i) => ({ value: `usr_${49_500 + i}` })) }], GROUP_SCHEMA) as {
        members: { value: string }[];
      };
      expect(added.members).toHaveLength(50_500);
      expect(new Set(added.members.map((m) => m.value)).size).toBe(50_500);
    });

    it("sub-attribute operations copy every member and are charged for it (second review: 1,000 members.display, 56 s)", () => {
      const ops = Array.from({ length: 1000 }, (_, i) => ({ op: 'replace' as const, path: 'members.display', value: `d${i}` }));
      expect(refusal(() => applyPatch(group(), ops, GROUP_SCHEMA))).toMatch(/^400 tooMany/);
      const one = applyPatch(group(), ops.slice(0, 1), GROUP_SCHEMA) as { members: { display: string }[] };
      expect(one.members[49_999]!.display).toBe('d0');
    });

    it('a wide value filter over all of them is refused: its work is over the bound', () => {
      const ops = Array.from({ length: 5 }, () => ({ op: 'remove' as const, path: `members[${Array.from({ length: 20 }, (_, i) => `display eq "d${i}"`).join(' or ')}]` }));
      expect(5 * 50_000 * 20 * 25).toBeGreaterThan(MAX_PATCH_WORK);
      expect(refusal(() => applyPatch(group(), ops, GROUP_SCHEMA))).toMatch(/^400 tooMany/);
    });
  });
});

describe('SCIM PATCH work bound over HTTP', () => {
  let fx: ScimFixture;
  beforeAll(async () => {
    fx = await scimFixture(pgliteBackend);
  }, 120_000);
  afterAll(() => fx?.close());

  it("the attacker's 1 MB PATCH is refused at once, the server keeps answering, and the user is as it was", async () => {
    const made = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'x@acme.example', emails: [{ value: 'x@acme.example', type: 'work' }] });
    expect(made.status).toBe(201);
    const attack = (first: readonly unknown[]) => {
      const ops: unknown[] = [...first];
      let size = JSON.stringify(ops).length;
      while (size < 1_000_000 - 2200) {
        const op = { op: 'remove', path: wideFilter() };
        ops.push(op);
        size += JSON.stringify(op).length + 1;
      }
      return { schemas: [PATCH_OP], Operations: ops.slice(0, 1000) };
    };
    const grow = { op: 'add', path: 'emails', value: Array.from({ length: 3000 }, (_, i) => ({ value: `a${i}@acme.example`, type: 'x' })) };
    const fill = { op: 'add', path: 'emails', value: hundredEmails().slice(0, 99) };
    for (const [first, scimType] of [
      [[grow], 'invalidValue'],
      [[fill], 'tooMany'],
    ] as const) {
      const started = Date.now();
      const patch = fx.scim('PATCH', `/Users/${made.body.id}`, attack(first));
      // Another request while the PATCH is being worked on (~40 s before the bound).
      const health = await fetch(`${fx.p.base}/healthz`);
      expect(health.status).toBe(200);
      const res = await patch;
      expect({ status: res.status, scimType: res.body.scimType }).toEqual({ status: 400, scimType });
      expect(Date.now() - started).toBeLessThan(10_000);
    }
    const after = await fx.scim('GET', `/Users/${made.body.id}`);
    expect(after.body.emails).toEqual(made.body.emails);
  });
});
