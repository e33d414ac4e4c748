// The storage protocol's messages and their pure codec (bytes in, messages out).
//
// Frame: u32 frameBytes | u32 checksum(rest) | u8 kind | u32 headerBytes | header (JSON,
// bigints as "<digits>n") | u32 recordCount | records (redo binary layout) | u32 blobBytes | blob.
// Records keep their own checksums end to end; the frame checksum covers the rest, so a
// bit flip anywhere on the wire is detected and the frame dropped.

import { checksum, concatBytes, nameBytes, type Epoch, type Lsn, type NodeId, type PageId, type SegmentId } from '../common/index.js';
import { decodeRedo, encodeRedo, encodedRedoBytes, type RedoRecord } from '../page/index.js';

/** "node:<id>" for storage nodes, "client:<name>" for volume clients. */
export type Address = string;

export const nodeAddress = (node: NodeId): Address => `node:${node}`;

export interface TruncationEntry {
  epoch: Epoch;
  /** Every record above this LSN written before `epoch` is discarded. */
  truncateAboveLsn: Lsn;
}

export type AckStatus = 'ok' | 'fenced' | 'stale_epoch' | 'unknown_segment' | 'disk_error' | 'overloaded' | 'not_readable' | 'checksum_mismatch' | 'malformed';

export interface WriteBatch {
  kind: 'write';
  from: Address;
  segment: SegmentId;
  epoch: Epoch;
  /** A VDL the writer had reached when it sent this: all records at or below are durable. */
  vdlHint: Lsn;
  /** Versions and records below this may be garbage-collected (PGMRPL, backtrack window). */
  retentionLsn: Lsn;
  records: RedoRecord[];
}

export interface WriteAck {
  kind: 'write-ack';
  segment: SegmentId;
  status: AckStatus;
  dataEpoch: Epoch;
  fencedEpoch: Epoch;
  /** Segment complete LSN: every record of this PG at or below is durable here. */
  scl: Lsn;
  /** Bumped on every node start: SCLs of a newer incarnation replace older ones. */
  incarnation: number;
  /** The segment lost data it may have acknowledged and is catching up: count it in no quorum. */
  repairing: boolean;
  /** Whether a repairing segment already knows the point it must reach. */
  repairTargetKnown: boolean;
  /** Durable and increasing: a reordered older ack must not undo a newer repair state. */
  controlSequence: number;
}

/**
 * Tells a repairing segment how far it must catch up before it counts in quorums again: the
 * writer's VCL, which covers everything the segment may have acknowledged before its loss.
 */
export interface RepairTarget {
  kind: 'repair-target';
  from: Address;
  segment: SegmentId;
  targetLsn: Lsn;
}

export interface GetPage {
  kind: 'get-page';
  from: Address;
  requestId: number;
  segment: SegmentId;
  epoch: Epoch;
  pageId: PageId;
  atLsn: Lsn;
  /**
   * The PG's last record at or below atLsn, as the client knows it: the segment serves the
   * read only if its SCL reaches this (it cannot know about LSNs of other PGs itself).
   */
  requiredScl: Lsn;
}

export interface PageReply {
  kind: 'page';
  requestId: number;
  segment: SegmentId;
  status: AckStatus;
  /** Sealed page (bytes + crc) when status is ok. */
  page: Uint8Array;
}

export interface RecoveryQuery {
  kind: 'recovery-query';
  from: Address;
  requestId: number;
  segment: SegmentId;
  newEpoch: Epoch;
}

export interface RecoveryReply {
  kind: 'recovery-reply';
  requestId: number;
  segment: SegmentId;
  status: AckStatus;
  dataEpoch: Epoch;
  scl: Lsn;
  vdlHint: Lsn;
  /** The chain's last LSN at or below vdlHint (0 when the PG has no record there). */
  chainLsnAtHint: Lsn;
  /** Chain records above vdlHint up to scl: [lsn, isCpl]. */
  chain: Array<[Lsn, boolean]>;
  /** A repairing segment (damaged, hydrating or catching up) is not part of a read quorum. */
  repairing: boolean;
  incarnation: number;
}

