// Transaction ids and commit records. A transaction id (xid) names the creator or deleter
// of a tuple version; a commit writes, in one mini-transaction, an entry xid -> commit LSN
// for the transaction and each of its committed subtransactions into the status tree, and
// that mini-transaction's first record carries its own LSN (M4): the commit timestamp.
//
// Invariants:
//  X1. An xid is handed out only below the xid limit stored in the meta page, and the limit
//      is raised (in steps) by a mini-transaction appended before any redo that names a new
//      xid, so after a crash the reopened writer starts at the limit and never reuses an xid
//      whose versions may be on the volume.
//  X2. A transaction is committed iff its status entry is on the volume; its commit LSN is
//      the entry's value. An xid below the limit with no entry, and not running, is aborted:
//      in-flight transactions of a crashed writer need no undo pass.
//  X3. A commit LSN is stamped once and never changes.

import { pageId, type Lsn } from '../common/index.js';
import type { BufferCache } from './buffer-cache.js';
import { BTree, readMetaSlot, writeMetaSlot } from './btree.js';
import { MiniTransaction } from './mini-transaction.js';

export type Xid = number;

/** The xid of versions made when the volume was formatted: committed at LSN 0. */
export const BOOTSTRAP_XID: Xid = 1;
export const FIRST_XID: Xid = 2;
const XID_STEP = 4096;
const XID_MAX = 0xffff_fff0;

export const META_XID_LIMIT = 0;
export const META_STATUS_ROOT = 1;

export function xidKey(xid: Xid): Uint8Array {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, xid);
  return key;
}

export type XidState = { state: 'committed'; lsn: Lsn } | { state: 'running' } | { state: 'aborted' };
const COMMITTED_AT_BOOTSTRAP: XidState = Object.freeze({ state: 'committed', lsn: 0n });
const RUNNING: XidState = Object.freeze({ state: 'running' });
const ABORTED: XidState = Object.freeze({ state: 'aborted' });

export class XactStatus {
  private nextXid: Xid;
  private limit: Xid;
  private raising: Promise<void> | undefined;
  /** Commit LSNs known (committed since open, or read from the tree). */
  private readonly committed = new Map<Xid, Lsn>();
  private readonly aborted = new Set<Xid>();
  readonly running = new Set<Xid>();

  private constructor(
    private readonly cache: BufferCache,
    private readonly tree: BTree,
    limit: Xid,
    /** A reader cannot tell aborted from running, and must not remember "not committed". */
    private readonly reader: boolean,
  ) {
    this.limit = limit;
    this.nextXid = limit; // X1: xids below the stored limit may have been used before a crash
  }

  /** Creates the status tree on a freshly formatted volume (inside bootstrap). */
  static async format(cache: BufferCache): Promise<void> {
    const tree = await BTree.create(cache);
    const mtr = new MiniTransaction(cache);
    await writeMetaSlot(mtr, META_STATUS_ROOT, tree.root);
    await writeMetaSlot(mtr, META_XID_LIMIT, FIRST_XID);
    await mtr.commit();
  }

  static async open(cache: BufferCache, options: { reader?: boolean } = {}): Promise<XactStatus> {
    const mtr = new MiniTransaction(cache);
    try {
      const root = await readMetaSlot(mtr, META_STATUS_ROOT);
      const limit = await readMetaSlot(mtr, META_XID_LIMIT);
      return new XactStatus(cache, BTree.open(cache, pageId(root)), limit, options.reader ?? false);
    } finally {
      await mtr.commit();
    }
  }

  /** A new xid, marked running (X1). */
  async allocate(): Promise<Xid> {
    while (this.nextXid >= this.limit) {
      this.raising ??= this.raise().finally(() => (this.raising = undefined));
      await this.raising;
    }
    const xid = this.nextXid++;
    this.running.add(xid);
    return xid;
  }

  private async raise(): Promise<void> {
    if (this.limit + XID_STEP > XID_MAX) throw new RangeError('transaction ids are exhausted (wraparound is not supported yet)');
    const mtr = new MiniTransaction(this.cache);
    try {
      await writeMetaSlot(mtr, META_XID_LIMIT, this.limit + XID_STEP);
      await mtr.commit();
      this.limit += XID_STEP;
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  /**
   * Writes the commit record for `xids` (a transaction and its live subtransactions) in one
   * mini-transaction and returns its LSN, the commit timestamp (X2, X3), and its CPL, which
   * is what the caller waits for to be durable (a VDL is always a CPL).
   */
  async commit(xids: readonly Xid[]): Promise<{ lsn: Lsn; cpl: Lsn }> {
    const mtr = new MiniTransaction(this.cache);
    try {
      const placeholder = new Uint8Array(8);
      for (const xid of xids) await this.tree.putWithin(mtr, xidKey(xid), placeholder);
      for (const xid of xids) {
        const at = (await this.tree.valueLocation(mtr, xidKey(xid)))!;
        mtr.stampLsn(at.page, at.offset);
      }
      const cpl = (await mtr.commit())!;
      const lsn = mtr.firstLsn!;
      for (const xid of xids) {
        this.running.delete(xid);
        this.committed.set(xid, lsn);
      }
      return { lsn, cpl };
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  /** Marks xids aborted (in memory: X2 makes an absent entry mean aborted). */
  abort(xids: Iterable<Xid>): void {
    for (const xid of xids) {
      this.running.delete(xid);
      this.aborted.add(xid);
    }
  }

  /** The state of an xid as the writer knows it now. */
  /** The state of a transaction when memory knows it (no status page to read); else undefined. */
  known(xid: Xid): XidState | undefined {
    if (xid === BOOTSTRAP_XID) return COMMITTED_AT_BOOTSTRAP;
    const known = this.committed.get(xid);
    if (known !== undefined) return { state: 'committed', lsn: known };
    if (this.running.has(xid)) return RUNNING;
    if (this.aborted.has(xid)) return ABORTED;
    return undefined;
  }

  async state(xid: Xid): Promise<XidState> {
    const known = this.known(xid);
    if (known !== undefined) return known;
    const lsn = await this.lookup(xid);
    if (lsn !== undefined) {
      this.committed.set(xid, lsn);
      return { state: 'committed', lsn };
    }
    if (this.running.has(xid) || this.reader) return { state: 'running' };
    this.aborted.add(xid);
    return { state: 'aborted' };
  }

  private async lookup(xid: Xid): Promise<Lsn | undefined> {
    const value = await this.tree.get(xidKey(xid));
    return value === undefined ? undefined : new DataView(value.buffer, value.byteOffset).getBigUint64(0, true);
  }

  /** Xids handed out so far are below this. */
  get horizonXid(): Xid {
    return this.nextXid;
  }
}
