/**
 * The one place oidc-provider is loaded at run time. On Node.js older than 22 it prints its own
 * "Unsupported runtime" warning when imported; that is left visible (Node 20 is past its end of
 * life; see README "Supported Node.js versions"). `portico serve` imports the server only after
 * the configuration is valid, so a bad variable is still reported as one line before it.
 */
import * as OidcProvider from 'oidc-provider';

export const Provider = OidcProvider.default;
export const errors = OidcProvider.errors;
export const interactionPolicy = OidcProvider.interactionPolicy;
