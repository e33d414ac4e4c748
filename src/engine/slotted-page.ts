// Slotted 8 KiB pages for B+tree nodes: pure functions on page bytes.
//
//   0  u8  type (PageType)          8  u32 right sibling (0: none)
//   2  u16 slot count              12  u32 leftmost child (internal nodes)
//   4  u16 cell start (cells grow  16  u16 high-key cell offset (0: +infinity)
//          down from the page end) 18  u32 tree id (the root's page id), for checks
//   6  u16 garbage bytes in the cell area (from deletions; reclaimed by compaction)
//   24 u16 slot offsets, in key order
//
// Cells: leaf  u16 keyBytes | u32 valueBytes (bit 31: value in overflow pages) | key | value
//        internal  u16 keyBytes | u32 child | key          high key  u16 keyBytes | key
// An overflow value's inline part is u32 first overflow page | u32 total bytes.
// Keys compare as unsigned bytes (memcmp order, shorter prefix first).

import { assert, PAGE_BYTES } from '../common/index.js';

export const enum PageType {
  Free = 0,
  Meta = 1,
  Leaf = 2,
  Internal = 3,
  Overflow = 4,
}

export const HEADER_BYTES = 24;
const SLOT_BYTES = 2;
export const OVERFLOW_FLAG = 0x8000_0000;
/** A cell never exceeds this, so that a split always leaves room for any cell on either side. */
export const CELL_BYTES_MAX = Math.floor((PAGE_BYTES - HEADER_BYTES) / 4) - SLOT_BYTES;
export const KEY_BYTES_MAX = 1024;

// Little-endian field access straight on the bytes (a DataView per access costs an allocation).
const u16 = (page: Uint8Array, at: number): number => page[at]! | (page[at + 1]! << 8);
const u32 = (page: Uint8Array, at: number): number => (page[at]! | (page[at + 1]! << 8) | (page[at + 2]! << 16)) + page[at + 3]! * 0x100_0000;
const setU8 = (page: Uint8Array, at: number, value: number): void => {
  page[at] = value;
};
const setU16 = (page: Uint8Array, at: number, value: number): void => {
  page[at] = value;
  page[at + 1] = value >>> 8;
};
const setU32 = (page: Uint8Array, at: number, value: number): void => {
  page[at] = value;
  page[at + 1] = value >>> 8;
  page[at + 2] = value >>> 16;
  page[at + 3] = value >>> 24;
};

export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const difference = a[index]! - b[index]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function pageType(page: Uint8Array): PageType {
  return page[0] as PageType;
}

export function initNode(page: Uint8Array, type: PageType.Leaf | PageType.Internal, tree: number): void {
  page.fill(0);
    setU8(page, 0, type);
  setU16(page, 4, PAGE_BYTES);
  setU32(page, 18, tree);
}

export const slotCount = (page: Uint8Array): number => u16(page, 2);
export const rightSibling = (page: Uint8Array): number => u32(page, 8);
export const setRightSibling = (page: Uint8Array, sibling: number): void => setU32(page, 8, sibling);
export const leftmostChild = (page: Uint8Array): number => u32(page, 12);
export const setLeftmostChild = (page: Uint8Array, child: number): void => setU32(page, 12, child);
export const treeOf = (page: Uint8Array): number => u32(page, 18);

const cellStart = (page: Uint8Array): number => u16(page, 4);
const slotOffset = (page: Uint8Array, index: number): number => u16(page, HEADER_BYTES + index * SLOT_BYTES);

export function cellKey(page: Uint8Array, index: number): Uint8Array {
  const at = slotOffset(page, index);
  const keyBytes = u16(page, at);
  return page.subarray(at + 6, at + 6 + keyBytes);
}

/** Leaf cell value: inline bytes, or where the overflow chain starts and how long it is. */
export function leafValue(page: Uint8Array, index: number): { inline: Uint8Array } | { firstPage: number; totalBytes: number } {
  const at = slotOffset(page, index);
    const keyBytes = u16(page, at);
  const valueWord = u32(page, at + 2);
  const valueAt = at + 6 + keyBytes;
  if ((valueWord & OVERFLOW_FLAG) !== 0) return { firstPage: u32(page, valueAt), totalBytes: u32(page, valueAt + 4) };
  return { inline: page.subarray(valueAt, valueAt + valueWord) };
}

export function childAt(page: Uint8Array, index: number): number {
  return u32(page, slotOffset(page, index) + 2);
}

export function highKey(page: Uint8Array): Uint8Array | undefined {
  const at = u16(page, 16);
  if (at === 0) return undefined;
  const keyBytes = u16(page, at);
  return page.subarray(at + 2, at + 2 + keyBytes);
}

/**
 * Where leaf cell `index` keeps its key and inline value, handed to `make` (no views made);
 * undefined, without calling it, for a value in an overflow chain.
 */
