/**
 * The one place oidc-provider is loaded at run time. On import it prints a console warning when
 * Node.js is older than 22 ("Unsupported runtime"); Portico runs on Node 20 too (package engines,
 * and the whole test-suite passes there), and that stray line must not precede the single line a
 * bad configuration prints (DESIGN §3). Only that exact warning is dropped, only while importing.
 */
import type * as OidcProvider from 'oidc-provider';

const original = console.warn;
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
  original(...args);
};
let mod: typeof OidcProvider;
try {
  mod = await import('oidc-provider');
} finally {
  console.warn = original;
}

export const Provider = mod.default;
export const errors = mod.errors;
export const interactionPolicy = mod.interactionPolicy;
