import { certificateExpiry, earliest } from '../../src/console/certificate-expiry.js';

const DAY = 86_400_000;
const NOT_AFTER = '2027-01-31T00:00:00.000Z';
const at = (msBefore: number) => Date.parse(NOT_AFTER) - msBefore;

describe('certificateExpiry: the console badge from an IdP certificate not_after and the clock', () => {
  it('no badge more than 30 days ahead; a warning from 30 days; critical (red) from 7 days; then expired', () => {
    expect(certificateExpiry(NOT_AFTER, at(30 * DAY + 1))).toEqual({ level: 'ok', daysLeft: 30, badge: '', text: 'Expires in 30 days' });
    expect(certificateExpiry(NOT_AFTER, at(30 * DAY))).toEqual({ level: 'warning', daysLeft: 30, badge: 'Expires within 30 days', text: 'Expires in 30 days' });
    expect(certificateExpiry(NOT_AFTER, at(7 * DAY + 1))).toMatchObject({ level: 'warning', daysLeft: 7 });
    expect(certificateExpiry(NOT_AFTER, at(7 * DAY))).toEqual({ level: 'critical', daysLeft: 7, badge: 'Expires within 7 days', text: 'Expires in 7 days' });
    expect(certificateExpiry(NOT_AFTER, at(DAY))).toMatchObject({ level: 'critical', text: 'Expires in 1 day' });
    expect(certificateExpiry(NOT_AFTER, at(60_000))).toMatchObject({ level: 'critical', text: 'Expires within a day' });
    expect(certificateExpiry(NOT_AFTER, at(0))).toEqual({ level: 'expired', daysLeft: 0, badge: 'Expired', text: 'Expired today' });
    expect(certificateExpiry(NOT_AFTER, at(-3 * DAY - 5))).toEqual({ level: 'expired', daysLeft: -3, badge: 'Expired', text: 'Expired 3 days ago' });
  });

  it('an unreadable date is shown as a problem, not as fine', () => {
    expect(certificateExpiry('not a date', Date.now())).toMatchObject({ level: 'critical', badge: 'Unreadable' });
  });

  it('the certificate expiring first decides', () => {
    expect(earliest([{ not_after: '2027-05-01T00:00:00Z' }, { not_after: '2026-12-24T00:00:00Z' }, { not_after: '2028-01-01T00:00:00Z' }])).toEqual({ not_after: '2026-12-24T00:00:00Z' });
    expect(earliest([])).toBeUndefined();
  });
});
