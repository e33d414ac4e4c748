// The writer's buffer cache: 8 KiB pages read from the volume, bounded by bytes, never
// written back. Pages change only through mini-transactions (mini-transaction.ts), which
// ship redo; the cache just remembers, per page, the LSN of the newest redo applied to it.
//
// Invariants:
//  C1. A page is evicted only when it is unpinned, unlatched and its newest redo is durable
//      (pageLsn <= VDL). So a page that is not cached has no redo above the VDL, and a miss
//      that reads it at the current VDL gets its newest version, never a stale one.
//  C2. Two loads of one page never run at once: later callers wait for the first.
//  C3. Cached bytes, counting loads in flight, never go above `bytesMax` while some page can
//      be evicted; when none can (all pinned, or their redo not yet durable), a load first
//      waits for the VDL to cover the oldest unpinned page, and only pinned pages can push
//      the cache over its bound.
//  C4. On a reader, a record reaches the cache only once the read point covers it, and
//      reaches every page cached or being loaded: a load that started at an older read
//      point gets the records it missed, and a load that straddles a re-attach
//      (invalidate) is read again, so no cached page is older or newer than the read point.
//
// Frame states: loading -> cached (pins >= 0, latched by at most one writer) -> evicted.

import { assert, PAGE_BYTES, type Lsn, type PageId } from '../common/index.js';
import { applyRedo, type RedoRecord } from '../page/index.js';
import type { PageStore } from './page-store.js';

export interface BufferCacheOptions {
  /** Upper bound of cached page bytes (see C3). */
  bytesMax: number;
}

export interface Frame {
  readonly pageId: PageId;
  /** The page: read-only outside MiniTransaction.commit(). */
  readonly bytes: Uint8Array;
  /** LSN of the newest redo in `bytes` (the read point for a page just loaded). */
  pageLsn: Lsn;
  pins: number;
  /** The mini-transaction holding the page for writing, and those waiting for it. */
  latchedBy: object | undefined;
  latchWaiters: Array<() => void>;
  /** Hit since eviction last passed it: it gets a second chance (CLOCK). */
  referenced: boolean;
}

export interface BufferCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  /** Times a load had to wait for the VDL before it could evict (C3). */
  durabilityWaits: number;
}

interface Loading {
  waiters: number;
  promise: Promise<Frame>;
}

export class BufferCache {
  /**
   * The clock (second chance, an approximation of LRU): frames in the order eviction visits
   * them. A hit only marks a frame referenced; eviction moves a referenced frame to the end
   * (clearing the mark) instead of evicting it. A hit costs no reordering, and nothing at
   * all moves while the working set fits.
   */
  private readonly frames = new Map<PageId, Frame>();
  private readonly loading = new Map<PageId, Loading>();
  /** Loads that made room and have not yet inserted their frame. */
  private reserved = 0;
  readonly stats: BufferCacheStats = { hits: 0, misses: 0, evictions: 0, durabilityWaits: 0 };
  /** The CPL of the last mini-transaction committed through this cache (what to wait for to make it all durable). */
  lastLsn: Lsn = 0n;
  /** Readers: records for pages being loaded, applied when the load lands (C4). */
  private readonly missedByLoads = new Map<PageId, RedoRecord[]>();
  private generation = 0;
  /** The LSN each load in flight reads at: storage must keep it readable (see oldestLoadLsn). */
  private readonly loadPoints = new Map<PageId, Lsn>();

  constructor(
    readonly store: PageStore,
    private readonly options: BufferCacheOptions,
  ) {
    assert(options.bytesMax >= PAGE_BYTES, 'the buffer cache must hold at least one page');
  }

  get cachedBytes(): number {
    return this.frames.size * PAGE_BYTES;
  }

  private get committedBytes(): number {
    return (this.frames.size + this.reserved) * PAGE_BYTES;
  }

  get bytesMax(): number {
    return this.options.bytesMax;
  }

  /** The cached frame of a page, if any, without pinning or loading it. */
  peek(pageId: PageId): Frame | undefined {
    return this.frames.get(pageId);
  }

  /**
   * A cached page's bytes for a read that ends before the caller yields (no pin needed:
   * nothing can evict or change it meanwhile), counted as a hit; undefined on a miss.
   */
  hit(pageId: PageId): Uint8Array | undefined {
    const frame = this.frames.get(pageId);
    if (frame === undefined) return undefined;
    this.stats.hits++;
    this.touch(frame);
    return frame.bytes;
  }

  /** Pins a page (loading it on a miss); every pin needs one unpin. */
  pin(pageId: PageId): Promise<Frame> {
    if (!Number.isInteger(pageId) || pageId < 0 || pageId >= this.store.pageCount) {
      return Promise.reject(new RangeError(`page ${pageId} is outside the volume (0..${this.store.pageCount - 1})`));
    }
    const frame = this.frames.get(pageId);
    if (frame !== undefined) {
      this.stats.hits++;
      frame.pins++;
      this.touch(frame);
      return Promise.resolve(frame);
    }
    let loading = this.loading.get(pageId);
    if (loading === undefined) {
      this.stats.misses++;
      const entry: Loading = { waiters: 0, promise: Promise.resolve(undefined as unknown as Frame) };
      entry.promise = this.load(pageId, entry);
      this.loading.set(pageId, entry);
      loading = entry;
    }
    loading.waiters++;
    return loading.promise;
  }

