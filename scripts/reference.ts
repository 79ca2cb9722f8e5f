/**
 * The generated parts of docs/reference.md: the admin API's routes and problem codes (from
 * src/admin/api-routes.ts, the table GET /api/v1/openapi.json is made from) and the commands of
 * `portico --help` (from src/cli/main.ts). `npm run docs:reference` rewrites them in place, between
 * `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; test/docs/reference.test.ts fails
 * while the file differs from what this produces.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ADMIN_ROUTES } from '../src/admin/api-routes.js';
import { ADMIN_PROBLEM_CODES, routeErrors } from '../src/admin/openapi.js';
import { buildProgram } from '../src/cli/main.js';

export const REFERENCE = new URL('../docs/reference.md', import.meta.url).pathname;

const cell = (s: string) => s.replace(/\|/g, '\\|');

function adminRoutes(): string {
  const rows = ADMIN_ROUTES.map((r) => {
    const own = Object.entries(r.errors ?? {})
      .flatMap(([status, codes]) => (codes ?? []).map((c) => `${status} \`${c}\``))
      .join(', ');
    const who = r.public ? 'no key' : r.operatorOnly ? 'operator' : 'operator, organization';
    return `| \`${r.method.toUpperCase()}\` | \`${r.path}\` | ${cell(r.summary)} | ${who} | ${r.status} | ${own || '—'} |`;
  });
  return ['| method | path (under `/api/v1`) | what it does | keys | success | its own errors |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

function problemCodes(): string {
  const byCode = new Map<string, Set<number>>();
  for (const r of ADMIN_ROUTES) for (const [s, codes] of Object.entries(routeErrors(r))) for (const c of codes) (byCode.get(c) ?? byCode.set(c, new Set()).get(c)!).add(Number(s));
  return ADMIN_PROBLEM_CODES.map((c) => `\`${c}\` (${[...byCode.get(c)!].sort().join(', ')})`).join(', ');
}

function cli(): string {
  const rows: string[] = [];
  const walk = (cmd: Command, prefix: string) => {
    for (const sub of cmd.commands) {
      const name = `${prefix} ${sub.name()}`;
      if (sub.commands.length) walk(sub, name);
      else rows.push(`| \`${cell(`${name} ${sub.usage()}`.trim())}\` | ${cell(sub.description())} |`);
    }
  };
  walk(buildProgram(() => undefined), 'portico');
  return ['| command | what it does |', '|---|---|', ...rows].join('\n');
}

export function generatedSections(): Record<string, string> {
  return { 'admin-routes': adminRoutes(), 'problem-codes': problemCodes(), cli: cli() };
}

/** The document with every generated section replaced by what the code says now. */
export function regenerate(text: string): string {
  let out = text;
  for (const [name, body] of Object.entries(generatedSections())) {
    const open = `<!-- generated:${name} -->`;
    const close = `<!-- /generated:${name} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start < 0 || end < start) throw new Error(`docs/reference.md lacks ${open} … ${close}`);
    out = `${out.slice(0, start + open.length)}\n${body}\n${out.slice(end)}`;
  }
  return out;
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  writeFileSync(REFERENCE, regenerate(readFileSync(REFERENCE, 'utf8')));
}
