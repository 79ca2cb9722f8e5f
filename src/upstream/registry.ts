import { jwtSettings } from './jwt/settings.js';
import { oidcSettings } from './oidc/settings.js';
import { samlSettings } from './saml/settings.js';
import type { SettingsRegistry } from './settings.js';

export const connectionSettings: SettingsRegistry = { oidc: oidcSettings, saml: samlSettings, jwt: jwtSettings };
