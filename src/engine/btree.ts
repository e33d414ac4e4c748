// B+trees over slotted pages, with B-link right pointers, overflow chains for large values,
// and a page allocator in the volume's meta page (page 0).
//
// Writers run each change in one mini-transaction and latch top-down from the root, so
// writers of one tree take turns at the root and a split (leaf, parents, maybe a new root
// level) commits whole. Readers latch nothing: each page read is a committed image, and
// since a split only ever moves keys to a new right sibling and lowers the old page's
// high key, a reader that finds its key at or above a page's high key follows the right
// pointer (Lehman and Yao's B-link rule). The root's page id never changes: a root split
// moves the old root's content to a new page and makes the root an internal node over it.
//
// Invariants:
//  B1. Keys within a node are strictly increasing; every key of a node is below its high key.
//  B2. An internal node's child for slot i holds keys in [key i, key i+1); leftmost child
//      holds keys below key 0. Following right pointers from any node of a level visits
//      every key of that level in order.
//  B3. A value larger than an inline cell allows lives in a chain of overflow pages that
//      belongs to exactly one cell; replacing or deleting the value frees the chain.
//  B4. A page is either allocated to one tree (or chain) or on the free list, never both.
//
//  B5. A leaf that a delete empties is unlinked in the same mini-transaction: its left
//      sibling under the same parent takes its high key and right pointer, the parent
//      drops its separator. The empty page keeps its high key and right pointer, so a
//      reader already on its way there finds nothing and moves right; it is retired, and
//      freed only once no snapshot in the cluster predates the unlink (recycleRetiredPages),
//      so no reader can still hold its id when it is reused. As in PostgreSQL's nbtree,
//      only empty pages are removed: half-full neighbours are not merged. A leftmost child
//      stays (even empty), and internal nodes are not removed.

import { assert, PAGE_BYTES, pageId, type Lsn, type PageId } from '../common/index.js';
import type { BufferCache } from './buffer-cache.js';
import { MiniTransaction } from './mini-transaction.js';
import * as node from './slotted-page.js';
import { PageType } from './slotted-page.js';

const META_PAGE = pageId(0);
const META_MAGIC = 0x42524c31; // "BRL1"
const OVERFLOW_HEADER_BYTES = 16;
const OVERFLOW_DATA_BYTES = PAGE_BYTES - OVERFLOW_HEADER_BYTES;

export class KeyTooLarge extends Error {}

const u32 = (page: Uint8Array, at: number): number => new DataView(page.buffer, page.byteOffset).getUint32(at, true);
const setU32 = (page: Uint8Array, at: number, value: number): void => new DataView(page.buffer, page.byteOffset).setUint32(at, value, true);

/**
 * Makes page 0 the meta page of a fresh volume: pages from 1 are free to hand out. Refuses a
 * volume already formatted, so that no page is ever handed out twice (B4).
 */
export async function formatVolume(cache: BufferCache): Promise<void> {
  const mtr = new MiniTransaction(cache);
  const meta = await mtr.latch(META_PAGE);
  if (u32(meta, 0) === META_MAGIC) {
    mtr.abort();
    throw new Error('the volume is already formatted');
  }
  meta.fill(0);
  setU32(meta, 0, META_MAGIC);
  setU32(meta, 4, 1);
  await mtr.commit();
}

/** Whether page 0 is already a meta page (the volume holds a database). */
export async function isFormatted(cache: BufferCache): Promise<boolean> {
  const mtr = new MiniTransaction(cache);
  try {
    return u32(await mtr.read(META_PAGE), 0) === META_MAGIC;
  } finally {
    await mtr.commit();
  }
}

