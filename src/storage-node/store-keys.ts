// Keys of a node's page store. Fixed-width hex keeps byte order equal to numeric order,
// so one ordered-store range query finds "the newest version of page P at or below L".
//   m/<segment>                     segment control state (JSON)
//   v/<segment>/<page>/<lsn>        sealed page version materialized at lsn
//   p/<segment>/<page>/<lsn>        redo record (binary), by page
//   l/<segment>/<lsn>               page id of the record at lsn (the log order index)
//   n/incarnation                   node incarnation counter

import type { Lsn, SegmentId } from '../common/index.js';

export const HYDRATION_MARKER_PAGE = 0xffffffff;

const hexLsn = (lsn: Lsn): string => lsn.toString(16).padStart(16, '0');
const hexPage = (page: number): string => page.toString(16).padStart(8, '0');

export const metaKey = (segment: SegmentId): string => `m/${segment}`;
export const metaRange = { start: 'm/', end: 'm0' };
export const versionKey = (segment: SegmentId, page: number, lsn: Lsn): string => `v/${segment}/${hexPage(page)}/${hexLsn(lsn)}`;
export const versionPrefix = (segment: SegmentId, page: number): string => `v/${segment}/${hexPage(page)}/`;
export const versionsOfSegment = (segment: SegmentId): { start: string; end: string } => ({ start: `v/${segment}/`, end: `v/${segment}0` });
export const recordKey = (segment: SegmentId, page: number, lsn: Lsn): string => `p/${segment}/${hexPage(page)}/${hexLsn(lsn)}`;
export const recordsOfSegment = (segment: SegmentId): { start: string; end: string } => ({ start: `p/${segment}/`, end: `p/${segment}0` });
export const ordersOfSegment = (segment: SegmentId): { start: string; end: string } => ({ start: `l/${segment}/`, end: `l/${segment}0` });
export const recordPrefix = (segment: SegmentId, page: number): string => `p/${segment}/${hexPage(page)}/`;
export const orderKey = (segment: SegmentId, lsn: Lsn): string => `l/${segment}/${hexLsn(lsn)}`;
export const orderPrefix = (segment: SegmentId): string => `l/${segment}/`;
export const INCARNATION_KEY = 'n/incarnation';

/** The LSN at the end of a v/, p/ or l/ key. */
export function lsnOfKey(key: string): Lsn {
  return BigInt(`0x${key.slice(key.length - 16)}`);
}
/** The page id in a v/ or p/ key. */
export function pageOfKey(key: string): number {
  return Number.parseInt(key.slice(key.length - 25, key.length - 17), 16);
}
export function encodeU32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}
export function decodeU32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}
export { hexLsn, hexPage };
