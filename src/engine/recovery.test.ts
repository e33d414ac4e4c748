// Compute crash recovery and vacuum, over the model page store.
//  - A writer that stops mid-transaction (its redo on the volume, no commit record) and a
//    new writer that opens the same volume: the in-flight rows are invisible, their keys
//    free, and new xids start above every xid the old writer could have used (X1, X2).
//  - Vacuum removes versions no snapshot can see, keeps those an older snapshot (a writer
//    transaction, or a reader's reported one) still sees, and takes index entries along (V1, V2).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAGE_BYTES } from '../common/index.js';
import { ModelStore } from '../testing/model-page-store.js';
import { BufferCache } from './buffer-cache.js';
import { encodeKey } from './codec.js';
import { Database, type TableDef } from './database.js';
import { parseVersion } from './mvcc.js';
import { Vacuum } from './vacuum.js';

const columns = [
  { name: 'id', type: 'int4', notNull: true, default: null },
  { name: 'v', type: 'text', notNull: true, default: null },
];

async function entries(db: Database, root: number): Promise<number> {
  let count = 0;
  for await (const _ of db.tree(root as never).scan()) count++;
  return count;
}

/** A database over the model store with table t of rows 1-300, committed. */
async function threeHundredRows(): Promise<{ db: Database; table: TableDef }> {
  const store = new ModelStore(1 << 14, 100_000n);
  const db = await Database.create(new BufferCache(store, { bytesMax: 64 * PAGE_BYTES }));
  const setup = db.begin();
  await setup.createTable({ name: 't', columns, primaryKey: [0] });
  const table = await setup.table('t');
  for (let id = 1; id <= 300; id++) await setup.insert(table, [id, `row ${id}`]);
  await setup.commit();
  return { db, table };
}

test('a new writer sees in-flight transactions of the old one as aborted, and never reuses their xids', async () => {
  const store = new ModelStore(1 << 14, 100_000n);
  const first = await Database.create(new BufferCache(store, { bytesMax: 16 * PAGE_BYTES }));
  const setup = first.begin();
  const table = (await setup.createTable({ name: 't', columns, primaryKey: [0] }))!;
  await setup.insert(table, [1, 'committed']);
  await setup.commit();
  const inFlight = first.begin();
  await inFlight.insert(table, [2, 'in flight']);
  await inFlight.update(table, encodeKey([1]), (values) => [values[0]!, 'changed in flight']);
  const oldXids = [...(inFlight as unknown as { own: Set<number> }).own];
  await store.waitDurable(store.lsn); // its redo is on the volume; no commit record is

  const second = await Database.open(new BufferCache(store, { bytesMax: 16 * PAGE_BYTES }));
  const reader = second.begin();
  const reopened = await reader.table('t');
  const rows = [];
  for await (const row of reader.scan(reopened)) rows.push(row.values);
  assert.deepEqual(rows, [[1, 'committed']]);
  await reader.commit();
  const writer = second.begin();
  await writer.insert(reopened, [2, 'after the crash']);
  await writer.update(reopened, encodeKey([1]), (values) => [values[0]!, 'updated after the crash']);
  const newXids = [...(writer as unknown as { own: Set<number> }).own];
  await writer.commit();
  assert.ok(Math.min(...newXids) > Math.max(...oldXids), `new xids ${newXids} above old ${oldXids}`);
  const check = second.begin();
  assert.deepEqual((await check.get(reopened, [1]))?.values, [1, 'updated after the crash']);
  assert.deepEqual((await check.get(reopened, [2]))?.values, [2, 'after the crash']);
  await check.commit();
});

