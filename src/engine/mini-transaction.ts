// A mini-transaction: the unit in which pages change. It latches the pages it writes,
// changes private copies of them, and at commit ships the difference as redo records (the
// last one a CPL) and installs the copies, all in one synchronous step. So no one ever sees a
// half-made change, and recovery, which truncates to the last CPL, keeps a structural
// change (a B+tree split over three pages) whole or not at all.
//
// Invariants:
//  M1. Pages written by an open mini-transaction are latched by it: a second writer of the
//      same page waits (acquire latches in a fixed order, e.g. top-down, to avoid cycles).
//  M2. Cached bytes change only in commit(), right after the redo that describes the change
//      was appended, and the frame's pageLsn becomes that redo's LSN.
//  M3. The redo is the difference between each latched page before and after: one record
//      per changed page (a Write for one range, a WriteMany for several, ranges closer than
//      4 bytes merged, an Image when that is smaller), after an Init record for a page made
//      anew. A record costs its bytes plus 36; a WriteMany range, its bytes plus 4.
//  M4. A stamp (stampLsn) holds, once committed, the LSN of the mini-transaction's first record.
//
// States: open --commit()--> committed; open --abort()--> aborted (private copies dropped).

import { assert, PAGE_BYTES, type Lsn, type PageId } from '../common/index.js';
import { emptyPage, encodeWriteMany, RedoKind } from '../page/index.js';
import type { PagePatch } from '../volume-client/index.js';
import type { BufferCache, Frame } from './buffer-cache.js';

const ZERO_PAGE = emptyPage();

interface Held {
  frame: Frame;
  /** Private copy once the page is latched for writing; callers may change it freely. */
  copy: Uint8Array | undefined;
  /** init() was called: the redo starts with an Init record and diffs from a zero page. */
  initialized: boolean;
}

/** Changed ranges closer than this are shipped as one range (a range in a WriteMany record costs 4 bytes). */
const MERGE_GAP_BYTES = 4;
/** The diff compares pages 32 bits at a time. */
const PAGE_WORDS = PAGE_BYTES / 4;

export class MiniTransaction {
  private readonly held = new Map<PageId, Held>();
  /** Places that receive the LSN of this mini-transaction's first record at commit (M4). */
  private readonly stamps: Array<{ pageId: PageId; offset: number }> = [];
  private state: 'open' | 'committed' | 'aborted' = 'open';
  /** After a commit that wrote: the LSN of its first record (what stamps hold). */
  firstLsn: Lsn | undefined;

  constructor(private readonly cache: BufferCache) {}

  /** The page as this mini-transaction sees it (its own writes included). Do not modify it. */
  async read(pageId: PageId): Promise<Uint8Array> {
    const held = await this.hold(pageId);
    return held.copy ?? held.frame.bytes;
  }

  /**
   * Latches the page for writing (waiting for another writer to finish) and returns this
   * mini-transaction's private copy, which the caller may change freely until commit.
   */
  async latch(pageId: PageId): Promise<Uint8Array> {
    const held = await this.hold(pageId);
    if (held.copy === undefined) {
      if (held.frame.latchedBy !== this) await this.acquireLatch(held.frame);
      // Nobody else changes a page while we hold its latch: the copy is what we latched.
      held.copy = held.frame.bytes.slice();
    }
    return held.copy;
  }

  /**
   * Latches the page as latch() does, but makes no copy yet (the internal pages on the way
   * to a leaf: most are only read, and a copy costs a page and a page-sized diff at
   * commit). latch() of the same page later makes the copy, before anything is changed.
   * Returns the page as this mini-transaction sees it; do not modify it.
   */
  async latchWithoutCopy(pageId: PageId): Promise<Uint8Array> {
    const held = await this.hold(pageId);
    if (held.copy === undefined && held.frame.latchedBy !== this) await this.acquireLatch(held.frame);
    return held.copy ?? held.frame.bytes;
  }

  private async acquireLatch(frame: Frame): Promise<void> {
    while (frame.latchedBy !== undefined && frame.latchedBy !== this) await new Promise<void>((resolve) => frame.latchWaiters.push(resolve));
    // Aborted while waiting: hand the wake-up on, so the next waiter is not stranded.
    if (this.state !== 'open') frame.latchWaiters.shift()?.();
    this.assertOpen();
    frame.latchedBy = this;
  }

  /** Writes `data` at `offset` of a page latched by this mini-transaction. */
  write(pageId: PageId, offset: number, data: Uint8Array): void {
    const copy = this.latched(pageId);
    assert(Number.isInteger(offset) && offset >= 0 && offset + data.length <= PAGE_BYTES, `write of ${data.length} bytes at ${offset} is outside the page`);
    copy.set(data, offset);
  }

  /** Zeroes a page latched by this mini-transaction (a new page starts here). */
  init(pageId: PageId): void {
    this.latched(pageId).fill(0);
    this.held.get(pageId)!.initialized = true;
  }

  /**
   * Asks commit() to write, as a little-endian u64 at `offset` of a latched page, the LSN
   * its first redo record gets (M4): a commit record that carries its own LSN.
   */
  stampLsn(pageId: PageId, offset: number): void {
    this.latched(pageId);
    assert(Number.isInteger(offset) && offset >= 0 && offset + 8 <= PAGE_BYTES, `stamp at ${offset} is outside the page`);
    this.stamps.push({ pageId, offset });
  }

