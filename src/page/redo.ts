// Redo records and the one function that applies them to a page.
//
// A redo record is an engine-agnostic page patch: storage nodes, the writer and readers
// all materialize pages with applyRedo, so invariant 4 (every segment returns the same
// bytes for the same page and LSN) reduces to "the same records in the same order".
//
// Binary layout (little endian), used identically in the hot log, on the wire and in
// the page store, so a record's checksum is computed once by the writer and checked by
// every hop:
//   u64 lsn | u64 prevLsnOfThisPg | u32 pageId | u32 epoch | u8 flags | u8 kind
//   | u16 offset | u32 dataBytes | data | u32 checksum(all preceding bytes)

import { allocBytes, assert, checksum, copyBytes, PAGE_BYTES, type Epoch, type Lsn, type PageId, epoch as toEpoch, pageId as toPageId } from '../common/index.js';

export const enum RedoKind {
  /** Zero the page. */
  Init = 0,
  /** Write data at offset. */
  Write = 1,
  /** Replace the page with data (PAGE_BYTES long). */
  Image = 2,
  /**
   * Write several ranges: data is a sequence of (u16 offset, u16 length, bytes), offset 0.
   * One record for all of a page's changed ranges costs 4 bytes a range instead of 36.
   */
  WriteMany = 3,
}

/** The data of a WriteMany record for these ranges (each within the page). */
export function encodeWriteMany(ranges: ReadonlyArray<{ offset: number; data: Uint8Array }>): Uint8Array {
  let size = 0;
  for (const range of ranges) size += 4 + range.data.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const range of ranges) {
    view.setUint16(at, range.offset, true);
    view.setUint16(at + 2, range.data.length, true);
    out.set(range.data, at + 4);
    at += 4 + range.data.length;
  }
  return out;
}