  unpin(frame: Frame): void {
    assert(frame.pins > 0, `page ${frame.pageId} unpinned more often than pinned`);
    frame.pins--;
    if (frame.pins === 0) this.evictWhileOver(0);
  }

  private async load(pageId: PageId, entry: Loading): Promise<Frame> {
    let reserved = false;
    try {
      await this.makeRoom();
      this.reserved++;
      reserved = true;
      let atLsn: Lsn;
      let bytes: Uint8Array;
      for (;;) {
        const generation = this.generation;
        atLsn = this.store.durableLsn();
        this.missedByLoads.set(pageId, []);
        this.loadPoints.set(pageId, atLsn);
        bytes = await this.store.readPage(pageId, atLsn);
        if (generation === this.generation) break;
      }
      assert(bytes.length === PAGE_BYTES, `page ${pageId} came back with ${bytes.length} bytes`);
      for (const record of this.missedByLoads.get(pageId) ?? []) {
        if (record.lsn <= atLsn) continue;
        applyRedo(bytes, record);
        atLsn = record.lsn;
      }
      // Every caller that joined this load holds a pin from the moment the frame exists,
      // so nothing can evict it before their continuations run.
      const frame: Frame = { pageId, bytes, pageLsn: atLsn, pins: entry.waiters, latchedBy: undefined, latchWaiters: [], referenced: false };
      this.frames.set(pageId, frame);
      return frame;
    } finally {
      if (reserved) this.reserved--;
      this.loading.delete(pageId);
      this.missedByLoads.delete(pageId);
      this.loadPoints.delete(pageId);
      this.evictWhileOver(0);
    }
  }

  /** Makes room for one more page (C3): evicts, or waits for the VDL when that is what blocks eviction. */
  private async makeRoom(): Promise<void> {
    for (;;) {
      this.evictWhileOver(PAGE_BYTES);
      if (this.committedBytes + PAGE_BYTES <= this.options.bytesMax) return;
      let oldestUnpinned: Lsn | undefined;
      for (const frame of this.frames.values()) {
        if (frame.pins === 0 && frame.latchedBy === undefined && (oldestUnpinned === undefined || frame.pageLsn < oldestUnpinned)) oldestUnpinned = frame.pageLsn;
      }
      // Everything is pinned: the working set is larger than the cache; go over the bound.
      if (oldestUnpinned === undefined) return;
      this.stats.durabilityWaits++;
      await this.store.waitDurable(oldestUnpinned);
    }
  }

  /** Evicts evictable frames in clock order (referenced ones get a second chance) while more than bytesMax - spare is cached (C1). */
  private evictWhileOver(spare: number): void {
    if (this.committedBytes + spare <= this.options.bytesMax) return;
    const durable = this.store.durableLsn();
    // A referenced frame goes to the end unmarked, so the walk meets it once more at most.
    for (const frame of this.frames.values()) {
      if (this.committedBytes + spare <= this.options.bytesMax) return;
      if (frame.pins > 0 || frame.latchedBy !== undefined || frame.pageLsn > durable) continue;
      this.frames.delete(frame.pageId);
      if (frame.referenced) {
        frame.referenced = false;
        this.frames.set(frame.pageId, frame);
        continue;
      }
      this.stats.evictions++;
    }
  }

  /**
   * The oldest LSN a load in flight reads at, if any: the retention point (PGMRPL) sent to
   * storage must not pass it, or a slow read (a dead node's timeout) finds its version gone.
   */
  oldestLoadLsn(): Lsn | undefined {
    let oldest: Lsn | undefined;
    for (const lsn of this.loadPoints.values()) if (oldest === undefined || lsn < oldest) oldest = lsn;
    return oldest;
  }

  /**
   * Readers: applies a record at or below the read point to its page if cached or being
   * loaded, and drops it otherwise (the page will be read at a later read point) (C4).
   */
  applyRedo(record: RedoRecord): void {
    const frame = this.frames.get(record.pageId);
    if (frame !== undefined) {
      if (record.lsn <= frame.pageLsn) return;
      applyRedo(frame.bytes, record);
      frame.pageLsn = record.lsn;
      return;
    }
    this.missedByLoads.get(record.pageId)?.push(record);
  }

  /**
   * Readers: forgets every cached page (the reader re-attached and may have missed
   * records). Pages pinned now stay valid for their holders until unpinned.
   */
  invalidate(): void {
    this.generation++;
    this.frames.clear();
  }

  /** A hit: the frame gets a second chance when eviction next passes it. */
  private touch(frame: Frame): void {
    frame.referenced = true;
  }
}
