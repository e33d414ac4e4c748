// Tuple versions in B+trees. A table is a clustered B+tree whose entries are versions:
//   key   = row key (the encoded primary key, or a hidden row id) ‖ xmin (u32 BE) ‖ cmin (u32 BE)
//   value = xmax (u32 LE) ‖ cmax (u32 LE) ‖ the encoded row
// so the versions of one row are neighbours, a new version is a new entry (a small redo
// record), and a delete or an update stamps xmax/cmax in place (8 bytes of redo). A
// secondary index holds one entry per version: index key ‖ version key, with no value.
//
// The visibility rule (MVCC, invariant 5 of DESIGN.md): a version is visible to a snapshot
// (an LSN) iff its creator committed at or before the snapshot and its deleter did not;
// to its own transaction, iff made by an earlier command (cmin < current command) and not
// deleted by an earlier command of it. Aborted and running transactions' versions are
// invisible to everyone else, so a crash needs no undo.

import { copyBytes, type Lsn } from '../common/index.js';
import type { BTree } from './btree.js';
import { encodeKey, type Value } from './codec.js';
import type { Xid, XactStatus, XidState } from './xact-status.js';

export const VERSION_SUFFIX_BYTES = 8;
export const VERSION_HEADER_BYTES = 8;

export function versionKey(rowKey: Uint8Array, xmin: Xid, cmin: number): Uint8Array {
  const key = new Uint8Array(rowKey.length + VERSION_SUFFIX_BYTES);
  key.set(rowKey);
  const view = new DataView(key.buffer);
  view.setUint32(rowKey.length, xmin);
  view.setUint32(rowKey.length + 4, cmin);
  return key;
}

export interface VersionRef {
  /** The whole version key (row key ‖ xmin ‖ cmin). */
  key: Uint8Array;
  rowKey: Uint8Array;
  xmin: Xid;
  cmin: number;
  xmax: Xid;
  cmax: number;
  /** The encoded row. */
  row: Uint8Array;
}

