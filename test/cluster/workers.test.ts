/** How many `portico serve` processes: src/cluster/workers.ts. */
import { ConfigError } from '../../src/config/index.js';
import { parseWorkersFlag, resolveWorkers } from '../../src/cluster/workers.js';

const shared = { databaseUrl: 'postgres://db/portico', redisUrl: 'redis://cache' };

describe('resolveWorkers', () => {
  it('auto (or unset) is one per core with PostgreSQL and Redis, else one', () => {
    expect(resolveWorkers('auto', shared, 4)).toBe(4);
    expect(resolveWorkers(undefined, shared, 2)).toBe(2);
    expect(resolveWorkers('auto', shared, 512)).toBe(64);
    expect(resolveWorkers('auto', {}, 8)).toBe(1);
    expect(resolveWorkers('auto', { databaseUrl: shared.databaseUrl }, 8)).toBe(1);
    expect(resolveWorkers('auto', { redisUrl: shared.redisUrl }, 8)).toBe(1);
  });

  it('takes an explicit count where the state is shared, and one process anywhere', () => {
    expect(resolveWorkers(3, shared, 2)).toBe(3);
    expect(resolveWorkers(1, {}, 8)).toBe(1);
  });

  it('refuses more than one on the embedded database or without Redis, naming the setting used and what is missing', () => {
    expect(() => resolveWorkers(2, {}, 8, '--workers')).toThrow(ConfigError);
    expect(() => resolveWorkers(2, { redisUrl: shared.redisUrl }, 8, '--workers')).toThrow(
      '--workers: 2 worker processes need DATABASE_URL (the embedded database belongs to one process); use --workers 1 or set them',
    );
    expect(() => resolveWorkers(4, { databaseUrl: shared.databaseUrl }, 8)).toThrow(
      'PORTICO_WORKERS: 4 worker processes need REDIS_URL (login state must be shared by every process); use PORTICO_WORKERS=1 or set them',
    );
  });
});

describe('parseWorkersFlag', () => {
  it('reads auto or 1 to 64, and nothing else', () => {
    expect(parseWorkersFlag('auto')).toBe('auto');
    expect(parseWorkersFlag(' Auto ')).toBe('auto');
    expect(parseWorkersFlag('1')).toBe(1);
    expect(parseWorkersFlag('64')).toBe(64);
    for (const bad of ['0', '65', '-2', '2.0', '0x2', '', 'all', '1e1']) expect(parseWorkersFlag(bad)).toBeUndefined();
  });
});