export function visitLeafCell<T>(page: Uint8Array, index: number, make: CellVisitor<T>): T | undefined {
  const at = slotOffset(page, index);
  const keyBytes = u16(page, at);
  const valueWord = u32(page, at + 2);
  if ((valueWord & OVERFLOW_FLAG) !== 0) return undefined;
  return make(page, at + 6, keyBytes, at + 6 + keyBytes, valueWord);
}
export type CellVisitor<T> = (page: Uint8Array, keyAt: number, keyBytes: number, valueAt: number, valueBytes: number) => T;

/** Whether the page has a high key and `key` is at or above it (compared in place). */
export function atOrAboveHighKey(page: Uint8Array, key: Uint8Array): boolean {
  const at = u16(page, 16);
  if (at === 0) return false;
  return compareInPage(page, at + 2, u16(page, at), key) <= 0;
}

/** compareKeys(cellKey(page, index), key), without making a view of the cell's key. */
export function compareCellKey(page: Uint8Array, index: number, key: Uint8Array): number {
  const at = slotOffset(page, index);
  return compareInPage(page, at + 6, u16(page, at), key);
}

/** compareKeys(page[start, start + bytes), key), in place. */
function compareInPage(page: Uint8Array, start: number, bytes: number, key: Uint8Array): number {
  const length = Math.min(bytes, key.length);
  for (let offset = 0; offset < length; offset++) {
    const difference = page[start + offset]! - key[offset]!;
    if (difference !== 0) return difference;
  }
  return bytes - key.length;
}