/** The ranges of a WriteMany record's data, or undefined if it is malformed (a range past the page or the data). */
export function decodeWriteMany(data: Uint8Array): Array<{ offset: number; data: Uint8Array }> | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const ranges: Array<{ offset: number; data: Uint8Array }> = [];
  let at = 0;
  while (at < data.length) {
    if (at + 4 > data.length) return undefined;
    const offset = view.getUint16(at, true);
    const length = view.getUint16(at + 2, true);
    if (length === 0 || offset + length > PAGE_BYTES || at + 4 + length > data.length) return undefined;
    ranges.push({ offset, data: data.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return ranges.length > 0 ? ranges : undefined;
}

/** Whether decodeWriteMany would accept `data`, without building its ranges. */
function writeManyValid(data: Uint8Array): boolean {
  if (data.length === 0) return false;
  let at = 0;
  while (at < data.length) {
    if (at + 4 > data.length) return false;
    const offset = data[at]! | (data[at + 1]! << 8);
    const length = data[at + 2]! | (data[at + 3]! << 8);
    if (length === 0 || offset + length > PAGE_BYTES || at + 4 + length > data.length) return false;
    at += 4 + length;
  }
  return true;
}

/** Flag bit: this record ends a mini-transaction (a consistency point). */
export const FLAG_CPL = 1;

export interface RedoRecord {
  lsn: Lsn;
  prevLsnOfThisPg: Lsn;
  pageId: PageId;
  /** Volume epoch of the writer that produced the record. */
  epoch: Epoch;
  flags: number;
  kind: RedoKind;
  offset: number;
  data: Uint8Array;
}

export const REDO_HEADER_BYTES = 32;
export const REDO_TRAILER_BYTES = 4;

export function encodedRedoBytes(record: RedoRecord): number {
  return REDO_HEADER_BYTES + record.data.length + REDO_TRAILER_BYTES;
}

export function validateRedo(record: RedoRecord): string | undefined {
  if (record.lsn <= record.prevLsnOfThisPg) return 'lsn must be above prevLsnOfThisPg';
  if (record.lsn <= 0n) return 'lsn must be positive';
  switch (record.kind) {
    case RedoKind.Init:
      return record.data.length === 0 ? undefined : 'init carries no data';
    case RedoKind.Write:
      return record.offset + record.data.length <= PAGE_BYTES ? undefined : 'write past end of page';
    case RedoKind.Image:
      return record.data.length === PAGE_BYTES && record.offset === 0 ? undefined : 'image must be a whole page';
    case RedoKind.WriteMany:
      return record.offset === 0 && writeManyValid(record.data) ? undefined : 'malformed write-many';
    default:
      return `unknown redo kind ${String(record.kind)}`;
  }
}

/**
 * A record's encoded bytes, kept once made or read: a record goes from the wire to the hot
 * log and later to the page store, and each hop would otherwise encode and checksum it
 * again. Records are immutable once built (nothing assigns to their fields or data).
 */
const encodedRecords = new WeakMap<RedoRecord, Uint8Array>();

export function encodeRedo(record: RedoRecord, target?: Uint8Array, at = 0): Uint8Array {
  const known = encodedRecords.get(record);
  if (known !== undefined) {
    if (target === undefined) return known;
    target.set(known, at);
    return target.subarray(at, at + known.length);
  }
  const total = encodedRedoBytes(record);
  const bytes = target ?? allocBytes(total);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, total);
  view.setBigUint64(0, record.lsn, true);
  view.setBigUint64(8, record.prevLsnOfThisPg, true);
  view.setUint32(16, record.pageId, true);
  view.setUint32(20, record.epoch, true);
  view.setUint8(24, record.flags);
  view.setUint8(25, record.kind);
  view.setUint16(26, record.offset, true);
  view.setUint32(28, record.data.length, true);
  bytes.set(record.data, at + REDO_HEADER_BYTES);
  view.setUint32(total - 4, checksum(bytes, at, at + total - 4), true);
  if (target) return bytes.subarray(at, at + total);
  encodedRecords.set(record, bytes);
  return bytes;
}

export type DecodeResult<T> = { ok: true; value: T; bytes: number } | { ok: false; error: 'truncated' | 'checksum_mismatch' | 'malformed' };

/** Decodes one record at `at`; the record is copied so the source may be reused. */
export function decodeRedo(bytes: Uint8Array, at = 0): DecodeResult<RedoRecord> {
  if (bytes.length - at < REDO_HEADER_BYTES + REDO_TRAILER_BYTES) return { ok: false, error: 'truncated' };
  const view = new DataView(bytes.buffer, bytes.byteOffset + at);
  const dataBytes = view.getUint32(28, true);
  if (dataBytes > PAGE_BYTES) return { ok: false, error: 'malformed' };
  const total = REDO_HEADER_BYTES + dataBytes + REDO_TRAILER_BYTES;
  if (bytes.length - at < total) return { ok: false, error: 'truncated' };
  const expected = view.getUint32(total - 4, true);
  if (checksum(bytes, at, at + total - 4) !== expected) return { ok: false, error: 'checksum_mismatch' };
  const encoded = copyBytes(bytes, at, at + total);
  const record: RedoRecord = {
    lsn: view.getBigUint64(0, true),
    prevLsnOfThisPg: view.getBigUint64(8, true),
    pageId: toPageId(view.getUint32(16, true)),
    epoch: toEpoch(view.getUint32(20, true)),
    flags: view.getUint8(24),
    kind: view.getUint8(25) as RedoKind,
    offset: view.getUint16(26, true),
    data: encoded.subarray(REDO_HEADER_BYTES, REDO_HEADER_BYTES + dataBytes),
  };
  if (validateRedo(record) !== undefined) return { ok: false, error: 'malformed' };
  encodedRecords.set(record, encoded);
  return { ok: true, value: record, bytes: total };
}

export function emptyPage(): Uint8Array {
  return new Uint8Array(PAGE_BYTES);
}

/** Applies one record to a page in place. Pure in everything but the page it mutates. */
export function applyRedo(page: Uint8Array, record: RedoRecord): void {
  assert(page.length === PAGE_BYTES, 'page has the wrong size');
  switch (record.kind) {
    case RedoKind.Init:
      page.fill(0);
      return;
    case RedoKind.Write:
      assert(record.offset + record.data.length <= PAGE_BYTES, 'write past end of page');
      page.set(record.data, record.offset);
      return;
    case RedoKind.Image:
      assert(record.data.length === PAGE_BYTES, 'image must be a whole page');
      page.set(record.data, 0);
      return;
    case RedoKind.WriteMany: {
      // Validated when the record was decoded or built; checked again range by range here,
      // without building the list of ranges decodeWriteMany returns.
      const data = record.data;
      let at = 0;
      assert(data.length > 0, 'malformed write-many');
      while (at < data.length) {
        assert(at + 4 <= data.length, 'malformed write-many');
        const offset = data[at]! | (data[at + 1]! << 8);
        const length = data[at + 2]! | (data[at + 3]! << 8);
        assert(length > 0 && offset + length <= PAGE_BYTES && at + 4 + length <= data.length, 'malformed write-many');
        page.set(data.subarray(at + 4, at + 4 + length), offset);
        at += 4 + length;
      }
      return;
    }
    default:
      throw new Error(`unknown redo kind ${String(record.kind)}`);
  }
}

/** A stored page version: the page bytes followed by their CRC-32. */
export function sealPage(page: Uint8Array): Uint8Array {
  const sealed = new Uint8Array(PAGE_BYTES + 4);
  sealed.set(page, 0);
  new DataView(sealed.buffer).setUint32(PAGE_BYTES, checksum(page), true);
  return sealed;
}

/** Returns the page bytes, or undefined if the seal does not match (corruption). */
export function unsealPage(sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length !== PAGE_BYTES + 4) return undefined;
  const view = new DataView(sealed.buffer, sealed.byteOffset, sealed.length);
  if (checksum(sealed, 0, PAGE_BYTES) !== view.getUint32(PAGE_BYTES, true)) return undefined;
  return sealed.slice(0, PAGE_BYTES);
}

export function isCpl(record: RedoRecord): boolean {
  return (record.flags & FLAG_CPL) !== 0;
}