export interface Truncate {
  kind: 'truncate';
  from: Address;
  requestId: number;
  segment: SegmentId;
  history: TruncationEntry[];
  peers: NodeId[];
}

export interface TruncateAck {
  kind: 'truncate-ack';
  requestId: number;
  segment: SegmentId;
  status: AckStatus;
  dataEpoch: Epoch;
  scl: Lsn;
  incarnation: number;
}

export interface GossipPull {
  kind: 'gossip-pull';
  segment: SegmentId;
  fromSegment: SegmentId;
  dataEpoch: Epoch;
  scl: Lsn;
  history: TruncationEntry[];
}

export interface GossipPush {
  kind: 'gossip-push';
  segment: SegmentId;
  fromSegment: SegmentId;
  dataEpoch: Epoch;
  vdlHint: Lsn;
  history: TruncationEntry[];
  /** The sender no longer keeps records this far back: the receiver must hydrate. */
  hydrateFromLsn: Lsn;
  records: RedoRecord[];
}

export interface Membership {
  kind: 'membership';
  from: Address;
  requestId: number;
  segment: SegmentId;
  peers: NodeId[];
  history: TruncationEntry[];
  /** A segment created with its volume starts empty; any later one hydrates from a peer. */
  bootstrap: boolean;
}

export interface MembershipAck {
  kind: 'membership-ack';
  requestId: number;
  segment: SegmentId;
  status: AckStatus;
  scl: Lsn;
  incarnation: number;
}

export interface HydrateRequest {
  kind: 'hydrate-request';
  segment: SegmentId;
  fromSegment: SegmentId;
  dataEpoch: Epoch;
  /** 0n on the first request: the peer picks the snapshot LSN. */
  atLsn: Lsn;
  afterPageId: number;
  /** Names one hydration attempt, so late or duplicated chunks of another are ignored. */
  session: number;
}

export interface HydrateChunk {
  kind: 'hydrate-chunk';
  segment: SegmentId;
  fromSegment: SegmentId;
  status: AckStatus;
  dataEpoch: Epoch;
  atLsn: Lsn;
  /** Chain LSN at atLsn (the last record at or below it), to continue the chain from. */
  chainLsn: Lsn;
  session: number;
  /** The request's afterPageId: a chunk is accepted only in order. */
  afterPageId: number;
  pageIds: number[];
  done: boolean;
  /** Sealed pages, concatenated in pageIds order. */
  pages: Uint8Array;
}

export interface StatusRequest {
  kind: 'status-request';
  from: Address;
  requestId: number;
}

export interface StatusReply {
  kind: 'status-reply';
  requestId: number;
  node: NodeId;
  availabilityZone: string;
  incarnation: number;
  segments: Array<{ segment: SegmentId; dataEpoch: Epoch; scl: Lsn; gcLsn: Lsn; hydrating: boolean; repairing: boolean }>;
}

/**
 * Drops every segment of a volume on the receiving node (delete-db-cluster): durable before
 * the ack, which says how many segments went (0 when they were gone already).
 */
export interface DropVolume {
  kind: 'drop-volume';
  from: Address;
  requestId: number;
  /** The volume's name; '' for a fleet's first volume, whose segment names carry none. */
  volume: string;
}

export interface DropVolumeAck {
  kind: 'drop-volume-ack';
  requestId: number;
  volume: string;
  status: AckStatus;
  dropped: number;
}

export interface Hello {
  kind: 'hello';
  from: Address;
}

export type Message =
  | WriteBatch
  | WriteAck
  | RepairTarget
  | GetPage
  | PageReply
  | RecoveryQuery
  | RecoveryReply
  | Truncate
  | TruncateAck
  | GossipPull
  | GossipPush
  | Membership
  | MembershipAck
  | HydrateRequest
  | HydrateChunk
  | StatusRequest
  | DropVolume
  | DropVolumeAck
  | StatusReply
  | Hello;

export type MessageKind = Message['kind'];

