// SERIALIZABLE means some serial order explains what happened. Up to four transactions
// interleave reads (of a row, or a sum over the table) and writes whose values depend on
// what they read; some fail (40001, or 55P03 with a 1 ms lock_timeout) and abort. For
// every run the test searches the orders of the committed transactions for one in which,
// run alone one after another from the initial state, each reads exactly what it read
// and the final table is what the engine holds. With REPEATABLE READ in place of
// SERIALIZABLE the search fails (write skew), which the second test checks.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PAGE_BYTES } from '../common/index.js';
import { ModelStore } from '../testing/model-page-store.js';
import { BufferCache } from './buffer-cache.js';
import { encodeKey } from './codec.js';
import { Database, type IsolationLevel, type TableDef, type Transaction } from './database.js';
import { EngineError } from './errors.js';

type Op = { kind: 'read'; slot: number; key: number } | { kind: 'sum'; slot: number } | { kind: 'write'; slot: number; key: number } | { kind: 'commit'; slot: number };
type Event = { kind: 'read'; key: number; value: number | undefined } | { kind: 'sum'; value: number } | { kind: 'write'; key: number; value: number };

const KEYS = 4;
const INITIAL = new Map<number, number>([
  [1, 10],
  [2, 20],
]);

/** Replays one transaction's events on `state`; false if a read disagrees. */
function replay(state: Map<number, number>, events: Event[]): boolean {
  for (const event of events) {
    if (event.kind === 'read' && state.get(event.key) !== event.value) return false;
    if (event.kind === 'sum' && [...state.values()].reduce((sum, value) => sum + value, 0) !== event.value) return false;
    if (event.kind === 'write') state.set(event.key, event.value);
  }
  return true;
}

function serialOrderExists(committed: Event[][], final: Map<number, number>): boolean {
  const search = (state: Map<number, number>, remaining: Event[][]): boolean => {
    if (remaining.length === 0) return [...state].sort().join() === [...final].sort().join();
    for (const [index, events] of remaining.entries()) {
      const next = new Map(state);
      if (replay(next, events) && search(next, remaining.filter((_, other) => other !== index))) return true;
    }
    return false;
  };
  return search(new Map(INITIAL), committed);
}

const slot = fc.integer({ min: 0, max: 3 });
const key = fc.integer({ min: 1, max: KEYS });
const operation: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('read' as const), slot, key }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('sum' as const), slot }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('write' as const), slot, key }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('commit' as const), slot }, { noNullPrototype: true }),
);

async function run(isolation: IsolationLevel, ops: Op[]): Promise<{ committed: Event[][]; final: Map<number, number> }> {
  const cache = new BufferCache(new ModelStore(1 << 14, 4096n), { bytesMax: 32 * PAGE_BYTES });
  const db = await Database.create(cache, { deadlockTimeoutMs: 10_000 });
  const setup = db.begin();
  const table: TableDef = (await setup.createTable({ name: 't', columns: [{ name: 'id', type: 'int4', notNull: true, default: null }, { name: 'v', type: 'int4', notNull: true, default: null }], primaryKey: [0] }))!;
  for (const [id, value] of INITIAL) await setup.insert(table, [id, value]);
  await setup.commit();
  const txns: Array<{ tx: Transaction; events: Event[]; seen: number } | undefined> = [];
  const committed: Event[][] = [];
  for (const op of ops) {
    const entry = (txns[op.slot] ??= { tx: db.begin({ isolation }), events: [], seen: op.slot * 1000 });
    const { tx, events } = entry;
    try {
      tx.beginStatement({ lockTimeoutMs: 1 });
      if (op.kind === 'read') {
        const value = (await tx.get(table, [op.key]))?.values[1] as number | undefined;
        events.push({ kind: 'read', key: op.key, value });
        entry.seen += value ?? 0;
      } else if (op.kind === 'sum') {
        let sum = 0;
        for await (const row of tx.scan(table)) sum += row.values[1] as number;
        events.push({ kind: 'sum', value: sum });
        entry.seen += sum;
      } else if (op.kind === 'write') {
        // A value that depends on everything this transaction read.
        const value = entry.seen + 1;
        const updated = await tx.update(table, encodeKey([op.key]), (values) => [values[0]!, value]);
        if (updated === undefined) await tx.insert(table, [op.key, value]);
        events.push({ kind: 'write', key: op.key, value });
      } else {
        txns[op.slot] = undefined;
        await tx.commit();
        committed.push(events);
      }
    } catch (error) {
      if (!(error instanceof EngineError) || !['40001', '55P03', '23505'].includes(error.sqlState)) throw error;
      tx.rollback();
      txns[op.slot] = undefined;
    }
  }
  for (const entry of txns) {
    if (entry === undefined) continue;
    try {
      await entry.tx.commit();
      committed.push(entry.events);
    } catch (error) {
      if (!(error instanceof EngineError) || error.sqlState !== '40001') throw error;
    }
  }
  const check = db.begin();
  const final = new Map<number, number>();
  for await (const row of check.scan(table)) final.set(row.values[0] as number, row.values[1] as number);
  await check.commit();
  assert.equal(db.locks.resourceCount, 0, 'every lock released');
  return { committed, final };
}

test('every SERIALIZABLE history has an equivalent serial order', { timeout: 300_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 4, maxLength: 24 }), async (ops) => {
      const { committed, final } = await run('serializable', ops);
      assert.ok(serialOrderExists(committed, final), `no serial order explains ${JSON.stringify(committed)} ending in ${JSON.stringify([...final])}`);
    }),
    { numRuns: 300 },
  );
});

test('the same search finds REPEATABLE READ histories that no serial order explains', { timeout: 300_000 }, async () => {
  const skew: Op[] = [
    { kind: 'read', slot: 0, key: 1 },
    { kind: 'read', slot: 1, key: 2 },
    { kind: 'write', slot: 0, key: 2 },
    { kind: 'write', slot: 1, key: 1 },
    { kind: 'commit', slot: 0 },
    { kind: 'commit', slot: 1 },
  ];
  const rr = await run('repeatable read', skew);
  assert.equal(rr.committed.length, 2);
  assert.equal(serialOrderExists(rr.committed, rr.final), false);
  const ser = await run('serializable', skew);
  assert.equal(ser.committed.length, 1, 'SERIALIZABLE lets only one of the two commit');
  assert.ok(serialOrderExists(ser.committed, ser.final));
});

test('a committed pivot whose T_out was already pruned still dooms a T_in that reads over it later (S3)', async () => {
  // T3 writes 1; T1 writes 2 and sums (reads over T3: T1 -> T3); T3 commits; T0 starts
  // and reads 1 (sees T3); T1 commits, and T3 is pruned (committed before every running
  // snapshot); T0 sums (reads over T1: T0 -> T1). T0 -> T1 -> T3 with T3 first: T0 must fail.
  const ops: Op[] = [
    { kind: 'write', slot: 3, key: 1 },
    { kind: 'write', slot: 1, key: 2 },
    { kind: 'sum', slot: 1 },
    { kind: 'commit', slot: 3 },
    { kind: 'read', slot: 0, key: 1 },
    { kind: 'commit', slot: 1 },
    { kind: 'sum', slot: 0 },
    { kind: 'commit', slot: 0 },
  ];
  const { committed, final } = await run('serializable', ops);
  assert.equal(committed.length, 2, `T0 must not commit: ${JSON.stringify(committed)}`);
  assert.ok(serialOrderExists(committed, final));
});
