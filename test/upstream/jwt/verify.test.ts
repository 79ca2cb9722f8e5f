import { createHash, generateKeyPairSync } from 'node:crypto';
import { SignJWT, base64url, importSPKI, type JWTPayload } from 'jose';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { verifyPartnerJwt, type PartnerJwtPolicy, type PartnerKey } from '../../../src/upstream/jwt/verify.js';

const NOW = 1_800_000_000; // seconds
const SECRET = 'partner-shared-secret-0123456789abcdef';
const secretKey = new TextEncoder().encode(SECRET);

const policy = (over: Partial<PartnerJwtPolicy> = {}): PartnerJwtPolicy => ({
  connectionId: 'con_partner',
  alg: 'HS256',
  maxTokenAgeSeconds: 600,
  ...over,
});

const claims = (over: Record<string, unknown> = {}): JWTPayload => ({ jti: 'jti-1', exp: NOW + 120, iat: NOW, email: 'ada@acme.test', ...over });

async function hs(payload: JWTPayload, key: Uint8Array = secretKey): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function outcome(token: string, p: PartnerJwtPolicy = policy(), key: PartnerKey = secretKey, now = NOW) {
  try {
    return { ok: true as const, ...(await verifyPartnerJwt(token, p, key, now * 1000)) };
  } catch (e) {
    if (e instanceof UpstreamError) return { ok: false as const, reason: e.reason, message: e.message };
    throw e;
  }
}

