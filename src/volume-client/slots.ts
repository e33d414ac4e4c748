// Slot layout of the kill tests' and benchmarks' stream writer: record i writes 16 bytes
// into a slot no other record touches (u64 lsn | u64 i + 1), so a reader can tell exactly
// which records are visible.

import type { Lsn } from '../common/index.js';

export const SLOT_BYTES = 16;
export const SLOTS_PER_PAGE = 8192 / SLOT_BYTES;

export function slotOf(index: number, pageCount: number): { page: number; slot: number } {
  return { page: index % pageCount, slot: Math.floor(index / pageCount) % SLOTS_PER_PAGE };
}

export function slotBytes(lsn: Lsn, index: number): Uint8Array {
  const bytes = new Uint8Array(SLOT_BYTES);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, lsn, true);
  view.setBigUint64(8, BigInt(index + 1), true);
  return bytes;
}

