/**
 * Adds the token features of the apps issue to the base configuration (configuration.ts):
 * refresh tokens per application (refresh.ts), back-channel logout (backchannel.ts; advertised,
 * delivered by Portico), PAR and DPoP (par-dpop.ts). Kept apart so the base stays about the
 * protocol Portico always speaks.
 */
import type { Configuration } from 'oidc-provider';
import { parAndDpopFeatures, PAR_ROUTE, PAR_ROUTE_NAME } from './par-dpop.js';
import { refreshTokenConfiguration, REFRESH_METADATA, type Clock } from './refresh.js';
import { refreshTargetCheck } from './resources.js';

export function withTokenFeatures(base: Configuration, opts: { clock?: Clock } = {}): Configuration {
  const indicators = base.features?.resourceIndicators;
  const { ttl: refreshTtl, ...refresh } = refreshTokenConfiguration(opts.clock, indicators?.enabled ? refreshTargetCheck(indicators) : undefined);
  const extra = base.extraClientMetadata ?? {};
  return {
    ...base,
    ...refresh,
    ttl: { ...base.ttl, ...refreshTtl },
    extraClientMetadata: { ...extra, properties: [...(extra.properties ?? []), ...REFRESH_METADATA] },
    features: {
      ...base.features,
      ...parAndDpopFeatures(),
      // Advertised in discovery (backchannel_logout_supported, backchannel_logout_session_supported);
      // the tokens are sent by backchannel.ts, as oidc-provider's own sending would hold up the logout.
      backchannelLogout: { enabled: true },
    },
    routes: { ...base.routes, [PAR_ROUTE_NAME]: PAR_ROUTE },
  };
}