/** Allocates a page inside `mtr` (latching the meta page): from the free list, else the next never-used page. */
export async function allocatePage(mtr: MiniTransaction, pageCount: number): Promise<PageId> {
  const meta = await mtr.latch(META_PAGE);
  assert(u32(meta, 0) === META_MAGIC, 'page 0 is not a meta page: format the volume first (formatVolume)');
  const freeHead = u32(meta, 8);
  if (freeHead !== 0) {
    const page = await mtr.latch(pageId(freeHead));
    setU32(meta, 8, u32(page, 4));
    mtr.init(pageId(freeHead));
    return pageId(freeHead);
  }
  const next = u32(meta, 4);
  if (next >= pageCount) throw new RangeError(`the volume is full (${pageCount} pages)`);
  setU32(meta, 4, next + 1);
  await mtr.latch(pageId(next));
  mtr.init(pageId(next));
  return pageId(next);
}

/** Slots in the meta page (u32 each) that name the roots of system structures and counters. */
const META_SLOTS_AT = 64;
export const META_SLOT_COUNT = 64;

function slotAt(slot: number): number {
  assert(Number.isInteger(slot) && slot >= 0 && slot < META_SLOT_COUNT, `meta slot ${slot} does not exist`);
  return META_SLOTS_AT + slot * 4;
}

/** A meta page slot, read through `mtr`. */
export async function readMetaSlot(mtr: MiniTransaction, slot: number): Promise<number> {
  const meta = await mtr.read(META_PAGE);
  assert(u32(meta, 0) === META_MAGIC, 'page 0 is not a meta page: format the volume first (formatVolume)');
  return u32(meta, slotAt(slot));
}

/** Sets a meta page slot inside `mtr`. */
export async function writeMetaSlot(mtr: MiniTransaction, slot: number, value: number): Promise<void> {
  const meta = await mtr.latch(META_PAGE);
  setU32(meta, slotAt(slot), value);
}

/** Puts a page on the free list (B4). */
export async function freePage(mtr: MiniTransaction, page: PageId): Promise<void> {
  const meta = await mtr.latch(META_PAGE);
  const bytes = await mtr.latch(page);
  bytes.fill(0);
  bytes[0] = PageType.Free;
  setU32(bytes, 4, u32(meta, 8));
  setU32(meta, 8, page);
}

/** Pages unlinked from trees (B5), per cache, with the LSN of the unlink. */
const retired = new WeakMap<BufferCache, Array<{ page: PageId; lsn: Lsn }>>();

function retire(cache: BufferCache, page: PageId, lsn: Lsn): void {
  let list = retired.get(cache);
  if (list === undefined) {
    list = [];
    retired.set(cache, list);
  }
  list.push({ page, lsn });
}

/** Pages retired and not yet freed. */
export function retiredPageCount(cache: BufferCache): number {
  return retired.get(cache)?.length ?? 0;
}

/**
 * Frees retired pages whose unlink is below `horizon` (the oldest snapshot in use anywhere:
 * every operation still running began after the unlink, so none holds their ids). Returns
 * how many were freed. Not durable across a writer crash: pages retired then leak.
 */