const kindCodes: Record<MessageKind, number> = {
  write: 1,
  'write-ack': 2,
  'get-page': 3,
  page: 4,
  'recovery-query': 5,
  'recovery-reply': 6,
  truncate: 7,
  'truncate-ack': 8,
  'gossip-pull': 9,
  'gossip-push': 10,
  membership: 11,
  'membership-ack': 12,
  'hydrate-request': 13,
  'hydrate-chunk': 14,
  'status-request': 15,
  'status-reply': 16,
  hello: 17,
  'repair-target': 18,
  'drop-volume': 19,
  'drop-volume-ack': 20,
};
const kindsByCode = new Map<number, MessageKind>(Object.entries(kindCodes).map(([kind, code]) => [code, kind as MessageKind]));

const bigintPattern = /^-?\d+n$/;

function headerReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}
function headerReviver(_key: string, value: unknown): unknown {
  return typeof value === 'string' && bigintPattern.test(value) ? BigInt(value.slice(0, -1)) : value;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

// The messages of the write and read paths (and gossip, sent all the time) carry their
// header in a fixed binary layout instead of JSON: a JSON header with a bigint reviver cost
// more than the records it described. Field order is the layout; `kind` is the frame's.
type FieldType = 'string' | 'number' | 'lsn' | 'boolean' | 'status' | 'history';
type Layout = ReadonlyArray<readonly [string, FieldType]>;
const binaryLayouts: Partial<Record<MessageKind, Layout>> = {
  write: [['from', 'string'], ['segment', 'string'], ['epoch', 'number'], ['vdlHint', 'lsn'], ['retentionLsn', 'lsn']],
  'write-ack': [
    ['segment', 'string'], ['status', 'status'], ['dataEpoch', 'number'], ['fencedEpoch', 'number'], ['scl', 'lsn'], ['incarnation', 'number'],
    ['repairing', 'boolean'], ['repairTargetKnown', 'boolean'], ['controlSequence', 'number'],
  ],
  'get-page': [['from', 'string'], ['requestId', 'number'], ['segment', 'string'], ['epoch', 'number'], ['pageId', 'number'], ['atLsn', 'lsn'], ['requiredScl', 'lsn']],
  page: [['requestId', 'number'], ['segment', 'string'], ['status', 'status']],
  'gossip-pull': [['segment', 'string'], ['fromSegment', 'string'], ['dataEpoch', 'number'], ['scl', 'lsn'], ['history', 'history']],
  'gossip-push': [['segment', 'string'], ['fromSegment', 'string'], ['dataEpoch', 'number'], ['vdlHint', 'lsn'], ['history', 'history'], ['hydrateFromLsn', 'lsn']],
};
const statuses: readonly AckStatus[] = ['ok', 'fenced', 'stale_epoch', 'unknown_segment', 'disk_error', 'overloaded', 'not_readable', 'checksum_mismatch', 'malformed'];
const statusCodes = new Map<AckStatus, number>(statuses.map((status, code) => [status, code]));
const LSN_MAX = (1n << 64n) - 1n;

function utf8(text: string): Uint8Array {
  const bytes = nameBytes(text);
  if (bytes.length > 0xffff) throw new Error('header string too long');
  return bytes;
}

function encodeBinaryHeader(layout: Layout, header: Record<string, unknown>): Uint8Array {
  let size = 0;
  for (const [name, type] of layout) {
    const value = header[name];
    if (type === 'string') size += 2 + utf8(value as string).length;
    else if (type === 'history') size += 2 + (value as TruncationEntry[]).length * 16;
    else size += type === 'number' || type === 'lsn' ? 8 : 1;
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  const putLsn = (lsn: Lsn): void => {
    if (lsn < 0n || lsn > LSN_MAX) throw new Error(`LSN out of range: ${lsn}`);
    view.setBigUint64(at, lsn, true);
    at += 8;
  };
  for (const [name, type] of layout) {
    const value = header[name];
    switch (type) {
      case 'string': {
        const text = utf8(value as string);
        view.setUint16(at, text.length, true);
        bytes.set(text, at + 2);
        at += 2 + text.length;
        break;
      }
      case 'number':
        view.setFloat64(at, value as number, true);
        at += 8;
        break;
      case 'lsn':
        putLsn(value as Lsn);
        break;
      case 'boolean':
        bytes[at++] = value ? 1 : 0;
        break;
      case 'status':
        bytes[at++] = statusCodes.get(value as AckStatus)!;
        break;
      case 'history': {
        const entries = value as TruncationEntry[];
        view.setUint16(at, entries.length, true);
        at += 2;
        for (const entry of entries) {
          view.setFloat64(at, entry.epoch, true);
          at += 8;
          putLsn(entry.truncateAboveLsn);
        }
        break;
      }
    }
  }
  return bytes;
}

function decodeBinaryHeader(layout: Layout, kind: MessageKind, frame: Uint8Array, start: number, end: number): Record<string, unknown> {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const header: Record<string, unknown> = { kind };
  let at = start;
  const need = (count: number): void => {
    if (at + count > end) throw new Error('binary header past its end');
  };
  for (const [name, type] of layout) {
    switch (type) {
      case 'string': {
        need(2);
        const length = view.getUint16(at, true);
        need(2 + length);
        header[name] = textDecoder.decode(frame.subarray(at + 2, at + 2 + length));
        at += 2 + length;
        break;
      }
      case 'number':
        need(8);
        header[name] = view.getFloat64(at, true);
        at += 8;
        break;
      case 'lsn':
        need(8);
        header[name] = view.getBigUint64(at, true);
        at += 8;
        break;
      case 'boolean':
        need(1);
        header[name] = frame[at++] === 1;
        break;
      case 'status': {
        need(1);
        const status = statuses[frame[at++]!];
        if (status === undefined) throw new Error('unknown status code');
        header[name] = status;
        break;
      }
      case 'history': {
        need(2);
        const count = view.getUint16(at, true);
        at += 2;
        need(count * 16);
        const entries: TruncationEntry[] = [];
        for (let index = 0; index < count; index++) {
          entries.push({ epoch: view.getFloat64(at, true) as Epoch, truncateAboveLsn: view.getBigUint64(at + 8, true) });
          at += 16;
        }
        header[name] = entries;
        break;
      }
    }
  }
  if (at !== end) throw new Error('binary header has trailing bytes');
  return header;
}

export const FRAME_PREFIX_BYTES = 8;

/** Encodes a message into one frame (length and checksum included). */
export function encodeMessage(message: Message): Uint8Array {
  const { records, blob, header } = splitMessage(message);
  const layout = binaryLayouts[message.kind];
  const headerBytes = layout ? encodeBinaryHeader(layout, header as Record<string, unknown>) : textEncoder.encode(JSON.stringify(header, headerReplacer));
  let recordBytes = 0;
  for (const record of records) recordBytes += encodedRedoBytes(record);
  const total = FRAME_PREFIX_BYTES + 1 + 4 + headerBytes.length + 4 + recordBytes + 4 + blob.length;
  const frame = new Uint8Array(total);
  const view = new DataView(frame.buffer);
  view.setUint32(0, total, true);
  let at = FRAME_PREFIX_BYTES;
  view.setUint8(at, kindCodes[message.kind]);
  at += 1;
  view.setUint32(at, headerBytes.length, true);
  at += 4;
  frame.set(headerBytes, at);
  at += headerBytes.length;
  view.setUint32(at, records.length, true);
  at += 4;
  for (const record of records) {
    encodeRedo(record, frame, at);
    at += encodedRedoBytes(record);
  }
  view.setUint32(at, blob.length, true);
  at += 4;
  frame.set(blob, at);
  view.setUint32(4, checksum(frame, FRAME_PREFIX_BYTES, total), true);
  return frame;
}

function splitMessage(message: Message): { records: RedoRecord[]; blob: Uint8Array; header: object } {
  switch (message.kind) {
    case 'write':
    case 'gossip-push': {
      const { records, ...header } = message;
      return { records, blob: new Uint8Array(0), header };
    }
    case 'page': {
      const { page, ...header } = message;
      return { records: [], blob: page, header };
    }
    case 'hydrate-chunk': {
      const { pages, ...header } = message;
      return { records: [], blob: pages, header };
    }
    default:
      return { records: [], blob: new Uint8Array(0), header: message };
  }
}

export type FrameError = 'frame_too_large' | 'malformed_frame' | 'checksum_mismatch';
export type DecodedFrame = { ok: true; message: Message } | { ok: false; error: FrameError; detail: string };

/** Decodes one complete frame (as cut by FrameSplitter). */
export function decodeMessage(frame: Uint8Array): DecodedFrame {
  if (frame.length < FRAME_PREFIX_BYTES + 13) return { ok: false, error: 'malformed_frame', detail: 'frame shorter than its fixed fields' };
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  if (view.getUint32(0, true) !== frame.length) return { ok: false, error: 'malformed_frame', detail: 'length field disagrees' };
  if (checksum(frame, FRAME_PREFIX_BYTES) !== view.getUint32(4, true)) return { ok: false, error: 'checksum_mismatch', detail: 'frame checksum' };
  try {
    let at = FRAME_PREFIX_BYTES;
    const kind = kindsByCode.get(view.getUint8(at));
    if (kind === undefined) return { ok: false, error: 'malformed_frame', detail: 'unknown message kind' };
    at += 1;
    const headerBytes = view.getUint32(at, true);
    at += 4;
    if (at + headerBytes > frame.length) return { ok: false, error: 'malformed_frame', detail: 'header past end' };
    const layout = binaryLayouts[kind];
    const header = layout ? decodeBinaryHeader(layout, kind, frame, at, at + headerBytes) : (JSON.parse(textDecoder.decode(frame.subarray(at, at + headerBytes)), headerReviver) as Record<string, unknown>);
    at += headerBytes;
    const recordCount = view.getUint32(at, true);
    at += 4;
    const records: RedoRecord[] = [];
    for (let index = 0; index < recordCount; index++) {
      const decoded = decodeRedo(frame, at);
      if (!decoded.ok) return { ok: false, error: decoded.error === 'checksum_mismatch' ? 'checksum_mismatch' : 'malformed_frame', detail: `record ${index}: ${decoded.error}` };
      records.push(decoded.value);
      at += decoded.bytes;
    }
    if (at + 4 > frame.length) return { ok: false, error: 'malformed_frame', detail: 'blob length past end' };
    const blobBytes = view.getUint32(at, true);
    at += 4;
    if (at + blobBytes !== frame.length) return { ok: false, error: 'malformed_frame', detail: 'trailing bytes' };
    const blob = frame.slice(at, at + blobBytes);
    if (header['kind'] !== kind) return { ok: false, error: 'malformed_frame', detail: 'kind disagrees with header' };
    const message = { ...header } as Record<string, unknown>;
    if (kind === 'write' || kind === 'gossip-push') message['records'] = records;
    if (kind === 'page') message['page'] = blob;
    if (kind === 'hydrate-chunk') message['pages'] = blob;
    return { ok: true, message: message as unknown as Message };
  } catch (error) {
    return { ok: false, error: 'malformed_frame', detail: (error as Error).message };
  }
}

/**
 * Cuts a byte stream into frames. Pure: push bytes, take frames. A frame larger than the
 * limit is an error for the whole stream (the peer is broken or hostile), since the
 * stream cannot be resynchronised after it.
 */
export class FrameSplitter {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  constructor(private readonly frameBytesMax: number) {}

  push(bytes: Uint8Array): { frames: Uint8Array[]; error?: FrameError } {
    this.chunks.push(bytes);
    this.buffered += bytes.length;
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const frameBytes = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
      if (frameBytes > this.frameBytesMax) return { frames, error: 'frame_too_large' };
      if (frameBytes < FRAME_PREFIX_BYTES) return { frames, error: 'malformed_frame' };
      if (this.buffered < frameBytes) break;
      frames.push(this.take(frameBytes));
    }
    return { frames };
  }

  private peek(count: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= count) return first.subarray(0, count);
    this.chunks = [concatBytes(this.chunks)];
    return this.chunks[0]!.subarray(0, count);
  }

  private take(count: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length < count) this.chunks = [concatBytes(this.chunks)];
    const joined = this.chunks[0]!;
    const frame = joined.subarray(0, count);
    if (joined.length === count) this.chunks.shift();
    else this.chunks[0] = joined.subarray(count);
    this.buffered -= count;
    return frame;
  }
}

