// C3: which reader failover promotes (control-plane.ts, failoverOrder).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failoverOrder } from './control-plane.js';

test('failover promotes the lowest tier, then the least replica lag (10 ms steps), then the reader serving longest', () => {
  const reader = (id: string, promotionTier: number, lagMs: number | null, availableSince: number | null): { id: string; promotionTier: number; lagMs: number | null; availableSince: number | null } => ({ id, promotionTier, lagMs, availableSince });
  // The tier decides first, whatever the lag.
  assert.deepStrictEqual(failoverOrder([reader('a', 2, 0.1, 1), reader('b', 0, 500, 9)]), ['b', 'a']);
  // Same tier: less lag wins, by whole 10 ms steps; unknown lag is worst.
  assert.deepStrictEqual(failoverOrder([reader('a', 1, 45, 1), reader('b', 1, 3, 9), reader('c', 1, null, 0)]), ['b', 'a', 'c']);
  // Within one step the reader available longest (smallest since) wins, then the identifier.
  assert.deepStrictEqual(failoverOrder([reader('a', 1, 4.9, 20), reader('b', 1, 0.2, 10), reader('c', 1, 9.9, 10)]), ['b', 'c', 'a']);
  assert.deepStrictEqual(failoverOrder([reader('z', 1, null, null), reader('y', 1, null, null)]), ['y', 'z']);
  assert.deepStrictEqual(failoverOrder([]), []);
});