test('vacuum removes versions no snapshot needs and keeps those an old snapshot still reads', async () => {
  const store = new ModelStore(1 << 14, 100_000n);
  const db = await Database.create(new BufferCache(store, { bytesMax: 64 * PAGE_BYTES }));
  const setup = db.begin();
  await setup.createTable({ name: 't', columns, primaryKey: [0] });
  await setup.commit();
  const ddl = db.begin();
  await ddl.createIndex('t', { name: 't_v', columns: [1], unique: false });
  await ddl.commit();
  const tx0 = db.begin();
  const table = await tx0.table('t');
  await tx0.insert(table, [1, 'v0']);
  await tx0.insert(table, [2, 'gone']);
  await tx0.commit();
  const index = table.indexes.find((each) => each.name === 't_v')!;

  // An old snapshot (REPEATABLE READ) sees v0; then ten updates and a delete commit.
  const old = db.begin({ isolation: 'repeatable read' });
  assert.deepEqual((await old.get(table, [1]))?.values, [1, 'v0']);
  for (let round = 1; round <= 10; round++) {
    const tx = db.begin();
    await tx.update(table, encodeKey([1]), (values) => [values[0]!, `v${round}`]);
    await tx.commit();
  }
  const del = db.begin();
  await del.delete(table, encodeKey([2]));
  await del.commit();
  const aborted = db.begin();
  await aborted.insert(table, [3, 'aborted']);
  aborted.rollback();
  assert.equal(await entries(db, table.root), 13, "11 versions of row 1, 1 of row 2, 1 aborted");

  const vacuum = new Vacuum(db);
  await vacuum.runOnce();
  // The old snapshot still needs v0 (deleted after it): kept, with its index entry; the
  // aborted insert goes at once.
  assert.deepEqual((await old.get(table, [1]))?.values, [1, 'v0']);
  assert.ok((await entries(db, table.root)) < 13, 'the aborted version went');
  const rows = [];
  for await (const row of old.scanIndex(table, index, encodeKey(['v0']), encodeKey(['v1']))) rows.push(row.values);
  assert.deepEqual(rows, [[1, 'v0']]);
  await old.commit();

  // A reader's reported snapshot holds versions back the same way.
  db.readerSnapshots.set('reader-1', 0n);
  await vacuum.runOnce();
  assert.ok((await entries(db, table.root)) > 1);
  db.readerSnapshots.clear();
  await vacuum.runOnce();
  const remaining: string[] = [];
  for await (const [key, value] of db.tree(table.root).scan()) remaining.push(String(parseVersion(key, value).row.length));
  assert.equal(remaining.length, 1, 'only the newest version of row 1 is left');
  assert.equal(await entries(db, index.root), 1, 'index entries went with their versions');
  const check = db.begin();
  assert.deepEqual((await check.get(table, [1]))?.values, [1, 'v10']);
  assert.equal(await check.get(table, [2]), undefined);
  await check.commit();
});

test('after its first full pass vacuum looks only at rows whose versions may have died (V4)', async () => {
  const { db, table } = await threeHundredRows();
  const vacuum = new Vacuum(db);
  await vacuum.runOnce();
  assert.ok(vacuum.stats.examined >= 300, 'the first pass is a full one');

  // Three updates of one row, a delete, an aborted insert and a rolled-back savepoint.
  for (let round = 1; round <= 3; round++) {
    const tx = db.begin();
    await tx.update(table, encodeKey([7]), (values) => [values[0]!, `v${round}`]);
    await tx.commit();
  }
  const del = db.begin();
  await del.delete(table, encodeKey([8]));
  await del.commit();
  const aborted = db.begin();
  await aborted.insert(table, [1000, 'aborted']);
  aborted.rollback();
  const partly = db.begin();
  partly.savepoint('s');
  await partly.insert(table, [1001, 'rolled back']);
  partly.rollbackTo('s');
  await partly.insert(table, [1002, 'kept']);
  // Still running: its version is not settled, so a later pass must come back to it.
  const before = vacuum.stats.examined;
  const removedBefore = vacuum.stats.removed;
  await vacuum.runOnce();
  assert.equal(vacuum.stats.removed - removedBefore, 6, 'three old versions of row 7, row 8, the two rolled-back inserts');
  assert.ok(vacuum.stats.examined - before <= 10, `examined ${vacuum.stats.examined - before} versions, not the table`);
  partly.beginStatement();
  await partly.update(table, encodeKey([1002]), (values) => [values[0]!, 'kept, changed']);
  await partly.commit();
  await vacuum.runOnce();
  assert.equal(await entries(db, table.root), 300 - 1 + 1, 'every row once: 300 less row 8 plus row 1002');
  const check = db.begin();
  assert.deepEqual((await check.get(table, [7]))?.values, [7, 'v3']);
  assert.deepEqual((await check.get(table, [1002]))?.values, [1002, 'kept, changed']);
  await check.commit();
});

