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

const view = (page: Uint8Array): DataView => new DataView(page.buffer, page.byteOffset, page.byteLength);

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
  const v = view(page);
  v.setUint8(0, type);
  v.setUint16(4, PAGE_BYTES, true);
  v.setUint32(18, tree, true);
}

export const slotCount = (page: Uint8Array): number => view(page).getUint16(2, true);
export const rightSibling = (page: Uint8Array): number => view(page).getUint32(8, true);
export const setRightSibling = (page: Uint8Array, sibling: number): void => view(page).setUint32(8, sibling, true);
export const leftmostChild = (page: Uint8Array): number => view(page).getUint32(12, true);
export const setLeftmostChild = (page: Uint8Array, child: number): void => view(page).setUint32(12, child, true);
export const treeOf = (page: Uint8Array): number => view(page).getUint32(18, true);

const cellStart = (page: Uint8Array): number => view(page).getUint16(4, true);
const slotOffset = (page: Uint8Array, index: number): number => view(page).getUint16(HEADER_BYTES + index * SLOT_BYTES, true);

export function cellKey(page: Uint8Array, index: number): Uint8Array {
  const at = slotOffset(page, index);
  const keyBytes = view(page).getUint16(at, true);
  return page.subarray(at + 6, at + 6 + keyBytes);
}

/** Leaf cell value: inline bytes, or where the overflow chain starts and how long it is. */
export function leafValue(page: Uint8Array, index: number): { inline: Uint8Array } | { firstPage: number; totalBytes: number } {
  const at = slotOffset(page, index);
  const v = view(page);
  const keyBytes = v.getUint16(at, true);
  const valueWord = v.getUint32(at + 2, true);
  const valueAt = at + 6 + keyBytes;
  if ((valueWord & OVERFLOW_FLAG) !== 0) return { firstPage: v.getUint32(valueAt, true), totalBytes: v.getUint32(valueAt + 4, true) };
  return { inline: page.subarray(valueAt, valueAt + valueWord) };
}

export function childAt(page: Uint8Array, index: number): number {
  return view(page).getUint32(slotOffset(page, index) + 2, true);
}

export function highKey(page: Uint8Array): Uint8Array | undefined {
  const at = view(page).getUint16(16, true);
  if (at === 0) return undefined;
  const keyBytes = view(page).getUint16(at, true);
  return page.subarray(at + 2, at + 2 + keyBytes);
}

/** First slot whose key is >= key (slotCount when none), and whether it is equal. */
export function search(page: Uint8Array, key: Uint8Array): { index: number; found: boolean } {
  let low = 0;
  let high = slotCount(page);
  while (low < high) {
    const middle = (low + high) >> 1;
    if (compareKeys(cellKey(page, middle), key) < 0) low = middle + 1;
    else high = middle;
  }
  return { index: low, found: low < slotCount(page) && compareKeys(cellKey(page, low), key) === 0 };
}

export function encodeLeafCell(key: Uint8Array, value: Uint8Array | { firstPage: number; totalBytes: number }): Uint8Array {
  const inline = value instanceof Uint8Array;
  const valueBytes = inline ? value.length : 8;
  const cell = new Uint8Array(6 + key.length + valueBytes);
  const v = view(cell);
  v.setUint16(0, key.length, true);
  v.setUint32(2, inline ? value.length : OVERFLOW_FLAG | 8, true);
  cell.set(key, 6);
  if (inline) cell.set(value, 6 + key.length);
  else {
    v.setUint32(6 + key.length, value.firstPage, true);
    v.setUint32(10 + key.length, value.totalBytes, true);
  }
  return cell;
}

export function encodeInternalCell(key: Uint8Array, child: number): Uint8Array {
  const cell = new Uint8Array(6 + key.length);
  view(cell).setUint16(0, key.length, true);
  view(cell).setUint32(2, child, true);
  cell.set(key, 6);
  return cell;
}

/** The bytes of the cell in slot `index` (a copy). */
export function cellBytes(page: Uint8Array, index: number): Uint8Array {
  const at = slotOffset(page, index);
  return page.slice(at, at + cellSize(page, at));
}

function cellSize(page: Uint8Array, at: number): number {
  const v = view(page);
  const keyBytes = v.getUint16(at, true);
  if (pageType(page) === PageType.Internal) return 6 + keyBytes;
  const valueWord = v.getUint32(at + 2, true);
  return 6 + keyBytes + ((valueWord & OVERFLOW_FLAG) !== 0 ? 8 : valueWord);
}