const u32be = (bytes: Uint8Array, at: number): number => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
const u32le = (bytes: Uint8Array, at: number): number => (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;

export function parseVersion(key: Uint8Array, value: Uint8Array): VersionRef {
  const split = key.length - VERSION_SUFFIX_BYTES;
  return {
    key,
    rowKey: key.subarray(0, split),
    xmin: u32be(key, split),
    cmin: u32be(key, split + 4),
    xmax: u32le(value, 0),
    cmax: u32le(value, 4),
    row: value.subarray(VERSION_HEADER_BYTES),
  };
}

/**
 * A version read from a leaf cell of a table's tree (the cell's key and row copied out),
 * or null when the key is not `rowKey` ‖ version suffix (K2 rules that out; be strict).
 */
export function versionFromCell(rowKey: Uint8Array, page: Uint8Array, keyAt: number, keyBytes: number, valueAt: number, valueBytes: number): VersionRef | null {
  if (keyBytes !== rowKey.length + VERSION_SUFFIX_BYTES) return null;
  const split = keyAt + rowKey.length;
  return {
    key: page.slice(keyAt, keyAt + keyBytes),
    rowKey,
    xmin: u32be(page, split),
    cmin: u32be(page, split + 4),
    xmax: u32le(page, valueAt),
    cmax: u32le(page, valueAt + 4),
    row: copyBytes(page, valueAt + VERSION_HEADER_BYTES, valueAt + valueBytes),
  };
}

export function versionValue(row: Uint8Array, xmax: Xid = 0, cmax = 0): Uint8Array {
  const value = new Uint8Array(VERSION_HEADER_BYTES + row.length);
  const view = new DataView(value.buffer);
  view.setUint32(0, xmax, true);
  view.setUint32(4, cmax, true);
  value.set(row, VERSION_HEADER_BYTES);
  return value;
}

export function xmaxPatch(xmax: Xid, cmax: number): Uint8Array {
  const patch = new Uint8Array(8);
  const view = new DataView(patch.buffer);
  view.setUint32(0, xmax, true);
  view.setUint32(4, cmax, true);
  return patch;
}

/** What a reader needs to judge versions: its snapshot, its own transaction, its command. */
export interface Viewer {
  snapshot: Lsn;
  /** The reader's own live xids (its transaction and subtransactions not rolled back). */
  own: ReadonlySet<Xid>;
  /** The reader's current command: own versions of earlier commands are visible. */
  cid: number;
}

/** How a writer's xid looks to a viewer. */
export type Seen = 'own-earlier' | 'own-current' | 'committed-visible' | 'committed-later' | 'running' | 'aborted';

export async function see(status: XactStatus, viewer: Viewer, xid: Xid, cid: number): Promise<Seen> {
  return seenOf(viewer, xid, cid, viewer.own.has(xid) ? RUNNING_SELF : await status.state(xid));
}

export type Visibility = { visible: boolean; created: Seen; deleted: Seen | undefined };

function seenOf(viewer: Viewer, xid: Xid, cid: number, state: XidState): Seen {
  if (viewer.own.has(xid)) return cid < viewer.cid ? 'own-earlier' : 'own-current';
  if (state.state === 'committed') return state.lsn <= viewer.snapshot ? 'committed-visible' : 'committed-later';
  return state.state;
}

/** isVisible in one synchronous step, when the states it needs are in memory; else undefined. */
export function isVisibleIfKnown(status: XactStatus, viewer: Viewer, version: VersionRef): Visibility | undefined {
  const creator = viewer.own.has(version.xmin) ? RUNNING_SELF : status.known(version.xmin);
  if (creator === undefined) return undefined;
  const created = seenOf(viewer, version.xmin, version.cmin, creator);
  if (created !== 'own-earlier' && created !== 'committed-visible') return { visible: false, created, deleted: undefined };
  if (version.xmax === 0) return { visible: true, created, deleted: undefined };
  const deleter = viewer.own.has(version.xmax) ? RUNNING_SELF : status.known(version.xmax);
  if (deleter === undefined) return undefined;
  const deleted = seenOf(viewer, version.xmax, version.cmax, deleter);
  return { visible: deleted !== 'own-earlier' && deleted !== 'committed-visible', created, deleted };
}
const RUNNING_SELF: XidState = { state: 'running' };

/** The visibility rule, without a promise when the states it needs are in memory. */
export function visibility(status: XactStatus, viewer: Viewer, version: VersionRef): Visibility | Promise<Visibility> {
  return isVisibleIfKnown(status, viewer, version) ?? isVisible(status, viewer, version);
}

/** The visibility rule. */
export async function isVisible(status: XactStatus, viewer: Viewer, version: VersionRef): Promise<{ visible: boolean; created: Seen; deleted: Seen | undefined }> {
  const created = await see(status, viewer, version.xmin, version.cmin);
  if (created !== 'own-earlier' && created !== 'committed-visible') return { visible: false, created, deleted: undefined };
  if (version.xmax === 0) return { visible: true, created, deleted: undefined };
  const deleted = await see(status, viewer, version.xmax, version.cmax);
  return { visible: deleted !== 'own-earlier' && deleted !== 'committed-visible', created, deleted };
}

/** The versions of each row in [from, to) of a table's tree, one array per row key, in key order. */
export async function* rowVersions(tree: BTree, from?: Uint8Array, to?: Uint8Array): AsyncGenerator<VersionRef[]> {
  let group: VersionRef[] = [];
  for await (const [key, value] of tree.scan(from, to)) {
    const version = parseVersion(key, value);
    if (group.length > 0 && !sameBytes(group[0]!.rowKey, version.rowKey)) {
      yield group;
      group = [];
    }
    group.push(version);
  }
  if (group.length > 0) yield group;
}

/** Byte-for-byte equality of two keys. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

/** The key of a version's entry in a secondary index over `columns`: index key ‖ version key. */
export function indexEntry(columns: readonly number[], values: readonly Value[], versionKeyBytes: Uint8Array): { indexKey: Uint8Array; entry: Uint8Array } {
  const indexKey = encodeKey(columns.map((column) => values[column]!));
  const entry = new Uint8Array(indexKey.length + versionKeyBytes.length);
  entry.set(indexKey);
  entry.set(versionKeyBytes, indexKey.length);
  return { indexKey, entry };
}