  /** The redo this mini-transaction would ship now (M3). */
  private patches(): PagePatch[] {
    const patches: PagePatch[] = [];
    for (const [pageId, held] of this.held) {
      if (held.copy === undefined) continue;
      const copy = held.copy;
      const base = held.initialized ? ZERO_PAGE : held.frame.bytes;
      if (held.initialized) patches.push({ pageId, kind: RedoKind.Init, offset: 0, data: new Uint8Array(0) });
      const ranges: Array<{ offset: number; data: Uint8Array }> = [];
      let bytes = 0;
      let at = 0;
      // Skip equal 32-bit words in a JIT-compiled loop (most of a page is unchanged); pages
      // are 4-byte aligned in practice, unaligned ones go byte by byte.
      const aligned = copy.byteOffset % 4 === 0 && base.byteOffset % 4 === 0;
      const copyWords = aligned ? new Int32Array(copy.buffer, copy.byteOffset, PAGE_WORDS) : undefined;
      const baseWords = aligned ? new Int32Array(base.buffer, base.byteOffset, PAGE_WORDS) : undefined;
      while (at < PAGE_BYTES) {
        if (copyWords !== undefined && (at & 3) === 0) {
          let word = at >> 2;
          while (word < PAGE_WORDS && copyWords[word] === baseWords![word]) word++;
          at = word << 2;
          if (at >= PAGE_BYTES) break;
        }
        if (copy[at] === base[at]) {
          at++;
          continue;
        }
        const start = at;
        let end = at + 1;
        for (let probe = end; probe < PAGE_BYTES && probe - end < MERGE_GAP_BYTES; probe++) {
          if (copy[probe] !== base[probe]) end = probe + 1;
        }
        ranges.push({ offset: start, data: copy.slice(start, end) });
        bytes += 4 + end - start;
        at = end;
      }
      if (ranges.length === 0) continue;
      if (bytes >= PAGE_BYTES) patches.push({ pageId, kind: RedoKind.Image, offset: 0, data: copy.slice() });
      else if (ranges.length === 1) patches.push({ pageId, kind: RedoKind.Write, offset: ranges[0]!.offset, data: ranges[0]!.data });
      else patches.push({ pageId, kind: RedoKind.WriteMany, offset: 0, data: encodeWriteMany(ranges) });
    }
    return patches;
  }

  /**
   * Ships the redo and installs the pages (M2). Resolves with the CPL's LSN, or undefined
   * when nothing was written. Waits first while the writer is too far ahead of the VDL.
   */
  async commit(): Promise<Lsn | undefined> {
    this.assertOpen();
    const store = this.cache.store;
    let patches: PagePatch[];
    // Too far ahead of the VDL (LAL): wait for storage to catch up, one LSN at a time. From
    // the last check to append() nothing awaits, so the stamped LSN is the one assigned.
    for (;;) {
      for (const { pageId, offset } of this.stamps) new DataView(this.latched(pageId).buffer).setBigUint64(offset, store.nextLsn(), true);
      patches = this.patches();
      if (patches.length === 0 || store.canAppend(patches.length)) break;
      if (store.durableLsn() >= this.cache.lastLsn) {
        this.abort();
        throw new RangeError(`a mini-transaction of ${patches.length} redo records is larger than the writer may run ahead of the VDL`);
      }
      await store.waitDurable(store.durableLsn() + 1n);
      this.assertOpen();
    }
    if (patches.length === 0) {
      this.finish('committed');
      return undefined;
    }
    const lsns = store.append(patches);
    assert(lsns.length === patches.length, 'one LSN per patch');
    assert(this.stamps.length === 0 || lsns[0] === new DataView(this.held.get(this.stamps[0]!.pageId)!.copy!.buffer).getBigUint64(this.stamps[0]!.offset, true), 'stamped LSN is the first record\'s');
    for (const [index, patch] of patches.entries()) {
      const held = this.held.get(patch.pageId)!;
      held.frame.pageLsn = lsns[index]!;
    }
    for (const held of this.held.values()) if (held.copy !== undefined) held.frame.bytes.set(held.copy);
    this.cache.lastLsn = lsns[lsns.length - 1]!;
    this.firstLsn = lsns[0]!;
    this.finish('committed');
    return lsns[lsns.length - 1];
  }

  /**
   * Unpins a page this mini-transaction only read (readers move along and let go, so a
   * scan pins one leaf at a time). Bytes obtained from it must not be used afterwards.
   */
  release(pageId: PageId): void {
    const held = this.held.get(pageId);
    if (held === undefined || held.copy !== undefined || held.frame.latchedBy === this) return;
    this.held.delete(pageId);
    this.cache.unpin(held.frame);
  }

  /** Drops every change and releases pins and latches. */
  abort(): void {
    if (this.state !== 'open') return;
    this.finish('aborted');
  }

  private async hold(pageId: PageId): Promise<Held> {
    this.assertOpen();
    const existing = this.held.get(pageId);
    if (existing !== undefined) return existing;
    const frame = await this.cache.pin(pageId);
    if (this.state !== 'open' || this.held.has(pageId)) {
      // Aborted meanwhile, or a concurrent call of ours pinned it first.
      this.cache.unpin(frame);
      this.assertOpen();
      return this.held.get(pageId)!;
    }
    const held: Held = { frame, copy: undefined, initialized: false };
    this.held.set(pageId, held);
    return held;
  }

  private latched(pageId: PageId): Uint8Array {
    this.assertOpen();
    const held = this.held.get(pageId);
    assert(held?.copy !== undefined, `page ${pageId} is written without being latched by this mini-transaction`);
    return held.copy;
  }

  private finish(state: 'committed' | 'aborted'): void {
    this.state = state;
    for (const held of this.held.values()) {
      const frame = held.frame;
      if (frame.latchedBy === this) {
        frame.latchedBy = undefined;
        frame.latchWaiters.shift()?.();
      }
      this.cache.unpin(frame);
    }
    this.held.clear();
  }

  private assertOpen(): void {
    assert(this.state === 'open', `mini-transaction is ${this.state}`);
  }
}
