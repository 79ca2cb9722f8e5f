import type { Request, Response } from 'express';
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
  finishLogin(
    req: Request,
    res: Response,
    login: {
      accountId: string;
      connectionId: string;
      amr: string[];
      authTime: Date;
      uid?: string;
      activeJustChecked?: boolean;
      resumeHere?: boolean;
      /**
       * Counts the authorization at the application it is for, first: false when it is refused
       * (its answer, a 429 page, is sent), and nothing is finished.
       */
      admit?: (clientId: string) => Promise<boolean>;
      /** Whether this sign-in may answer the request (its parameters): if not, the app gets access_denied. */
      fits?: (params: Record<string, unknown>) => Promise<boolean>;
      /** Once its grant and provider session are saved (indexed under the user), before the response leaves. */
      onSaved?: (saved: { grantId: string; sessionId?: string }) => Promise<void>;
    },
  ): Promise<void>;
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
