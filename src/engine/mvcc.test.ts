// Random interleaved transactions against a model of snapshot isolation. Three session
// slots run REPEATABLE READ transactions whose operations interleave at random; the model
// keeps every committed state, gives each transaction the state at its first statement
// plus its own writes, and predicts each error: 55P03 when another running transaction
// holds the row (the test runs with a 1 ms lock_timeout so nothing waits), 40001 when the
// row changed after the snapshot, 23505 for a key that exists. Any error aborts the
// transaction in both. A cache of 12 pages keeps the tree mostly out of memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PAGE_BYTES } from '../common/index.js';
import { ModelStore } from '../testing/model-page-store.js';
import { BufferCache } from './buffer-cache.js';
import { encodeKey } from './codec.js';
import { Database, type TableDef, type Transaction } from './database.js';
import { EngineError } from './errors.js';

type State = Map<number, number>;

interface ModelTxn {
  snapshot: number | undefined;
  writes: Map<number, number | null>;
  savepoints: Array<Map<number, number | null>>;
}

class Model {
  readonly states: State[] = [new Map()];
  /** For each key, the index of the state where it last changed. */
  readonly changedAt = new Map<number, number>();
  readonly txns: Array<ModelTxn | undefined> = [undefined, undefined, undefined];

  txn(slot: number): ModelTxn {
    let txn = this.txns[slot];
    if (txn === undefined) {
      txn = { snapshot: undefined, writes: new Map(), savepoints: [] };
      this.txns[slot] = txn;
    }
    txn.snapshot ??= this.states.length - 1;
    return txn;
  }

  view(slot: number): State {
    const txn = this.txn(slot);
    const view = new Map(this.states[txn.snapshot!]!);
    for (const [key, value] of txn.writes) {
      if (value === null) view.delete(key);
      else view.set(key, value);
    }
    return view;
  }

  /** The error a write of `key` by `slot` gets, if any. */
  writeError(slot: number, key: number, kind: 'insert' | 'update' | 'delete'): string | undefined {
    for (const [other, txn] of this.txns.entries()) if (other !== slot && txn?.writes.has(key)) return '55P03';
    const txn = this.txn(slot);
    const latest = this.states[this.states.length - 1]!.get(key);
    const own = txn.writes.has(key);
    if (kind === 'insert') {
      if (own ? txn.writes.get(key) !== null : latest !== undefined) return '23505';
      return undefined;
    }
    if (!own && (this.changedAt.get(key) ?? 0) > txn.snapshot!) return '40001';
    return undefined;
  }

  commit(slot: number): void {
    const txn = this.txns[slot];
    this.txns[slot] = undefined;
    if (txn === undefined || txn.writes.size === 0) return;
    const next = new Map(this.states[this.states.length - 1]!);
    for (const [key, value] of txn.writes) {
      if (value === null) next.delete(key);
      else next.set(key, value);
      this.changedAt.set(key, this.states.length);
    }
    this.states.push(next);
  }

  abort(slot: number): void {
    this.txns[slot] = undefined;
  }
}

const slot = fc.integer({ min: 0, max: 2 });
const key = fc.integer({ min: 1, max: 12 });
const operation = fc.oneof(
  fc.record({ kind: fc.constant('get' as const), slot, key }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('scan' as const), slot }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('insert' as const), slot, key, value: fc.integer({ min: 0, max: 1000 }) }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('update' as const), slot, key, value: fc.integer({ min: 0, max: 1000 }) }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('delete' as const), slot, key }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('savepoint' as const), slot }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('rollbackTo' as const), slot }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('commit' as const), slot }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant('rollback' as const), slot }, { noNullPrototype: true }),
);