/** First slot whose key is >= key (slotCount when none). */
export function lowerBound(page: Uint8Array, key: Uint8Array): number {
  let low = 0;
  let high = slotCount(page);
  while (low < high) {
    const middle = (low + high) >> 1;
    if (compareCellKey(page, middle, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** First slot whose key is >= key (slotCount when none), and whether it is equal. */
export function search(page: Uint8Array, key: Uint8Array): { index: number; found: boolean } {
  const index = lowerBound(page, key);
  return { index, found: index < slotCount(page) && compareCellKey(page, index, key) === 0 };
}

export function encodeLeafCell(key: Uint8Array, value: Uint8Array | { firstPage: number; totalBytes: number }): Uint8Array {
  const inline = value instanceof Uint8Array;
  const valueBytes = inline ? value.length : 8;
  const cell = new Uint8Array(6 + key.length + valueBytes);
    setU16(cell, 0, key.length);
  setU32(cell, 2, inline ? value.length : OVERFLOW_FLAG | 8);
  cell.set(key, 6);
  if (inline) cell.set(value, 6 + key.length);
  else {
    setU32(cell, 6 + key.length, value.firstPage);
    setU32(cell, 10 + key.length, value.totalBytes);
  }
  return cell;
}

export function encodeInternalCell(key: Uint8Array, child: number): Uint8Array {
  const cell = new Uint8Array(6 + key.length);
  setU16(cell, 0, key.length);
  setU32(cell, 2, child);
  cell.set(key, 6);
  return cell;
}

/** The bytes of the cell in slot `index` (a copy). */
export function cellBytes(page: Uint8Array, index: number): Uint8Array {
  const at = slotOffset(page, index);
  return page.slice(at, at + cellSize(page, at));
}

function cellSize(page: Uint8Array, at: number): number {
    const keyBytes = u16(page, at);
  if (pageType(page) === PageType.Internal) return 6 + keyBytes;
  const valueWord = u32(page, at + 2);
  return 6 + keyBytes + ((valueWord & OVERFLOW_FLAG) !== 0 ? 8 : valueWord);
}

/** The start of a gap of at least `size` bytes between cells (above the cell start), if any. */
function findHole(page: Uint8Array, size: number): number | undefined {
  const used: Array<[number, number]> = [];
  for (let index = 0; index < slotCount(page); index++) {
    const at = slotOffset(page, index);
    used.push([at, at + cellSize(page, at)]);
  }
  const high = u16(page, 16);
  if (high !== 0) used.push([high, high + highKeySize(page)]);
  used.sort((a, b) => a[0] - b[0]);
  let previousEnd = cellStart(page);
  for (const [start, end] of used) {
    if (start - previousEnd >= size) return previousEnd;
    previousEnd = Math.max(previousEnd, end);
  }
  return PAGE_BYTES - previousEnd >= size ? previousEnd : undefined;
}

function highKeySize(page: Uint8Array): number {
  const at = u16(page, 16);
  return at === 0 ? 0 : 2 + u16(page, at);
}

/** Bytes a new cell of this size would take, slot included. */
export const spaceFor = (cellLength: number): number => cellLength + SLOT_BYTES;

/** Free bytes, counting garbage that compaction would reclaim. */
export function freeBytes(page: Uint8Array): number {
  return cellStart(page) - (HEADER_BYTES + slotCount(page) * SLOT_BYTES) + u16(page, 6);
}

/** Inserts a cell at slot `index`; false when it does not fit even after compaction. */
export function insertCell(page: Uint8Array, index: number, cell: Uint8Array): boolean {
  assert(cell.length <= CELL_BYTES_MAX, `cell of ${cell.length} bytes is over the limit`);
  if (freeBytes(page) < spaceFor(cell.length)) return false;
  const count = slotCount(page);
    let at: number;
  if (cellStart(page) - (HEADER_BYTES + (count + 1) * SLOT_BYTES) >= cell.length) {
    at = cellStart(page) - cell.length;
    setU16(page, 4, at);
  } else {
    // Reuse a hole left by removed cells before rewriting the whole cell area: a compaction
    // moves every cell, and the redo is the difference.
    // (The slot array still needs room for one more slot below the cell area.)
    const hole = cellStart(page) - (HEADER_BYTES + (count + 1) * SLOT_BYTES) >= 0 ? findHole(page, cell.length) : undefined;
    if (hole !== undefined) {
      at = hole;
      setU16(page, 6, u16(page, 6) - cell.length);
    } else {
      compact(page);
      at = cellStart(page) - cell.length;
      setU16(page, 4, at);
    }
  }
  page.set(cell, at);
  const slots = HEADER_BYTES + index * SLOT_BYTES;
  page.copyWithin(slots + SLOT_BYTES, slots, HEADER_BYTES + count * SLOT_BYTES);
  setU16(page, slots, at);
  setU16(page, 2, count + 1);
  return true;
}

export function removeCell(page: Uint8Array, index: number): void {
    const count = slotCount(page);
  const at = slotOffset(page, index);
  setU16(page, 6, u16(page, 6) + cellSize(page, at));
  const slots = HEADER_BYTES + index * SLOT_BYTES;
  page.copyWithin(slots, slots + SLOT_BYTES, HEADER_BYTES + count * SLOT_BYTES);
  setU16(page, HEADER_BYTES + (count - 1) * SLOT_BYTES, 0);
  setU16(page, 2, count - 1);
}

export function setHighKey(page: Uint8Array, key: Uint8Array | undefined): void {
    const old = u16(page, 16);
  if (old !== 0) {
    setU16(page, 6, u16(page, 6) + highKeySize(page));
    setU16(page, 16, 0);
  }
  if (key === undefined) return;
  const size = 2 + key.length;
  if (cellStart(page) - (HEADER_BYTES + slotCount(page) * SLOT_BYTES) < size) compact(page);
  assert(cellStart(page) - (HEADER_BYTES + slotCount(page) * SLOT_BYTES) >= size, 'no room for the high key');
  const at = cellStart(page) - size;
  setU16(page, at, key.length);
  page.set(key, at + 2);
  setU16(page, 4, at);
  setU16(page, 16, at);
}

/** Rewrites the cell area without gaps (slot order and contents unchanged). */
export function compact(page: Uint8Array): void {
  const count = slotCount(page);
  const cells: Uint8Array[] = [];
  for (let index = 0; index < count; index++) cells.push(cellBytes(page, index));
  const high = highKey(page)?.slice();
    let at = PAGE_BYTES;
  for (let index = 0; index < count; index++) {
    at -= cells[index]!.length;
    page.set(cells[index]!, at);
    setU16(page, HEADER_BYTES + index * SLOT_BYTES, at);
  }
  page.fill(0, HEADER_BYTES + count * SLOT_BYTES, at);
  setU16(page, 4, at);
  setU16(page, 6, 0);
  setU16(page, 16, 0);
  if (high !== undefined) setHighKey(page, high);
}

/** Every cell of the page, in key order (copies). */
export function allCells(page: Uint8Array): Uint8Array[] {
  const cells: Uint8Array[] = [];
  for (let index = 0; index < slotCount(page); index++) cells.push(cellBytes(page, index));
  return cells;
}

/** Rebuilds a node from cells (in key order), keeping its type, tree, links and high key. */
export function rebuild(page: Uint8Array, cells: Uint8Array[], high: Uint8Array | undefined): void {
  const type = pageType(page) as PageType.Leaf | PageType.Internal;
  const sibling = rightSibling(page);
  const leftmost = leftmostChild(page);
  const tree = treeOf(page);
  initNode(page, type, tree);
  setRightSibling(page, sibling);
  setLeftmostChild(page, leftmost);
  for (const [index, cell] of cells.entries()) assert(insertCell(page, index, cell), 'rebuilt cells must fit');
  setHighKey(page, high);
}

/** Key of an encoded cell (leaf or internal layouts share the key position). */
export function keyOfCell(cell: Uint8Array): Uint8Array {
  return cell.subarray(6, 6 + u16(cell, 0));
}

export function childOfCell(cell: Uint8Array): number {
  return u32(cell, 2);
}
