// Reclaims tuple versions no snapshot can see any more, by itself, in the background.
// A version is dead when its creator aborted, or when its deleter committed at or below
// the oldest snapshot in use anywhere in the cluster (the writer's own transactions and
// each reader's reported oldest snapshot): every snapshot from then on sees the deletion.
// Dead versions leave the table's tree and every index with them.
//
// Invariants:
//  V1. A version is removed only if no running or future snapshot, on the writer or on a
//      reader, can see it (horizon = Database.oldestSnapshot(), which readers feed).
//  V2. Index entries of a removed version go with it; an index entry whose version is
//      gone is skipped by readers (they look the version up), so the order does not matter.
//  V3. Leaves emptied by vacuum are unlinked (B5) and their pages go back to the free list
//      once the horizon passes the unlink.
//  V4. A pass looks only where versions may have died: rows that got a deleter, rows an
//      aborted transaction wrote, and rows left unsettled by the pass before (creator or
//      deleter still running, deletion above the horizon); a table with more such rows than
//      the bound, and every table on a writer's first pass, gets a full pass. Its cost
//      follows the write rate, not the database size. Unsettled rows are looked at again
//      only once the horizon has moved; hints survive a failed pass and a table not yet
//      visible to the pass.
//  V5. With coldRowDelayMs, a row hinted in one pass and not the next (a cold row, e.g. one
//      account of many) waits up to that long and then goes with every other waiting row
//      of its table in one deleteMany: rows that share a leaf share a redo record. A row
//      hinted again while waiting (a hot row) is looked at at once, and so on every pass
//      while it stays hinted. Rows a pass left unsettled, and rows past 100,000 waiting
//      in a table, do not wait. Waiting rows are hints like the others: a failed pass
//      leaves them waiting and gives the due ones back.

import type { Lsn } from '../common/index.js';
import { recycleRetiredPages } from './btree.js';
import { decodeRow, prefixEnd } from './codec.js';
import { addRowHints, type Database, type RowHints, type TableDef } from './database.js';
import { indexEntry, parseVersion } from './mvcc.js';

/** Cold rows a table may have waiting (V5); past it, rows go at once. */
const WAITING_ROWS_MAX = 100_000;

/** Passes that may miss a hinted table (not yet committed) before its hints are dropped. */
const MISSES_MAX = 1000;

export interface VacuumStats {
  runs: number;
  examined: number;
  removed: number;
  /** Empty leaves unlinked earlier and now back on the free list. */
  pagesRecycled: number;
  lastHorizon: Lsn;
}

export class Vacuum {
  readonly stats: VacuumStats = { runs: 0, examined: 0, removed: 0, pagesRecycled: 0, lastHorizon: 0n };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Rows a pass found not yet dead but possibly dying (V4), and the horizon of that pass. */
  private unsettled: RowHints = new Map();
  private unsettledHorizon: Lsn = 0n;
  /** Passes in a row that could not see a hinted table. */
  private readonly misses = new Map<number, number>();
  /** Cold rows waiting (V5): table -> row key (hex) -> when first hinted. */
  private waiting = new Map<number, Map<string, number>>();
  /** Rows found hot by the last pass (V5): hinted again, they go at once. */
  private hot = new Map<number, Set<string>>();

  constructor(
    private readonly db: Database,
    private readonly options: { intervalMs: number; coldRowDelayMs?: number } = { intervalMs: 1000 },
  ) {}

  /** Rows now waiting for their delay (V5). */
  get waitingRows(): number {
    let count = 0;
    for (const rows of this.waiting.values()) count += rows.size;
    return count;
  }