test('interleaved REPEATABLE READ transactions match a snapshot-isolation model', { timeout: 300_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 5, maxLength: 80 }), fc.integer({ min: 0, max: 300 }), async (operations, padding) => {
      const cache = new BufferCache(new ModelStore(1 << 14, 512n), { bytesMax: 12 * PAGE_BYTES });
      const db = await Database.create(cache, { deadlockTimeoutMs: 10_000 });
      const setup = db.begin();
      const table: TableDef = (await setup.createTable({ name: 't', columns: [{ name: 'id', type: 'int4', notNull: true, default: null }, { name: 'v', type: 'int4', notNull: true, default: null }, { name: 'pad', type: 'text', notNull: true, default: null }], primaryKey: [0] }))!;
      await setup.commit();
      const pad = 'x'.repeat(padding);
      const model = new Model();
      const txns: Array<Transaction | undefined> = [undefined, undefined, undefined];
      const txnOf = (slot: number): Transaction => (txns[slot] ??= db.begin({ isolation: 'repeatable read' }));
      for (const [step, op] of operations.entries()) {
        const where = `step ${step} ${JSON.stringify(op)}`;
        const tx = txnOf(op.slot);
        tx.beginStatement({ lockTimeoutMs: 1 });
        let expectedError: string | undefined;
        let expected: unknown;
        let actual: unknown;
        if (op.kind === 'insert' || op.kind === 'update' || op.kind === 'delete') {
          const view = model.view(op.slot);
          expectedError = model.writeError(op.slot, op.key, op.kind);
          if (expectedError === undefined && op.kind !== 'insert' && !view.has(op.key)) expected = false;
          else if (expectedError === undefined) {
            expected = true;
            model.txn(op.slot).writes.set(op.key, op.kind === 'delete' ? null : op.value);
          }
        }
        try {
          switch (op.kind) {
            case 'get': {
              expected = model.view(op.slot).get(op.key);
              const row = await tx.get(table, [op.key]);
              actual = row?.values[1];
              break;
            }
            case 'scan': {
              expected = [...model.view(op.slot)].sort(([a], [b]) => a - b);
              const rows: Array<[number, number]> = [];
              for await (const row of tx.scan(table)) rows.push([row.values[0] as number, row.values[1] as number]);
              actual = rows;
              break;
            }
            case 'insert':
              await tx.insert(table, [op.key, op.value, pad]);
              actual = true;
              break;
            case 'update':
              actual = (await tx.update(table, encodeKey([op.key]), (values) => [values[0]!, op.value, values[2]!])) !== undefined;
              break;
            case 'delete':
              actual = await tx.delete(table, encodeKey([op.key]));
              break;
            case 'savepoint':
              tx.savepoint('p');
              model.txn(op.slot).savepoints.push(new Map(model.txn(op.slot).writes));
              expected = actual = 'ok';
              break;
            case 'rollbackTo': {
              const saved = model.txn(op.slot).savepoints.at(-1);
              if (saved === undefined) {
                expectedError = '3B001';
                tx.rollbackTo('p');
              } else {
                tx.rollbackTo('p');
                model.txn(op.slot).writes = new Map(saved);
              }
              expected = actual = 'ok';
              break;
            }
            case 'commit':
              txns[op.slot] = undefined;
              await tx.commit();
              model.commit(op.slot);
              expected = actual = 'ok';
              break;
            case 'rollback':
              txns[op.slot] = undefined;
              tx.rollback();
              model.abort(op.slot);
              expected = actual = 'ok';
              break;
          }
          assert.equal(expectedError, undefined, `${where}: expected error ${expectedError}`);
          assert.deepEqual(actual, expected, where);
        } catch (error) {
          if (!(error instanceof EngineError)) throw error;
          assert.equal(error.sqlState, expectedError, `${where}: ${error.message}`);
          tx.rollback();
          txns[op.slot] = undefined;
          model.abort(op.slot);
        }
      }
      for (const [index, tx] of txns.entries()) {
        if (tx === undefined) continue;
        await tx.commit();
        model.commit(index);
      }
      const check = db.begin();
      const rows: Array<[number, number]> = [];
      for await (const row of check.scan(table)) rows.push([row.values[0] as number, row.values[1] as number]);
      await check.commit();
      assert.deepEqual(rows, [...model.states.at(-1)!].sort(([a], [b]) => a - b), 'final state');
      assert.equal(db.locks.resourceCount, 0, 'every lock released');
    }),
    { numRuns: 150 },
  );
});