export async function recycleRetiredPages(cache: BufferCache, horizon: Lsn): Promise<number> {
  const list = retired.get(cache) ?? [];
  let freed = 0;
  while (list.length > 0 && list[0]!.lsn < horizon) {
    const { page } = list.shift()!;
    const mtr = new MiniTransaction(cache);
    try {
      await freePage(mtr, page);
      await mtr.commit();
      freed++;
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }
  return freed;
}

/** What BTree.putMany puts in one mini-transaction at most. */
const PUT_MANY_ENTRIES = 64;
/** Share of a leaf that ascending inserts fill before moving on (nbtree's leaf fillfactor). */
export const LEAF_FILL_FACTOR = 0.9;
/** Removals per mini-transaction in deleteMany. */
const DELETE_MANY_ENTRIES = 64;
const PUT_MANY_BYTES = 256 * 1024;

export class BTree {
  private constructor(
    private readonly cache: BufferCache,
    readonly root: PageId,
  ) {}

  static async create(cache: BufferCache): Promise<BTree> {
    const mtr = new MiniTransaction(cache);
    try {
      const root = await allocatePage(mtr, cache.store.pageCount);
      node.initNode(await mtr.latch(root), PageType.Leaf, root);
      await mtr.commit();
      return new BTree(cache, root);
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  static open(cache: BufferCache, root: PageId): BTree {
    return new BTree(cache, root);
  }

  // ---------------------------------------------------------------- reads

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    for (;;) {
      const mtr = new MiniTransaction(this.cache);
      try {
        const found = await this.seek(mtr, key, (page, bytes) => {
          const { index, found } = node.search(bytes, key);
          if (!found) return undefined;
          const value = node.leafValue(bytes, index);
          return { page, leafLsn: this.cache.peek(page)!.pageLsn, value: 'inline' in value ? { inline: value.inline.slice() } : value };
        });
        if (found === undefined) return undefined;
        if ('inline' in found.value) return found.value.inline;
        const value = await this.readChain(mtr, found.value.firstPage, found.value.totalBytes);
        // Optimistic: a chain is freed (and maybe reused) only by a change that rewrites its
        // leaf, so an unchanged leaf means the chain read was the value's.
        if (this.cache.peek(found.page)?.pageLsn === found.leafLsn) return value;
      } finally {
        await mtr.commit();
      }
    }
  }

  /**
   * Entries with from <= key < to, in key order, read in one synchronous step when every
   * page on the way is cached and every value inline; undefined otherwise (use scan()).
   * Pages change only inside a mini-transaction's synchronous commit (M2), so a read that
   * never yields sees each page whole, as scan() does, without pins or promises. For the
   * short ranges of point lookups (a row's versions).
   */
  rangeIfCached(from: Uint8Array, to: Uint8Array): Array<[Uint8Array, Uint8Array]> | undefined {
    return this.visitIfCached(from, to, copyEntry);
  }

  /**
   * rangeIfCached, with each entry made by `make` from where its key and value lie in the
   * page (so a caller copies out only what it keeps); entries `make` returns null for are
   * left out.
   */
  visitIfCached<T>(from: Uint8Array, to: Uint8Array, make: node.CellVisitor<T | null>): T[] | undefined {
    const entries: T[] = [];
    let page: number = this.root;
    let key = from;
    for (;;) {
      const bytes = this.cache.hit(pageId(page));
      if (bytes === undefined) return undefined;
      if (node.atOrAboveHighKey(bytes, key)) {
        page = node.rightSibling(bytes);
        continue;
      }
      const type = node.pageType(bytes);
      if (type === PageType.Internal) {
        page = this.childFor(bytes, key);
        continue;
      }
      if (type !== PageType.Leaf) return undefined;
      const count = node.slotCount(bytes);
      for (let index = node.lowerBound(bytes, key); index < count; index++) {
        if (node.compareCellKey(bytes, index, to) >= 0) return entries;
        const entry = node.visitLeafCell(bytes, index, make);
        if (entry === undefined) return undefined;
        if (entry !== null) entries.push(entry);
      }
      // The range goes on past this leaf: on to its right sibling, from its high key.
      const high = node.highKey(bytes);
      if (high === undefined || node.rightSibling(bytes) === 0 || node.compareKeys(high, to) >= 0) return entries;
      key = high;
      page = node.rightSibling(bytes);
    }
  }

  /** Entries with from <= key < to (either bound optional), in key order. */
  async *scan(from?: Uint8Array, to?: Uint8Array): AsyncGenerator<[Uint8Array, Uint8Array]> {
    const mtr = new MiniTransaction(this.cache);
    try {
      let resumeAt = from ?? new Uint8Array(0);
      // Each leaf's entries are copied out in one synchronous step after its high key was
      // checked, and the leaf is let go before the entries are yielded.
      let leaf = await this.seek(mtr, resumeAt, (page, bytes) => this.copyLeaf(page, bytes, resumeAt, to));
      for (;;) {
        mtr.release(leaf.page);
        for (const [key, inline] of leaf.entries) {
          if (inline !== undefined) yield [key, inline];
          else {
            // Read through get(), which retries if the value changes under it; gone: skip.
            const current = await this.get(key);
            if (current !== undefined) yield [key, current];
          }
        }
        if (leaf.stoppedAtTo || leaf.next === 0 || leaf.high === undefined) return;
        // Keys that moved right while we yielded are at or above the old high key.
        const high = leaf.high;
        resumeAt = node.compareKeys(high, resumeAt) > 0 ? high : resumeAt;
        const start = resumeAt;
        leaf = await this.seek(mtr, start, (page, bytes) => this.copyLeaf(page, bytes, start, to), pageId(leaf.next));
      }
    } finally {
      await mtr.commit();
    }
  }

  /** The leaf's entries from `from` up to `to`: inline values copied, overflow ones as undefined. */
  private copyLeaf(page: PageId, bytes: Uint8Array, from: Uint8Array, to: Uint8Array | undefined): {
    page: PageId;
    entries: Array<[Uint8Array, Uint8Array | undefined]>;
    stoppedAtTo: boolean;
    next: number;
    high: Uint8Array | undefined;
  } {
    const entries: Array<[Uint8Array, Uint8Array | undefined]> = [];
    let index = node.search(bytes, from).index;
    let stoppedAtTo = false;
    for (; index < node.slotCount(bytes); index++) {
      const key = node.cellKey(bytes, index).slice();
      if (to !== undefined && node.compareKeys(key, to) >= 0) {
        stoppedAtTo = true;
        break;
      }
      const value = node.leafValue(bytes, index);
      entries.push([key, 'inline' in value ? value.inline.slice() : undefined]);
    }
    return { page, entries, stoppedAtTo, next: node.rightSibling(bytes), high: node.highKey(bytes)?.slice() };
  }

  /**
   * Finds the leaf for `key`, from the root or from `start` (a page of the level to search,
   * e.g. a leaf's right sibling), and calls `use` on it in the same synchronous step as
   * the final high-key check, so no commit can move the key between the check and its use.
   */
  private async seek<T>(mtr: MiniTransaction, key: Uint8Array, use: (page: PageId, bytes: Uint8Array) => T, start: PageId = this.root): Promise<T> {
    let page = start;
    for (;;) {
      const bytes = await mtr.read(page);
      const high = node.highKey(bytes);
      if (high !== undefined && node.compareKeys(key, high) >= 0) {
        mtr.release(page);
        page = pageId(node.rightSibling(bytes));
        continue;
      }
      if (node.pageType(bytes) === PageType.Leaf) return use(page, bytes);
      assert(node.pageType(bytes) === PageType.Internal, `page ${page} of tree ${this.root} is not a tree node`);
      const child = pageId(this.childFor(bytes, key));
      mtr.release(page);
      page = child;
    }
  }

  /** Levels from the root to the leaves (1: the root is a leaf). */
  async depth(): Promise<number> {
    const mtr = new MiniTransaction(this.cache);
    try {
      let levels = 1;
      for (let bytes = await mtr.read(this.root); node.pageType(bytes) === PageType.Internal; levels++) bytes = await mtr.read(pageId(node.leftmostChild(bytes)));
      return levels;
    } finally {
      await mtr.commit();
    }
  }

  private childFor(bytes: Uint8Array, key: Uint8Array): number {
    const { index, found } = node.search(bytes, key);
    const slot = found ? index : index - 1;
    return slot < 0 ? node.leftmostChild(bytes) : node.childAt(bytes, slot);
  }

  private async readChain(mtr: MiniTransaction, first: number, totalBytes: number): Promise<Uint8Array> {
    const out = new Uint8Array(totalBytes);
    let at = 0;
    for (let page = first; at < totalBytes; ) {
      assert(page !== 0, 'overflow chain ends early');
      const bytes = await mtr.read(pageId(page));
      assert(node.pageType(bytes) === PageType.Overflow, `page ${page} is not an overflow page`);
      const length = u32(bytes, 8);
      out.set(bytes.subarray(OVERFLOW_HEADER_BYTES, OVERFLOW_HEADER_BYTES + length), at);
      at += length;
      mtr.release(pageId(page));
      page = u32(bytes, 4);
    }
    return out;
  }

  // ---------------------------------------------------------------- writes

  /** Inserts or replaces. Returns whether the key existed. With `unique`, an existing key is left alone and true returned. */
  async put(key: Uint8Array, value: Uint8Array, options: { unique?: boolean } = {}): Promise<boolean> {
    const mtr = new MiniTransaction(this.cache);
    try {
      const existed = await this.putWithin(mtr, key, value, options);
      await mtr.commit();
      return existed;
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  /** put() as part of a caller's mini-transaction (which commits or aborts it). */
  /**
   * Puts many entries, sorted, several to a mini-transaction: a bulk load pays one latch
   * of the path, one page copy and one redo record per leaf and batch, not per entry. Each
   * mini-transaction is atomic on its own; the caller's transaction makes the whole visible.
   */
  async putMany(entries: Array<[Uint8Array, Uint8Array]>, options: { keepExisting?: boolean } = {}): Promise<void> {
    entries.sort((a, b) => Buffer.compare(a[0], b[0]));
    for (let at = 0; at < entries.length; ) {
      const mtr = new MiniTransaction(this.cache);
      try {
        // Up to 64 entries or 256 KiB of values per mini-transaction (large values take
        // overflow pages: each is a redo record and a latched page copy).
        let bytes = 0;
        for (let count = 0; at < entries.length && count < PUT_MANY_ENTRIES && bytes < PUT_MANY_BYTES; count++, at++) {
          bytes += entries[at]![1].length;
          await this.putWithin(mtr, entries[at]![0], entries[at]![1], { unique: options.keepExisting === true });
        }
        await mtr.commit();
      } catch (error) {
        mtr.abort();
        throw error;
      }
    }
  }

  async putWithin(mtr: MiniTransaction, key: Uint8Array, value: Uint8Array, options: { unique?: boolean } = {}): Promise<boolean> {
    if (key.length > node.KEY_BYTES_MAX) throw new KeyTooLarge(`key of ${key.length} bytes is over ${node.KEY_BYTES_MAX}`);
    const path = await this.latchPath(mtr, key);
    const leaf = path[path.length - 1]!;
    const bytes = await mtr.latch(leaf);
    const { index, found } = node.search(bytes, key);
    if (found && options.unique) return true;
    if (found) {
      await this.freeValue(mtr, bytes, index);
      node.removeCell(bytes, index);
    }
    const cell = await this.makeLeafCell(mtr, key, value);
    await this.insertInto(mtr, path, path.length - 1, index, cell);
    return found;
  }

  /**
   * Where `key`'s value starts, as `mtr` sees the tree (e.g. right after putWithin, whose
   * latches keep it there): the leaf and the byte offset of an inline value, or the first
   * overflow page and the offset of its data.
   */
  async valueLocation(mtr: MiniTransaction, key: Uint8Array): Promise<{ page: PageId; offset: number } | undefined> {
    const found = await this.seek(mtr, key, (page, bytes) => {
      const { index, found } = node.search(bytes, key);
      if (!found) return undefined;
      const value = node.leafValue(bytes, index);
      if ('inline' in value) return { page, offset: value.inline.byteOffset - bytes.byteOffset };
      return { page: pageId(value.firstPage), offset: OVERFLOW_HEADER_BYTES };
    });
    return found;
  }

  /**
   * Overwrites `data.length` bytes at `offset` of `key`'s value in place (same length, so
   * the redo is those bytes). Returns false when the key is absent. An overflow value can
   * be patched within its first overflow page only.
   */
  async patchValue(key: Uint8Array, offset: number, data: Uint8Array): Promise<boolean> {
    const mtr = new MiniTransaction(this.cache);
    try {
      const found = await this.patchValueWithin(mtr, key, offset, data);
      if (found) await mtr.commit();
      else mtr.abort();
      return found;
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  /**
   * Patches one value and puts another entry in one mini-transaction (an UPDATE's old
   * version gets its deleter and the new version goes in: one redo record when both are on
   * the same leaf). False, with nothing written, if `patchKey` is absent.
   */
  async patchThenPut(patchKey: Uint8Array, offset: number, data: Uint8Array, key: Uint8Array, value: Uint8Array): Promise<boolean> {
    const mtr = new MiniTransaction(this.cache);
    try {
      if (!(await this.patchValueWithin(mtr, patchKey, offset, data))) {
        mtr.abort();
        return false;
      }
      await this.putWithin(mtr, key, value);
      await mtr.commit();
      return true;
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  private async patchValueWithin(mtr: MiniTransaction, key: Uint8Array, offset: number, data: Uint8Array): Promise<boolean> {
    const path = await this.latchPath(mtr, key);
    const leaf = path[path.length - 1]!;
    const bytes = await mtr.latch(leaf);
    const { index, found } = node.search(bytes, key);
    if (!found) return false;
    const value = node.leafValue(bytes, index);
    if ('inline' in value) {
      assert(offset + data.length <= value.inline.length, 'patch beyond the value');
      value.inline.set(data, offset);
    } else {
      const first = pageId(value.firstPage);
      const chunk = await mtr.latch(first);
      assert(offset + data.length <= u32(chunk, 8), 'patch beyond the first overflow page');
      chunk.set(data, OVERFLOW_HEADER_BYTES + offset);
    }
    return true;
  }


  /** Removes a key; returns whether it was there. A leaf left empty is unlinked (B5). */
  async delete(key: Uint8Array): Promise<boolean> {
    const mtr = new MiniTransaction(this.cache);
    try {
      const path = await this.latchPath(mtr, key);
      const bytes = await mtr.latch(path[path.length - 1]!);
      const { index, found } = node.search(bytes, key);
      if (!found) {
        mtr.abort();
        return false;
      }
      await this.freeValue(mtr, bytes, index);
      node.removeCell(bytes, index);
      const unlinked = node.slotCount(bytes) === 0 ? await this.unlinkEmptyLeaf(mtr, path) : undefined;
      await mtr.commit();
      if (unlinked !== undefined) retire(this.cache, unlinked, mtr.firstLsn!);
      return true;
    } catch (error) {
      mtr.abort();
      throw error;
    }
  }

  /**
   * Removes keys, up to DELETE_MANY_ENTRIES per mini-transaction (vacuum's dead versions of
   * one row share a leaf: one redo record instead of one each); returns how many were
   * there. A removal that would empty a leaf is left to delete(), which unlinks it (B5).
   */
  async deleteMany(keys: readonly Uint8Array[]): Promise<number> {
    const sorted = [...keys].sort((a, b) => node.compareKeys(a, b));
    const emptying: Uint8Array[] = [];
    let removed = 0;
    for (let at = 0; at < sorted.length; ) {
      const mtr = new MiniTransaction(this.cache);
      try {
        for (let count = 0; at < sorted.length && count < DELETE_MANY_ENTRIES; count++, at++) {
          const key = sorted[at]!;
          const path = await this.latchPath(mtr, key);
          const bytes = await mtr.latch(path[path.length - 1]!);
          const { index, found } = node.search(bytes, key);
          if (!found) continue;
          if (node.slotCount(bytes) === 1) {
            emptying.push(key);
            continue;
          }
          await this.freeValue(mtr, bytes, index);
          node.removeCell(bytes, index);
          removed++;
        }
        await mtr.commit();
      } catch (error) {
        mtr.abort();
        throw error;
      }
    }
    for (const key of emptying) if (await this.delete(key)) removed++;
    return removed;
  }

  /** Unlinks the empty leaf at the end of `path` from its parent and left sibling (B5), if it has both. */
  private async unlinkEmptyLeaf(mtr: MiniTransaction, path: PageId[]): Promise<PageId | undefined> {
    if (path.length < 2) return undefined;
    const leaf = path[path.length - 1]!;
    const parent = await mtr.latch(path[path.length - 2]!);
    let slot = -1;
    for (let index = 0; index < node.slotCount(parent); index++) if (node.childAt(parent, index) === leaf) slot = index;
    if (slot < 0) return undefined; // the leftmost child stays
    const leftId = pageId(slot === 0 ? node.leftmostChild(parent) : node.childAt(parent, slot - 1));
    const left = await mtr.latch(leftId);
    const leafBytes = await mtr.latch(leaf);
    if (node.rightSibling(left) !== leaf) return undefined;
    const high = node.highKey(leafBytes)?.slice();
    const oldHigh = node.highKey(left);
    const room = node.freeBytes(left) + (oldHigh === undefined ? 0 : 2 + oldHigh.length);
    if (high !== undefined && room < 2 + high.length) return undefined;
    node.setRightSibling(left, node.rightSibling(leafBytes));
    node.setHighKey(left, high);
    node.removeCell(parent, slot);
    return leaf;
  }

  /**
   * Latches root to leaf for `key` (writers; latches are held to the commit, so the path
   * cannot change under them) and returns the page ids.
   */
  private async latchPath(mtr: MiniTransaction, key: Uint8Array): Promise<PageId[]> {
    const path: PageId[] = [];
    let page = this.root;
    for (;;) {
      // Latched all the way down (a split may climb it), copied only where it changes.
      const bytes = await mtr.latchWithoutCopy(page);
      path.push(page);
      if (node.pageType(bytes) === PageType.Leaf) return path;
      assert(node.pageType(bytes) === PageType.Internal, `page ${page} of tree ${this.root} is not a tree node`);
      page = pageId(this.childFor(bytes, key));
    }
  }

  private async makeLeafCell(mtr: MiniTransaction, key: Uint8Array, value: Uint8Array): Promise<Uint8Array> {
    const inline = node.encodeLeafCell(key, value);
    if (inline.length <= node.CELL_BYTES_MAX) return inline;
    // B3: the value goes to a chain of overflow pages, written back to front.
    let next = 0;
    for (let chunk = Math.ceil(value.length / OVERFLOW_DATA_BYTES) - 1; chunk >= 0; chunk--) {
      const start = chunk * OVERFLOW_DATA_BYTES;
      const end = Math.min(value.length, start + OVERFLOW_DATA_BYTES);
      const page = await allocatePage(mtr, this.cache.store.pageCount);
      const bytes = await mtr.latch(page);
      bytes[0] = PageType.Overflow;
      setU32(bytes, 4, next);
      setU32(bytes, 8, end - start);
      bytes.set(value.subarray(start, end), OVERFLOW_HEADER_BYTES);
      next = page;
    }
    return node.encodeLeafCell(key, { firstPage: next, totalBytes: value.length });
  }

  private async freeValue(mtr: MiniTransaction, leaf: Uint8Array, index: number): Promise<void> {
    const value = node.leafValue(leaf, index);
    if ('inline' in value) return;
    let page = value.firstPage;
    while (page !== 0) {
      const bytes = await mtr.latch(pageId(page));
      const next = u32(bytes, 4);
      await freePage(mtr, pageId(page));
      page = next;
    }
  }

  /** Inserts `cell` at `index` of path[level], splitting upwards as needed. */
  private async insertInto(mtr: MiniTransaction, path: PageId[], level: number, index: number, cell: Uint8Array): Promise<void> {
    const page = path[level]!;
    const bytes = await mtr.latch(page);
    if (node.insertCell(bytes, index, cell)) return;
    if (page === this.root) {
      // The root keeps its page id: its content moves to a new child first.
      const child = await allocatePage(mtr, this.cache.store.pageCount);
      const childBytes = await mtr.latch(child);
      childBytes.set(bytes);
      node.initNode(bytes, PageType.Internal, this.root);
      node.setLeftmostChild(bytes, child);
      path.splice(level + 1, 0, child);
      return this.insertInto(mtr, path, level + 1, index, cell);
    }
    // Split: all cells plus the new one, halved by bytes; the right half moves to a new page.
    const cells = node.allCells(bytes);
    cells.splice(index, 0, cell);
    const total = cells.reduce((sum, each) => sum + node.spaceFor(each.length), 0);
    let leftBytes = 0;
    let cut = 0;
    while (cut < cells.length - 1 && leftBytes + node.spaceFor(cells[cut]!.length) <= total / 2) leftBytes += node.spaceFor(cells[cut++]!.length);
    if (cut === 0) cut = 1;
    const isLeaf = node.pageType(bytes) === PageType.Leaf;
    // Appending past the end of a level (ascending keys, a serial primary key): the old
    // cells stay and the new one starts the right page, as PostgreSQL's rightmost split
    // does; half-empty pages and half-page redo for each split are avoided. The left page
    // keeps LEAF_FILL_FACTOR of its space, no more: an update writes its new row version
    // into the same leaf, and a leaf loaded full would split on its first update.
    if (isLeaf && index === cells.length - 1 && node.rightSibling(bytes) === 0) {
      // The left page keeps its cells and gains a high key (the separator): it must fit.
      const capacity = PAGE_BYTES - node.HEADER_BYTES;
      let used = cells.slice(0, -1).reduce((sum, each) => sum + node.spaceFor(each.length), 0);
      cut = cells.length - 1;
      while (cut > 1 && (used > capacity * LEAF_FILL_FACTOR || used + 2 + node.keyOfCell(cells[cut]!).length > capacity)) used -= node.spaceFor(cells[--cut]!.length);
    }
    const right = await allocatePage(mtr, this.cache.store.pageCount);
    const rightBytes = await mtr.latch(right);
    node.initNode(rightBytes, isLeaf ? PageType.Leaf : PageType.Internal, this.root);
    const oldHigh = node.highKey(bytes)?.slice();
    const separator = node.keyOfCell(cells[cut]!).slice();
    let rightCells = cells.slice(cut);
    if (!isLeaf) {
      // The middle key moves up; its child becomes the right node's leftmost child.
      node.setLeftmostChild(rightBytes, node.childOfCell(cells[cut]!));
      rightCells = cells.slice(cut + 1);
    }
    node.setRightSibling(rightBytes, node.rightSibling(bytes));
    node.rebuild(rightBytes, rightCells, oldHigh);
    node.setRightSibling(bytes, right);
    // The left node keeps cells[0, cut): drop the rest in place rather than rebuilding the
    // page, so the split's redo for it is the slot array and header, not the whole page.
    const keptOriginals = index < cut ? cut - 1 : cut;
    for (let slot = node.slotCount(bytes) - 1; slot >= keptOriginals; slot--) node.removeCell(bytes, slot);
    if (index < cut) assert(node.insertCell(bytes, index, cell), 'the new cell fits in the left half');
    node.setHighKey(bytes, separator);
    const parentLevel = level - 1;
    const parent = await mtr.latch(path[parentLevel]!);
    const at = node.search(parent, separator).index;
    await this.insertInto(mtr, path, parentLevel, at, node.encodeInternalCell(separator, right));
  }
}

function copyEntry(page: Uint8Array, keyAt: number, keyBytes: number, valueAt: number, valueBytes: number): [Uint8Array, Uint8Array] {
  return [page.slice(keyAt, keyAt + keyBytes), page.slice(valueAt, valueAt + valueBytes)];
}