test('with coldRowDelayMs, cold rows wait and then leave together, a leaf\'s rows in one redo record; a hot row goes at once (V5)', async () => {
  const { db, table } = await threeHundredRows();
  const vacuum = new Vacuum(db, { intervalMs: 1000, coldRowDelayMs: 300 });
  await vacuum.runOnce();
  const update = async (id: number, value: string): Promise<void> => {
    const tx = db.begin();
    await tx.update(table, encodeKey([id]), (values) => [values[0]!, value]);
    await tx.commit();
  };
  // Twenty neighbouring rows (one or two leaves), each updated once: cold.
  for (let id = 1; id <= 20; id++) await update(id, `cold ${id}`);
  const removedBefore = vacuum.stats.removed;
  await vacuum.runOnce();
  const parked = performance.now();
  assert.equal(vacuum.stats.removed, removedBefore, 'cold rows wait');
  assert.equal(vacuum.waitingRows, 20);
  // A row updated again while it waits is hot: its dead versions go on that pass.
  await update(250, 'hot 1');
  await vacuum.runOnce();
  await update(250, 'hot 2');
  await vacuum.runOnce();
  assert.equal(vacuum.stats.removed - removedBefore, 2, 'the hot row\'s two old versions');
  assert.equal(vacuum.waitingRows, 20, 'the cold rows still wait');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 350 - (performance.now() - parked))));
  const lsnBefore = db.cache.store.nextLsn();
  await vacuum.runOnce();
  assert.equal(vacuum.stats.removed - removedBefore, 22, 'the twenty cold rows\' old versions, after the delay');
  assert.equal(vacuum.waitingRows, 0);
  const records = Number(db.cache.store.nextLsn() - lsnBefore);
  assert.ok(records >= 1 && records <= 3, `twenty rows' versions removed in ${records} redo records (one per leaf), not twenty`);
  assert.equal(await entries(db, table.root), 300, 'one version per row left');
  const check = db.begin();
  assert.deepEqual((await check.get(table, [5]))?.values, [5, 'cold 5']);
  assert.deepEqual((await check.get(table, [250]))?.values, [250, 'hot 2']);
  await check.commit();
});

test('the catalog keeps constraints and sequences; a new writer never repeats a sequence value a committed transaction used', async () => {
  const store = new ModelStore(1 << 14, 100_000n);
  const first = await Database.create(new BufferCache(store, { bytesMax: 32 * PAGE_BYTES }));
  const ddl = first.begin();
  await ddl.createTable({ name: 'orders', columns, primaryKey: [0], unique: [{ columns: [1] }], checks: [{ expression: 'length(v) > 0' }] });
  await ddl.createSequence('order_ids', { start: 100n, increment: 5n });
  await ddl.commit();
  const tx = first.begin();
  const table = await tx.table('orders');
  assert.deepEqual(table.checks, [{ name: 'orders_check', expression: 'length(v) > 0' }]);
  assert.deepEqual(table.indexes.map((index) => [index.name, index.unique, index.primary]), [['orders_pkey', true, true], ['orders_v_key', true, false]]);
  const handed = [await tx.nextval('order_ids'), await tx.nextval('order_ids'), await tx.nextval('order_ids')];
  assert.deepEqual(handed, [100n, 105n, 110n]);
  tx.rollback(); // nextval is not transactional: a rolled-back value is gone
  const use = first.begin();
  const used = await use.nextval('order_ids');
  assert.equal(used, 115n);
  await use.insert(table, [Number(used), 'first']);
  await use.commit();
  await assert.rejects(first.begin().nextval('missing'), /relation "missing" does not exist/);

  const second = await Database.open(new BufferCache(store, { bytesMax: 32 * PAGE_BYTES }));
  const after = second.begin();
  const next = await after.nextval('order_ids');
  // As in PostgreSQL, a value a committed transaction used is never handed out again (the
  // reservation precedes the commit record in the log); unused ones may be skipped.
  assert.ok(next > used && (next - 100n) % 5n === 0n, `after reopening: ${next}`);
  await after.commit();
  // An aborted CREATE leaves nothing behind.
  const aborted = second.begin();
  await aborted.createTable({ name: 'ghost', columns, primaryKey: [0] });
  aborted.rollback();
  const check = second.begin();
  assert.equal(await check.findTable('ghost'), undefined);
  await check.commit();
});
