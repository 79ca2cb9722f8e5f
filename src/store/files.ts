/**
 * Files that several Portico processes share in PORTICO_CERTS_DIR (JWT signing keys, SAML SP keys).
 * Each is written complete under a temporary name beside the target (`.<name>.<pid>.<random>.tmp`,
 * mode applied whatever the umask) and then moved into place in one step, so a reader never sees
 * half a file:
 *
 *   publishFileOnce(file, content, mode)   link(2): creates `file` unless another process already did
 *                                          (then theirs stands; read it back). Two processes starting
 *                                          at once agree on one file.
 *   replaceFile(file, content, mode)       rename(2): replaces `file` (callers serialise writers, e.g.
 *                                          under a lock file).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function writeBeside(file: string, content: string | Uint8Array, mode: number): string {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode); // the umask may have narrowed it, or (for an existing name) not applied
  return tmp;
}

/** Publishes `content` at `file` unless it exists; returns whether this call's content was published. */
export function publishFileOnce(file: string, content: string | Uint8Array, mode: number): boolean {
  const tmp = writeBeside(file, content, mode);
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  } finally {
    unlinkSync(tmp);
  }
}

/** Replaces `file` with `content` atomically. */
export function replaceFile(file: string, content: string, mode: number): void {
  const tmp = writeBeside(file, content, mode);
  try {
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
}
