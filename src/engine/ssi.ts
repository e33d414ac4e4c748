// Serializable Snapshot Isolation (Cahill, Röhm, Fekete; Ports and Grittner for PostgreSQL):
// SERIALIZABLE transactions run on snapshots and the writer tracks rw-antidependencies
// among them. R -rw-> W when R read a version that W's write makes stale (R did not see
// W's version, or saw one W deleted), with R and W concurrent. Every cycle in a
// serialization graph of snapshot transactions has a "dangerous structure":
// T_in -rw-> T_pivot -rw-> T_out with T_out committing first. Aborting one transaction of
// each such structure leaves every committed history serializable.
//
// Reads leave predicate locks (SIREAD): a key, or a key range of a relation (a table's
// primary tree or an index), so a later write into a range someone scanned (a phantom)
// is a conflict too. Locks and edges of a committed transaction stay while any transaction
// concurrent with it is running.
//
// Invariants:
//  S1. A SERIALIZABLE transaction that commits has no T_in -> it -> T_out with T_out committed
//      before it and T_in not committed before T_out (it would be the pivot); the check
//      also runs whenever an edge is added, dooming the pivot (or T_in, if the pivot has
//      committed) at once, and dooming is reported as 40001 at the victim's next step.
//  S2. Edges join only concurrent transactions: neither committed before the other's snapshot.
//  S3. Forgetting a committed T_out leaves its commit LSN on its readers (the earliest such):
//      a committed pivot whose T_out is gone still dooms a T_in that reads over it later
//      (PostgreSQL keeps the same summary, earliestOutConflictCommit).

import type { Lsn } from '../common/index.js';
import { compareKeys } from './slotted-page.js';

export interface SerialTxn {
  readonly serial: number;
  snapshot: Lsn | undefined;
  commitLsn: Lsn | undefined;
  /** Set when a dangerous structure chose it as the victim. */
  doomed: boolean;
  readonly inConflicts: Set<SerialTxn>;
  readonly outConflicts: Set<SerialTxn>;
  /**
   * The earliest commit LSN among out-conflicts already forgotten (pruned): a committed
   * pivot keeps this much of them, so a later T_in still finds the structure (S3).
   */
  forgottenOutCommit: Lsn | undefined;
  /** Predicate locks: relation id -> points and ranges read. */
  readonly reads: Map<number, { points: Set<string>; ranges: Array<{ from: Uint8Array | undefined; to: Uint8Array | undefined }> }>;
  finished: boolean;
  /** Its xids (top-level and subtransactions), to find it from a version's creator or deleter. */
  readonly xids: number[];
}

const hex = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');

export class SsiTracker {
  private readonly txns = new Set<SerialTxn>();
  private readonly xidOwners = new Map<number, SerialTxn>();

  registerXid(txn: SerialTxn, xid: number): void {
    txn.xids.push(xid);
    this.xidOwners.set(xid, txn);
  }

  byXid(xid: number): SerialTxn | undefined {
    return this.xidOwners.get(xid);
  }

  begin(serial: number): SerialTxn {
    const txn: SerialTxn = { serial, snapshot: undefined, commitLsn: undefined, doomed: false, inConflicts: new Set(), outConflicts: new Set(), forgottenOutCommit: undefined, reads: new Map(), finished: false, xids: [] };
    this.txns.add(txn);
    return txn;
  }

  private relationReads(txn: SerialTxn, relation: number): { points: Set<string>; ranges: Array<{ from: Uint8Array | undefined; to: Uint8Array | undefined }> } {
    let reads = txn.reads.get(relation);
    if (reads === undefined) {
      reads = { points: new Set(), ranges: [] };
      txn.reads.set(relation, reads);
    }
    return reads;
  }

  readPoint(txn: SerialTxn, relation: number, key: Uint8Array): void {
    this.relationReads(txn, relation).points.add(hex(key));
  }

  readRange(txn: SerialTxn, relation: number, from: Uint8Array | undefined, to: Uint8Array | undefined): void {
    this.relationReads(txn, relation).ranges.push({ from, to });
  }

  /** Whether b committed before a's snapshot (then they are not concurrent: S2). */
  private committedBefore(b: SerialTxn, a: SerialTxn): boolean {
    return b.commitLsn !== undefined && a.snapshot !== undefined && b.commitLsn <= a.snapshot;
  }

