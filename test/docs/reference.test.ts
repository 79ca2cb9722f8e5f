/**
 * docs/reference.md is complete and current: its generated sections are what the code produces
 * now (scripts/reference.ts; `npm run docs:reference` rewrites them), and it names every reason
 * code (REASON_CODES), every environment variable (ENV_VARIABLES), every route the server answers
 * (read from the Express app and oidc-provider's discovery document) and no "DESIGN §n" remains
 * in src/ (the design document is not part of this repository; comments cite docs/ instead).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { AuditTrail } from '../../src/admin/audit.js';
import { adminRoutes } from '../../src/admin/index.js';
import { ENV_VARIABLES } from '../../src/config/index.js';
import { REASON_CODES } from '../../src/upstream/registry.js';
import { REFERENCE, regenerate } from '../../scripts/reference.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { routerRoutes } from '../support/routes.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const doc = readFileSync(REFERENCE, 'utf8');

/** The text of one `## ` section. */
function section(heading: string): string {
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/reference.md has no "## ${heading}"`);
  const rest = doc.slice(start + heading.length + 5);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}
const missingFrom = (text: string, names: readonly string[]) => names.filter((n) => !text.includes(`\`${n}\``));

describe('docs/reference.md', () => {
  it('has the generated sections as the code makes them now (npm run docs:reference)', () => {
    expect(regenerate(doc)).toBe(doc);
  });

  it('explains every reason code and every environment variable', () => {
    expect({ reasonCodes: missingFrom(section('Reason codes'), REASON_CODES) }).toEqual({ reasonCodes: [] });
    expect({ envVariables: missingFrom(section('Environment variables'), ENV_VARIABLES) }).toEqual({ envVariables: [] });
    // Each is a table row of its own, not just a mention.
    for (const code of REASON_CODES) expect(section('Reason codes')).toMatch(new RegExp(`^\\| \`${code}\` \\|`, 'm'));
    for (const name of ENV_VARIABLES) expect(section('Environment variables')).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  });

  describe('endpoints', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await buildTestApp();
    });
    afterAll(() => t?.close());

    it('lists every route the server answers', async () => {
      const endpoints = section('Endpoints');
      // The admin API's routes are in its own section (and openapi.json), listed as one `/api/v1/…` row here.
      const admin = new Set(routerRoutes(adminRoutes(t.runtime, new AuditTrail(t.runtime.store, t.runtime.logger))).map((r) => r.replace(' ', ' /api/v1')));
      const paths = new Set(routerRoutes(t.express).filter((r) => !admin.has(r)).map((r) => r.split(' ')[1]!));
      // oidc-provider's own routes, from the discovery document applications read.
      const discovery = (await request(t.express).get('/.well-known/openid-configuration').expect(200)).body as Record<string, unknown>;
      for (const [name, value] of Object.entries(discovery)) {
        if ((name.endsWith('_endpoint') || name === 'jwks_uri') && typeof value === 'string') paths.add(new URL(value).pathname);
      }
      expect(paths.size).toBeGreaterThan(20);
      const unlisted = [...paths].filter((p) => !new RegExp(`\`(?:[A-Z, ]+ )?${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:\\?[^\`]*)?\``).test(endpoints));
      expect({ unlisted }).toEqual({ unlisted: [] });
    });
  });

  it('is what src/ cites: no comment points at a "DESIGN §n" outside this repository', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
    const citing = files(join(ROOT, 'src')).filter((f) => /DESIGN(?:\.md)? §/.test(readFileSync(f, 'utf8')));
    expect(citing.map((f) => f.slice(ROOT.length))).toEqual([]);
  });
});