  /**
   * V5: of this pass's hints, the cold rows wait (unless due); hot rows (hinted again while
   * waiting) and rows past the delay are returned, with the whole-table hints as they were.
   */
  private dueHints(hints: RowHints, nowMs: number): RowHints {
    const delayMs = this.options.coldRowDelayMs ?? 0;
    if (delayMs <= 0) return hints;
    const due: RowHints = new Map();
    const hot = new Map<number, Set<string>>();
    for (const [tableId, keys] of hints) {
      if (keys === 'all') {
        due.set(tableId, 'all');
        this.waiting.delete(tableId);
        continue;
      }
      let waiting = this.waiting.get(tableId);
      const wasHot = this.hot.get(tableId);
      for (const key of keys) {
        // Hinted again while waiting, or hot in the pass before: hot, goes now and stays hot.
        if (waiting?.delete(key) || wasHot?.has(key) || (waiting?.size ?? 0) >= WAITING_ROWS_MAX) {
          addRowHints(due, tableId, key);
          let hotKeys = hot.get(tableId);
          if (hotKeys === undefined) hot.set(tableId, (hotKeys = new Set()));
          hotKeys.add(key);
        } else {
          if (waiting === undefined) this.waiting.set(tableId, (waiting = new Map()));
          waiting.set(key, nowMs);
        }
      }
    }
    this.hot = hot;
    for (const [tableId, waiting] of this.waiting) {
      // A key is set only when absent, at the pass's time: each map is in time order.
      for (const [key, sinceMs] of waiting) {
        if (nowMs - sinceMs < delayMs) break;
        addRowHints(due, tableId, key);
        waiting.delete(key);
      }
      if (waiting.size === 0) this.waiting.delete(tableId);
    }
    return due;
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.runOnce()
        .catch(() => undefined)
        .finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every table. */
  async runOnce(): Promise<void> {
    const horizon = this.db.oldestSnapshot();
    this.stats.lastHorizon = horizon;
    this.stats.runs++;
    // Rows a pass left unsettled wait until the horizon moves: before that, looking at them
    // again cannot find anything new (a long snapshot would otherwise cost a pass per tick).
    let again: RowHints | undefined;
    if (this.unsettled.size > 0 && horizon > this.unsettledHorizon) {
      again = this.unsettled;
      this.unsettled = new Map();
    }
    const taken = this.db.takeVacuumHints();
    if (taken === 'all') this.waiting = new Map();
    const hints = taken === 'all' ? taken : this.dueHints(taken, performance.now());
    // Rows a pass left unsettled have waited already (V5): they are looked at now.
    if (again !== undefined && hints !== 'all') for (const [tableId, keys] of again) addRowHints(hints, tableId, keys);
    if (hints !== 'all' && hints.size === 0) {
      // Nothing changed since the last pass: no catalog read, no tree walk.
      this.stats.pagesRecycled += await recycleRetiredPages(this.db.cache, horizon);
      return;
    }
    // Its own transaction holds a snapshot while it walks the trees, so that pages its scans
    // may still reach are not recycled under it (B5).
    const tx = this.db.begin({ readOnly: true });
    try {
      tx.beginStatement();
      const tables: TableDef[] = await tx.allTables();
      if (hints !== 'all') {
        // Hints for a table this pass cannot see (created by a transaction still running):
        // kept for later passes, up to a point (a dropped table's hints go eventually).
        const visible = new Set(tables.map((table) => table.id));
        for (const [tableId, keys] of hints) {
          if (visible.has(tableId)) continue;
          const misses = (this.misses.get(tableId) ?? 0) + 1;
          this.misses.set(tableId, misses);
          if (misses <= MISSES_MAX) this.keepUnsettled(tableId, keys);
          else this.misses.delete(tableId);
        }
      }
      for (const table of tables) {
        const rows = hints === 'all' ? 'all' : hints.get(table.id);
        if (rows === undefined) continue;
        this.misses.delete(table.id);
        if (rows === 'all') await this.vacuumTable(table, horizon);
        else await this.vacuumRows(table, rows, horizon);
      }
      this.unsettledHorizon = horizon;
    } catch (error) {
      // Nothing may be forgotten: what this pass was given is looked at again next time.
      this.db.restoreVacuumHints(hints);
      throw error;
    } finally {
      tx.rollback();
    }
    this.stats.pagesRecycled += await recycleRetiredPages(this.db.cache, this.db.oldestSnapshot());
  }

  /** Rows (or a whole table) to look at again once the horizon has moved. */
  private keepUnsettled(tableId: number, keys: string | Iterable<string> | 'all'): void {
    addRowHints(this.unsettled, tableId, keys);
  }

  /** A full pass over one table. */
  private async vacuumTable(table: TableDef, horizon: Lsn): Promise<void> {
    const dead: Uint8Array[] = [];
    await this.findDead(table, undefined, undefined, horizon, dead);
    await this.remove(table, dead);
  }

  /** The versions of the rows hints (V4, V5) pointed at, removed together. */
  private async vacuumRows(table: TableDef, rowKeys: Iterable<string>, horizon: Lsn): Promise<void> {
    const dead: Uint8Array[] = [];
    for (const rowKey of rowKeys) {
      const key = Buffer.from(rowKey, 'hex');
      await this.findDead(table, key, prefixEnd(key), horizon, dead);
    }
    await this.remove(table, dead);
  }

  /** Appends to `dead` the versions in [from, to) no snapshot can see (V1); notes the unsettled rows. */
  private async findDead(table: TableDef, from: Uint8Array | undefined, to: Uint8Array | undefined, horizon: Lsn, dead: Uint8Array[]): Promise<void> {
    const tree = this.db.tree(table.root);
    for await (const [key, value] of tree.scan(from, to)) {
      this.stats.examined++;
      const version = parseVersion(key, value);
      const created = await this.db.status.state(version.xmin);
      let unsettled = created.state === 'running';
      if (created.state === 'aborted') dead.push(key);
      else if (created.state === 'committed' && version.xmax !== 0) {
        const deleted = await this.db.status.state(version.xmax);
        if (deleted.state === 'committed' && deleted.lsn <= horizon) dead.push(key);
        else unsettled ||= deleted.state === 'running' || deleted.state === 'committed';
      }
      // Not dead yet but may be later (its creator or deleter is still running, or the
      // deletion is above the horizon): look again on a later pass.
      if (unsettled) this.keepUnsettled(table.id, Buffer.from(key.subarray(0, key.length - 8)).toString('hex'));
    }
  }

  private async remove(table: TableDef, dead: Uint8Array[]): Promise<void> {
    if (dead.length === 0) return;
    const tree = this.db.tree(table.root);
    // Index entries first (V2 allows either order), then the versions, each tree's in
    // batches: a hot row's many dead versions leave in one mini-transaction.
    const secondary = table.indexes.filter((index) => !index.primary);
    if (secondary.length > 0) {
      const entries = new Map(secondary.map((index) => [index, [] as Uint8Array[]]));
      for (const key of dead) {
        const value = await tree.get(key);
        if (value === undefined) continue;
        const values = decodeRow(parseVersion(key, value).row);
        for (const index of secondary) entries.get(index)!.push(indexEntry(index.columns, values, key).entry);
      }
      for (const [index, keys] of entries) await this.db.tree(index.root).deleteMany(keys);
    }
    this.stats.removed += await tree.deleteMany(dead);
  }
}
