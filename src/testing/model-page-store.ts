// A page store for engine tests: keeps every page's history, serves a page only as of an
// LSN at or below its VDL, and reports a read below a page's newest redo (a stale read),
// so a cache that evicts a page whose redo is not durable yet is caught. Storage catches
// up (the VDL moves) a step after someone waits for it, as a quorum would.

import assert from 'node:assert/strict';
import type { Lsn, PageId } from '../common/index.js';
import type { PageStore } from '../engine/page-store.js';
import { applyRedo, emptyPage, FLAG_CPL, type RedoRecord } from '../page/index.js';
import type { PagePatch } from '../volume-client/index.js';

export class ModelStore implements PageStore {
  readonly history = new Map<PageId, Array<{ lsn: Lsn; bytes: Uint8Array }>>();
  lsn = 0n;
  vdl = 0n;
  reads = 0;
  readonly staleReads: string[] = [];
  /** CPLs above the VDL, in order. */
  private readonly cpls: Lsn[] = [];
  private readonly waiters: Array<{ lsn: Lsn; resolve: () => void }> = [];

  constructor(
    readonly pageCount: number,
    private readonly lal: bigint,
  ) {}

  durableLsn(): Lsn {
    return this.vdl;
  }

  async readPage(page: PageId, atLsn: Lsn): Promise<Uint8Array> {
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(atLsn <= this.vdl, `read at ${atLsn} above the VDL ${this.vdl}`);
    this.reads++;
    const versions = this.history.get(page) ?? [];
    let bytes = emptyPage();
    for (const version of versions) if (version.lsn <= atLsn) bytes = version.bytes;
    // The newest version is above the read point: a reader at atLsn gets an older page.
    if (versions.length > 0 && versions[versions.length - 1]!.lsn > atLsn) this.staleReads.push(`page ${page} at ${atLsn}`);
    return bytes.slice();
  }

  nextLsn(): Lsn {
    return this.lsn + 1n;
  }

  canAppend(records: number): boolean {
    return this.lsn + BigInt(records) - this.vdl <= this.lal;
  }

  append(patches: PagePatch[]): Lsn[] {
    // As the volume client does: a batch past the LAL is refused whole.
    if (!this.canAppend(patches.length)) throw new Error(`back_pressure: ${patches.length} records past the LAL`);
    return patches.map((patch, index) => {
      const lsn = ++this.lsn;
      const versions = this.history.get(patch.pageId) ?? [];
      const bytes = versions.length > 0 ? versions[versions.length - 1]!.bytes.slice() : emptyPage();
      const record: RedoRecord = { lsn, prevLsnOfThisPg: 0n, pageId: patch.pageId, epoch: 1 as RedoRecord['epoch'], flags: index === patches.length - 1 ? FLAG_CPL : 0, kind: patch.kind, offset: patch.offset, data: patch.data };
      applyRedo(bytes, record);
      versions.push({ lsn, bytes });
      this.history.set(patch.pageId, versions);
      if (index === patches.length - 1) this.cpls.push(lsn);
      return lsn;
    });
  }

  /** Storage catches up a little later, as a quorum would. */
  waitDurable(lsn: Lsn): Promise<void> {
    if (lsn <= this.vdl) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ lsn, resolve });
      setImmediate(() => this.makeDurable(lsn));
    });
  }

  /** As a volume's VDL, the durable point only ever lands on a CPL: the end of the mini-transaction holding `lsn`. */
  makeDurable(lsn: Lsn): void {
    if (lsn > this.lsn) lsn = this.lsn;
    const cpl = this.cpls.find((each) => each >= lsn) ?? this.lsn;
    if (cpl > this.vdl) this.vdl = cpl;
    while (this.cpls.length > 0 && this.cpls[0]! <= this.vdl) this.cpls.shift();
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.lsn <= this.vdl) waiter.resolve();
      else this.waiters.push(waiter);
    }
  }

  newest(page: PageId): Uint8Array {
    const versions = this.history.get(page) ?? [];
    return versions.length > 0 ? versions[versions.length - 1]!.bytes : emptyPage();
  }
}
