/** Shared files in the certs dir: published once (first writer wins) or replaced, atomically, with their mode. */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishFileOnce, replaceFile } from '../../src/store/files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (f: string) => statSync(f).mode & 0o777;
const leftovers = () => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

test('publishFileOnce: the first content is published with its mode whatever the umask; later ones leave it alone', () => {
  const file = join(dir, 'key.pem');
  const umask = process.umask(0o077);
  try {
    expect(publishFileOnce(file, 'first', 0o644)).toBe(true);
  } finally {
    process.umask(umask);
  }
  expect([readFileSync(file, 'utf8'), mode(file)]).toEqual(['first', 0o644]);
  expect(publishFileOnce(file, 'second', 0o600)).toBe(false);
  expect([readFileSync(file, 'utf8'), mode(file)]).toEqual(['first', 0o644]);
  expect(leftovers()).toEqual([]);
});

test('publishFileOnce: private files are 0600', () => {
  const file = join(dir, 'jwks.json');
  publishFileOnce(file, '{}', 0o600);
  expect(mode(file)).toBe(0o600);
});

test('replaceFile: replaces content and mode in one step, leaving no temporary file', () => {
  const file = join(dir, 'jwks.json');
  writeFileSync(file, 'old', { mode: 0o644 });
  replaceFile(file, 'new', 0o600);
  expect([readFileSync(file, 'utf8'), mode(file)]).toEqual(['new', 0o600]);
  expect(leftovers()).toEqual([]);
});

test('failures are reported and leave no temporary file', () => {
  expect(() => publishFileOnce(join(dir, 'missing', 'x'), 'x', 0o600)).toThrow(/ENOENT/);
  const target = join(dir, 'a-directory');
  mkdirSync(join(target, 'inside'), { recursive: true });
  expect(() => replaceFile(target, 'x', 0o600)).toThrow();
  expect(leftovers()).toEqual([]);
  expect(readdirSync(dir)).toEqual(['a-directory']);
});
