/** axe-core in a Chromium page: no serious or critical violation (the bar every page test keeps). */
import AxeBuilder from '@axe-core/playwright';
import type { Page } from 'playwright-core';

export async function expectAccessible(page: Page): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}
