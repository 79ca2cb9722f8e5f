import { UpstreamError } from '../../../src/upstream/identity.js';
import { OIDC_TRANSACTION_TTL_SECONDS, checkTransaction, newTransaction } from '../../../src/upstream/oidc/transaction.js';
import type { OidcTransaction } from '../../../src/upstream/oidc/types.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const params = (q: string) => new URLSearchParams(q);

function why(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).reason).toBe('state_mismatch');
    return (e as UpstreamError).detail.why;
  }
  throw new Error('expected state_mismatch, the check passed');
}

test('a new transaction: fresh high-entropy state, nonce and verifier, stamped with the clock', () => {
  const a = newTransaction('con_1', NOW);
  const b = newTransaction('con_1', NOW);
  expect(a).toMatchObject({ connection_id: 'con_1', created_at: NOW });
  for (const f of ['state', 'nonce', 'code_verifier'] as const) {
    expect(a[f]).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(a[f]).not.toBe(b[f]);
  }
  expect(JSON.parse(JSON.stringify(a))).toEqual(a);
});

describe('checkTransaction', () => {
  const tx = newTransaction('con_1', NOW);

  test('the legitimate callback passes and returns the transaction', () => {
    expect(checkTransaction('con_1', params(`code=c&state=${tx.state}`), tx, NOW + 1000)).toBe(tx);
    // Still within the TTL at its last millisecond.
    expect(checkTransaction('con_1', params(`state=${tx.state}`), tx, NOW + OIDC_TRANSACTION_TTL_SECONDS * 1000)).toBe(tx);
  });

  test.each<[string, () => unknown, string]>([
    ['no transaction', () => checkTransaction('con_1', params(`state=${tx.state}`), undefined, NOW), 'no_transaction'],
    ['a transaction without nonce', () => checkTransaction('con_1', params(`state=${tx.state}`), { ...tx, nonce: '' }, NOW), 'bad_transaction'],
    ['a transaction with a numeric state', () => checkTransaction('con_1', params('state=1'), { ...tx, state: 1 } as unknown as OidcTransaction, NOW), 'bad_transaction'],
    ['another connection', () => checkTransaction('con_2', params(`state=${tx.state}`), tx, NOW), 'other_connection'],
    ['expired', () => checkTransaction('con_1', params(`state=${tx.state}`), tx, NOW + OIDC_TRANSACTION_TTL_SECONDS * 1000 + 1), 'expired'],
    ['no created_at', () => checkTransaction('con_1', params(`state=${tx.state}`), { ...tx, created_at: undefined } as unknown as OidcTransaction, NOW), 'expired'],
    ['no state', () => checkTransaction('con_1', params('code=c'), tx, NOW), 'missing_state'],
    ['two states', () => checkTransaction('con_1', params(`state=${tx.state}&state=${tx.state}`), tx, NOW), 'duplicate_state'],
    ['a wrong state', () => checkTransaction('con_1', params(`state=${tx.state}x`), tx, NOW), 'wrong_state'],
    ['another transaction', () => checkTransaction('con_1', params(`state=${tx.state}`), newTransaction('con_1', NOW), NOW), 'wrong_state'],
  ])('%s -> state_mismatch', (_name, fn, expected) => {
    expect(why(fn)).toBe(expected);
  });
});