  private concurrent(a: SerialTxn, b: SerialTxn): boolean {
    return a !== b && !this.committedBefore(a, b) && !this.committedBefore(b, a);
  }

  /** `writer` writes `key` of `relation`: every concurrent reader of it gets an edge reader -> writer. */
  wrote(writer: SerialTxn, relation: number, key: Uint8Array): void {
    const point = hex(key);
    for (const reader of this.txns) {
      if (reader === writer || !this.concurrent(reader, writer)) continue;
      const reads = reader.reads.get(relation);
      if (reads === undefined) continue;
      const covered =
        reads.points.has(point) ||
        reads.ranges.some((range) => (range.from === undefined || compareKeys(key, range.from) >= 0) && (range.to === undefined || compareKeys(key, range.to) < 0));
      if (covered) this.addEdge(reader, writer);
    }
  }

  /** `reader` did not see (or saw deleted) a version written by `writer`. */
  readOver(reader: SerialTxn, writer: SerialTxn): void {
    if (this.concurrent(reader, writer)) this.addEdge(reader, writer);
  }

  private addEdge(reader: SerialTxn, writer: SerialTxn): void {
    if (reader.outConflicts.has(writer)) return;
    reader.outConflicts.add(writer);
    writer.inConflicts.add(reader);
    this.checkPivot(reader);
    this.checkPivot(writer);
  }

  /** Finds a dangerous structure with `pivot` in the middle and dooms a running member (S1). */
  private checkPivot(pivot: SerialTxn): void {
    const outCommits: Lsn[] = [];
    for (const out of pivot.outConflicts) if (out.commitLsn !== undefined) outCommits.push(out.commitLsn);
    if (pivot.forgottenOutCommit !== undefined) outCommits.push(pivot.forgottenOutCommit);
    for (const outCommit of outCommits) {
      if (pivot.commitLsn !== undefined && pivot.commitLsn < outCommit) continue;
      for (const into of pivot.inConflicts) {
        if (into.commitLsn !== undefined && into.commitLsn < outCommit) continue;
        if (pivot.commitLsn === undefined && !pivot.finished) pivot.doomed = true;
        else if (into.commitLsn === undefined && !into.finished) into.doomed = true;
        return;
      }
    }
  }

  /**
   * Called before `txn` writes its commit record: true when it must abort instead (it is a
   * pivot whose T_out committed first, or was doomed). From a false answer on it counts as
   * committing and is never chosen as a victim again.
   */
  preCommit(txn: SerialTxn): boolean {
    this.checkPivot(txn);
    if (!txn.doomed) txn.finished = true;
    return txn.doomed;
  }

  /** `txn`'s commit record has LSN `lsn`: pivots that read what it wrote may now be dangerous. */
  committed(txn: SerialTxn, lsn: Lsn): void {
    txn.commitLsn = lsn;
    txn.finished = true;
    for (const pivot of txn.inConflicts) this.checkPivot(pivot);
  }

  aborted(txn: SerialTxn): void {
    txn.finished = true;
    this.forget(txn);
  }

  /**
   * Drops committed transactions no running one is, or can become, concurrent with (S2):
   * committed at or below `durable` (a snapshot taken from now on sees them) and at or
   * below every running snapshot.
   */
  prune(durable: Lsn): void {
    if (this.txns.size === 0) return;
    let oldest = durable;
    for (const txn of this.txns) if (!txn.finished && txn.snapshot !== undefined && txn.snapshot < oldest) oldest = txn.snapshot;
    for (const txn of this.txns) if (txn.finished && txn.commitLsn !== undefined && txn.commitLsn <= oldest) this.forget(txn);
  }

  private forget(txn: SerialTxn): void {
    this.txns.delete(txn);
    for (const xid of txn.xids) this.xidOwners.delete(xid);
    for (const other of txn.inConflicts) {
      other.outConflicts.delete(txn);
      // S3: the reader may be a committed pivot whose T_in has yet to read over it.
      if (txn.commitLsn !== undefined && (other.forgottenOutCommit === undefined || txn.commitLsn < other.forgottenOutCommit)) other.forgottenOutCommit = txn.commitLsn;
    }
    for (const other of txn.outConflicts) other.inConflicts.delete(txn);
  }

  get tracked(): number {
    return this.txns.size;
  }
}