describe('verifyPartnerJwt', () => {
  it('accepts a well-formed HS256 token and normalises it to an ExternalIdentity', async () => {
    const r = await outcome(await hs(claims({ name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', role: 'admin' })));
    expect(r).toEqual({
      ok: true,
      jti: 'jti-1',
      digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      exp: NOW + 120,
      identity: expect.objectContaining({
        connection: 'con_partner',
        subject: 'email:ada@acme.test',
        email: 'ada@acme.test',
        email_verified: true,
        name: 'Ada Lovelace',
        given_name: 'Ada',
        family_name: 'Lovelace',
        roles: ['admin'],
        groups: [],
        amr: ['partner'],
      }),
    });
  });

  it("does not pass a partner's own amr through: the identity's amr is always Portico's [\"partner\"]", async () => {
    const r = await outcome(await hs(claims({ amr: ['mfa', 'hwk'], email_verified: true })));
    expect(r).toMatchObject({ ok: true, identity: { amr: ['partner'] } });
    const plain = await outcome(await hs(claims()));
    expect(plain).toMatchObject({ ok: true, identity: { amr: ['partner'] } });
  });

  it('accepts RS256 and ES256 tokens with the connection key', async () => {
    const rs = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
    expect(await outcome(rs, policy({ alg: 'RS256' }), await importSPKI(rsaPem, 'RS256'))).toMatchObject({ ok: true });
    const es = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(ec.privateKey);
    expect(await outcome(es, policy({ alg: 'ES256' }), await importSPKI(ecPem, 'ES256'))).toMatchObject({ ok: true });
  });

  it('refuses alg "none" (token_invalid), while the same claims signed are accepted', async () => {
    const unsigned = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims()))}.`;
    expect(await outcome(unsigned)).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims()))).toMatchObject({ ok: true });
  });

  it('refuses an HS256 token "signed" with the RSA public key of an RS256 connection (key confusion)', async () => {
    const forged = await hs(claims(), new TextEncoder().encode(rsaPem));
    const key = await importSPKI(rsaPem, 'RS256');
    expect(await outcome(forged, policy({ alg: 'RS256' }), key)).toMatchObject({ ok: false, reason: 'token_invalid' });
    // Even if a key resolver handed back the PEM bytes, the pinned algorithm still refuses HS256.
    expect(await outcome(forged, policy({ alg: 'RS256' }), new TextEncoder().encode(rsaPem))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it('refuses an RS256 token at an ES256 connection and vice versa', async () => {
    const rs = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
    expect(await outcome(rs, policy({ alg: 'ES256' }), await importSPKI(ecPem, 'ES256'))).toMatchObject({ ok: false, reason: 'token_invalid' });
    const es = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(ec.privateKey);
    expect(await outcome(es, policy({ alg: 'RS256' }), await importSPKI(rsaPem, 'RS256'))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it('refuses a token signed with another secret, or tampered with', async () => {
    expect(await outcome(await hs(claims(), new TextEncoder().encode('another-secret-of-the-same-size-012345')))).toMatchObject({
      ok: false,
      reason: 'token_invalid',
    });
    const good = await hs(claims());
    const [h, , s] = good.split('.');
    const tampered = `${h}.${base64url.encode(JSON.stringify(claims({ email: 'root@acme.test' })))}.${s}`;
    expect(await outcome(tampered)).toMatchObject({ ok: false, reason: 'token_invalid' });
    for (const junk of ['', 'a.b.c', 'not a jwt', 'x'.repeat(9000)]) expect(await outcome(junk)).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it('requires exp, refuses one beyond max_token_age (token_invalid) and an expired one (token_expired)', async () => {
    expect(await outcome(await hs(claims({ exp: undefined })))).toMatchObject({ ok: false, reason: 'token_invalid', message: 'exp is required' });
    expect(await outcome(await hs(claims({ exp: NOW + 3600 })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ exp: 'tomorrow' })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ exp: NOW })))).toMatchObject({ ok: false, reason: 'token_expired' });
    expect(await outcome(await hs(claims({ exp: NOW - 30, iat: NOW - 90 })))).toMatchObject({ ok: false, reason: 'token_expired' });
    // The edges: max_token_age ahead (plus skew) is fine; one second left is fine.
    expect(await outcome(await hs(claims({ exp: NOW + 600 })))).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ exp: NOW + 1 })))).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ exp: NOW + 60 })), policy({ maxTokenAgeSeconds: 30 }))).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ exp: NOW + 300 })), policy({ maxTokenAgeSeconds: 30 }))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it('tolerates iat up to 3 minutes in the future, not more; an iat older than max_token_age is token_expired', async () => {
    expect(await outcome(await hs(claims({ iat: NOW + 170 })))).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ iat: NOW + 400 })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ iat: NOW - 2000 })))).toMatchObject({ ok: false, reason: 'token_expired' });
    expect(await outcome(await hs(claims({ nbf: NOW + 400 })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ iat: undefined })))).toMatchObject({ ok: true });
  });

  it('takes a token without jti (its digest is the single-use key); require_jti refuses it; a malformed jti is refused', async () => {
    const token = await hs(claims({ jti: undefined }));
    const r = await outcome(token);
    expect(r).toMatchObject({ ok: true, identity: { email: 'ada@acme.test' } });
    if (!r.ok) throw new Error('refused');
    expect(r.jti).toBeUndefined();
    // The digest is of the signed part (header.payload), not of the re-encodable signature.
    expect(r.digest).toBe(createHash('sha256').update(token.split('.').slice(0, 2).join('.')).digest('hex'));
    expect(await outcome(token, policy({ requireJti: true }))).toMatchObject({ ok: false, reason: 'token_invalid', message: expect.stringContaining('require_jti') });
    expect(await outcome(await hs(claims()), policy({ requireJti: true }))).toMatchObject({ ok: true, jti: 'jti-1' });
    expect(await outcome(await hs(claims({ jti: '' })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ jti: 42 })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ jti: 'x'.repeat(257) })))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it("reads Wise's identifier names: userId and vendorUserId are external_id, phoneNumber is phone_number", async () => {
    for (const [c, expected] of [
      [{ userId: 'w-42' }, { external_id: 'w-42', subject: 'external_id:w-42' }],
      [{ userId: 'w-42', vendorUserId: 'w-42' }, { external_id: 'w-42' }],
      [{ userId: 'w-42', external_id: 'w-42' }, { external_id: 'w-42' }],
      [{ phoneNumber: '+44 20 7946 0000' }, { phone_number: '+44 20 7946 0000', subject: 'phone_number:+44 20 7946 0000' }],
      [{ phoneNumber: '+442079460000', phone_number: '+442079460000' }, { phone_number: '+442079460000' }],
    ] as const) {
      const r = await outcome(await hs(claims({ email: undefined, ...c })));
      expect(r).toMatchObject({ ok: true, identity: expected });
      if (r.ok) expect(r.identity.email).toBeUndefined();
    }
    for (const c of [
      { userId: 'w-42', vendorUserId: 'v-7' },
      { userId: 'w-42', email: 'ada@acme.test' },
      { phoneNumber: '+442079460000', email: 'ada@acme.test' },
      { phoneNumber: '+442079460000', userId: 'w-42' },
    ]) {
      expect(await outcome(await hs(claims({ email: undefined, ...c })))).toMatchObject({ ok: false, reason: 'ambiguous_identifier' });
    }
    expect(await outcome(await hs(claims({ email: undefined, phoneNumber: 'call me' })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ email: undefined, userId: 42 })))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it("accepts a token shaped exactly like Wise's example: HS256, {email, name, profile:{…}, exp}, no jti or iat", async () => {
    const wise = await new SignJWT({
      email: 'john.doe@acme.test',
      name: 'John Doe',
      profile: { type: 'PERSONAL', firstName: 'John', lastName: 'Doe', dateOfBirth: '1990-01-01' },
      exp: NOW + 300,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(secretKey);
    expect(await outcome(wise)).toMatchObject({
      ok: true,
      exp: NOW + 300,
      identity: { email: 'john.doe@acme.test', name: 'John Doe', subject: 'email:john.doe@acme.test', groups: [], roles: [] },
    });
  });

  it('takes exactly one identifier: two or none are ambiguous_identifier', async () => {
    expect(await outcome(await hs(claims({ external_id: 'v-1' })))).toMatchObject({ ok: false, reason: 'ambiguous_identifier' });
    expect(await outcome(await hs(claims({ email: undefined, user_id: 'usr_1', phone_number: '+15550100' })))).toMatchObject({
      ok: false,
      reason: 'ambiguous_identifier',
    });
    expect(await outcome(await hs(claims({ email: undefined })))).toMatchObject({ ok: false, reason: 'ambiguous_identifier' });
    expect(await outcome(await hs(claims({ email: undefined, external_id: 'v-1', vendorUserId: 'v-2' })))).toMatchObject({
      ok: false,
      reason: 'ambiguous_identifier',
    });
    // Each single identifier works; vendorUserId is external_id (and may repeat it).
    for (const [c, expected] of [
      [{ user_id: 'usr_1' }, { user_id: 'usr_1', subject: 'user_id:usr_1' }],
      [{ external_id: 'v-1' }, { external_id: 'v-1' }],
      [{ vendorUserId: 'v-1' }, { external_id: 'v-1', subject: 'external_id:v-1' }],
      [{ vendorUserId: 'v-1', external_id: 'v-1' }, { external_id: 'v-1' }],
      [{ phone_number: '+1 555 0100' }, { phone_number: '+1 555 0100' }],
    ] as const) {
      const r = await outcome(await hs(claims({ email: undefined, ...c })));
      expect(r).toMatchObject({ ok: true, identity: expected });
      if (r.ok) expect(r.identity.email).toBeUndefined();
    }
    expect(await outcome(await hs(claims({ email: 'not-an-email' })))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await outcome(await hs(claims({ email: undefined, user_id: 7 })))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it('hands role/roles to the directory as roles and profile as groups, as received', async () => {
    const r = await outcome(await hs(claims({ role: ['admin', 'superuser'], profile: 'support', roles: ['owner', 'admin', 7] })));
    expect(r).toMatchObject({ ok: true, identity: { roles: ['admin', 'superuser', 'owner'], groups: ['support'] } });
    expect(await outcome(await hs(claims()))).toMatchObject({ ok: true, identity: { roles: [], groups: [] } });
  });

  it('checks iss and aud when the connection names them', async () => {
    const p = policy({ issuer: 'https://partner.example', audience: 'portico' });
    expect(await outcome(await hs(claims({ iss: 'https://partner.example', aud: ['other', 'portico'] })), p)).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ iss: 'https://evil.example', aud: 'portico' })), p)).toMatchObject({ ok: false, reason: 'wrong_issuer' });
    expect(await outcome(await hs(claims({ iss: 'https://partner.example', aud: 'other' })), p)).toMatchObject({ ok: false, reason: 'wrong_audience' });
    expect(await outcome(await hs(claims({ iss: 'https://partner.example' })), p)).toMatchObject({ ok: false, reason: 'wrong_audience' });
    // No issuer configured: iss is not checked.
    expect(await outcome(await hs(claims({ iss: 'anything' })))).toMatchObject({ ok: true });
  });

  it('without a configured audience, takes a token without aud, or with an aud naming this connection, and no other', async () => {
    const login = 'https://portico.example/jwt/con_partner/login';
    const p = policy({ recipients: [login, 'con_partner'] });
    // Wise-shaped tokens carry no aud: accepted as they are.
    expect(await outcome(await hs(claims()), p)).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ aud: login })), p)).toMatchObject({ ok: true });
    expect(await outcome(await hs(claims({ aud: ['https://elsewhere.example', 'con_partner'] })), p)).toMatchObject({ ok: true });
    // A token the partner made for another connection (another organization's, same key): refused here.
    for (const aud of ['https://portico.example/jwt/con_other/login', 'con_other', ['con_other'], [], 'anyone', 7]) {
      expect(await outcome(await hs(claims({ aud })), p)).toMatchObject({ ok: false, reason: 'wrong_audience' });
    }
    // A configured audience replaces the connection's own names (and then aud is required).
    const q = policy({ recipients: [login, 'con_partner'], audience: 'portico' });
    expect(await outcome(await hs(claims({ aud: login })), q)).toMatchObject({ ok: false, reason: 'wrong_audience' });
    expect(await outcome(await hs(claims({ aud: 'portico' })), q)).toMatchObject({ ok: true });
  });

  it('refuses profile claims of the wrong type', async () => {
    expect(await outcome(await hs(claims({ name: { first: 'Ada' } })))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });
});

describe('verifyPartnerJwt: login-trace evidence', () => {
  async function evidence(token: string, p: PartnerJwtPolicy = policy()) {
    try {
      await verifyPartnerJwt(token, p, secretKey, NOW * 1000);
    } catch (e) {
      if (e instanceof UpstreamError) return { reason: e.reason, evidence: e.detail.evidence };
      throw e;
    }
    throw new Error('accepted');
  }

  it('names the check that refused, and the claim names once the payload was read (never their values)', async () => {
    expect(await evidence(await hs(claims(), new TextEncoder().encode('another-secret-0123456789abcdef0123')))).toEqual({
      reason: 'token_invalid',
      evidence: { protocol: 'jwt', check: 'signature' },
    });
    expect(await evidence(await hs(claims({ exp: NOW - 10 })))).toEqual({
      reason: 'token_expired',
      evidence: { protocol: 'jwt', check: 'exp', claim_names: ['jti', 'exp', 'iat', 'email'] },
    });
    const wrongAud = await evidence(await hs(claims({ aud: 'someone-else' })), policy({ audience: 'portico' }));
    expect(wrongAud).toEqual({ reason: 'wrong_audience', evidence: { protocol: 'jwt', check: 'aud', claim_names: ['jti', 'exp', 'iat', 'email', 'aud'] } });
    expect(JSON.stringify(wrongAud)).not.toContain('someone-else');
    expect((await evidence(await hs(claims({ user_id: 'usr_1' })))).evidence).toMatchObject({ check: 'identifier' });
    expect((await evidence('not-a-jwt')).evidence).toEqual({ protocol: 'jwt', check: 'signature' });
  });
});
