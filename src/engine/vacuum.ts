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
//      follows the write rate, not the database size.

import type { Lsn } from '../common/index.js';
import { recycleRetiredPages } from './btree.js';
import { decodeRow, prefixEnd } from './codec.js';
import type { Database, TableDef } from './database.js';
import { indexEntry, parseVersion } from './mvcc.js';

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

  constructor(
    private readonly db: Database,
    private readonly options: { intervalMs: number } = { intervalMs: 1000 },
  ) {}

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
    // Its own transaction holds a snapshot while it walks the trees, so that pages its scans
    // may still reach are not recycled under it (B5).
    const hints = this.db.takeVacuumHints();
    if (hints !== 'all' && hints.size === 0) {
      // Nothing changed since the last pass: no catalog read, no tree walk.
      this.stats.pagesRecycled += await recycleRetiredPages(this.db.cache, horizon);
      return;
    }
    const tx = this.db.begin({ readOnly: true });
    try {
      tx.beginStatement();
      const tables: TableDef[] = await tx.allTables();
      for (const table of tables) {
        const rows = hints === 'all' ? 'all' : hints.get(table.id);
        if (rows === 'all') await this.vacuumTable(table, horizon);
        else if (rows !== undefined) for (const rowKey of rows) await this.vacuumRow(table, Buffer.from(rowKey, 'hex'), horizon);
      }
    } finally {
      tx.rollback();
    }
    this.stats.pagesRecycled += await recycleRetiredPages(this.db.cache, this.db.oldestSnapshot());
  }

  /** A full pass over one table. */
  private async vacuumTable(table: TableDef, horizon: Lsn): Promise<void> {
    await this.vacuumRange(table, undefined, undefined, horizon);
  }

  /** The versions of one row that a hint (V4) pointed at. */
  private async vacuumRow(table: TableDef, rowKey: Uint8Array, horizon: Lsn): Promise<void> {
    await this.vacuumRange(table, rowKey, prefixEnd(rowKey), horizon);
  }

  private async vacuumRange(table: TableDef, from: Uint8Array | undefined, to: Uint8Array | undefined, horizon: Lsn): Promise<void> {
    const tree = this.db.tree(table.root);
    const dead: Uint8Array[] = [];
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
      if (unsettled) this.db.noteVacuumCandidate(table.id, Buffer.from(key.subarray(0, key.length - 8)).toString('hex'));
    }
    for (const key of dead) {
      const value = await tree.get(key);
      if (value === undefined) continue;
      const version = parseVersion(key, value);
      const values = decodeRow(version.row);
      for (const index of table.indexes) if (!index.primary) await this.db.tree(index.root).delete(indexEntry(index.columns, values, key).entry);
      if (await tree.delete(key)) this.stats.removed++;
    }
  }
}
