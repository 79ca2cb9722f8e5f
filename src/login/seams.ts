import type { Request, Response } from 'express';
import type { FinishedLogin } from '../provider/index.js';
import type { Connection } from '../store/types.js';
import type { UpstreamAdapter } from '../upstream/kind.js';

/** What the login flow needs from the OpenID Provider side (src/provider). */
export interface ProviderSeam {
  interactionDetails(req: Request, res: Response): Promise<{
    uid: string;
    params: Record<string, unknown>;
    /** prompt=login or max_age exceeded: the gateway session must not be reused. */
    freshLoginRequired: boolean;
  }>;
  /** The login the provider finishes: one type with the provider's own (FinishedLogin). */
  finishLogin(req: Request, res: Response, login: FinishedLogin): Promise<void>;
  /** The provider session id this browser's (signed) cookie names (PorticoProvider). */
  browserSessionId(req: Request, res: Response): string | undefined;
}

/**
 * Whether an error of interactionDetails or finishLogin says the interaction is unknown or expired
 * (the provider's InteractionNotFound), so the user must start again: anything else (a store that
 * failed) is the server's fault and is not shown as an expired sign-in.
 */
export const isInteractionGone = (e: unknown): boolean => e instanceof Error && (e as { code?: unknown }).code === 'interaction_not_found';

/** Starting a browser login at an upstream IdP (OIDC authorization request, SAML AuthnRequest). */
export type BrowserUpstream = Required<Pick<UpstreamAdapter, 'begin'>> & Pick<UpstreamAdapter, 'beginsWithForm'>;