/** The start of a gap of at least `size` bytes between cells (above the cell start), if any. */
function findHole(page: Uint8Array, size: number): number | undefined {
  const used: Array<[number, number]> = [];
  for (let index = 0; index < slotCount(page); index++) {
    const at = slotOffset(page, index);
    used.push([at, at + cellSize(page, at)]);
  }
  const high = view(page).getUint16(16, true);
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
  const at = view(page).getUint16(16, true);
  return at === 0 ? 0 : 2 + view(page).getUint16(at, true);
}

/** Bytes a new cell of this size would take, slot included. */
export const spaceFor = (cellLength: number): number => cellLength + SLOT_BYTES;

/** Free bytes, counting garbage that compaction would reclaim. */
export function freeBytes(page: Uint8Array): number {
  return cellStart(page) - (HEADER_BYTES + slotCount(page) * SLOT_BYTES) + view(page).getUint16(6, true);
}

/** Inserts a cell at slot `index`; false when it does not fit even after compaction. */
export function insertCell(page: Uint8Array, index: number, cell: Uint8Array): boolean {
  assert(cell.length <= CELL_BYTES_MAX, `cell of ${cell.length} bytes is over the limit`);
  if (freeBytes(page) < spaceFor(cell.length)) return false;
  const count = slotCount(page);
  const v = view(page);
  let at: number;
  if (cellStart(page) - (HEADER_BYTES + (count + 1) * SLOT_BYTES) >= cell.length) {
    at = cellStart(page) - cell.length;
    v.setUint16(4, at, true);
  } else {
    // Reuse a hole left by removed cells before rewriting the whole cell area: a compaction
    // moves every cell, and the redo is the difference.
    // (The slot array still needs room for one more slot below the cell area.)
    const hole = cellStart(page) - (HEADER_BYTES + (count + 1) * SLOT_BYTES) >= 0 ? findHole(page, cell.length) : undefined;
    if (hole !== undefined) {
      at = hole;
      v.setUint16(6, v.getUint16(6, true) - cell.length, true);
    } else {
      compact(page);
      at = cellStart(page) - cell.length;
      v.setUint16(4, at, true);
    }
  }
  page.set(cell, at);
  const slots = HEADER_BYTES + index * SLOT_BYTES;
  page.copyWithin(slots + SLOT_BYTES, slots, HEADER_BYTES + count * SLOT_BYTES);
  v.setUint16(slots, at, true);
  v.setUint16(2, count + 1, true);
  return true;
}

export function removeCell(page: Uint8Array, index: number): void {
  const v = view(page);
  const count = slotCount(page);
  const at = slotOffset(page, index);
  v.setUint16(6, v.getUint16(6, true) + cellSize(page, at), true);
  const slots = HEADER_BYTES + index * SLOT_BYTES;
  page.copyWithin(slots, slots + SLOT_BYTES, HEADER_BYTES + count * SLOT_BYTES);
  v.setUint16(HEADER_BYTES + (count - 1) * SLOT_BYTES, 0, true);
  v.setUint16(2, count - 1, true);
}

export function setHighKey(page: Uint8Array, key: Uint8Array | undefined): void {
  const v = view(page);
  const old = v.getUint16(16, true);
  if (old !== 0) {
    v.setUint16(6, v.getUint16(6, true) + highKeySize(page), true);
    v.setUint16(16, 0, true);
  }
  if (key === undefined) return;
  const size = 2 + key.length;
  if (cellStart(page) - (HEADER_BYTES + slotCount(page) * SLOT_BYTES) < size) compact(page);
  assert(cellStart(page) - (HEADER_BYTES + slotCount(page) * SLOT_BYTES) >= size, 'no room for the high key');
  const at = cellStart(page) - size;
  v.setUint16(at, key.length, true);
  page.set(key, at + 2);
  v.setUint16(4, at, true);
  v.setUint16(16, at, true);
}

/** Rewrites the cell area without gaps (slot order and contents unchanged). */
export function compact(page: Uint8Array): void {
  const count = slotCount(page);
  const cells: Uint8Array[] = [];
  for (let index = 0; index < count; index++) cells.push(cellBytes(page, index));
  const high = highKey(page)?.slice();
  const v = view(page);
  let at = PAGE_BYTES;
  for (let index = 0; index < count; index++) {
    at -= cells[index]!.length;
    page.set(cells[index]!, at);
    v.setUint16(HEADER_BYTES + index * SLOT_BYTES, at, true);
  }
  page.fill(0, HEADER_BYTES + count * SLOT_BYTES, at);
  v.setUint16(4, at, true);
  v.setUint16(6, 0, true);
  v.setUint16(16, 0, true);
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
  return cell.subarray(6, 6 + view(cell).getUint16(0, true));
}

export function childOfCell(cell: Uint8Array): number {
  return view(cell).getUint32(2, true);
}
