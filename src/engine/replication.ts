// The writer's redo stream to its readers, over TCP. The writer sends every record it
// appends and every VDL it reaches; a reader applies records to the pages it caches once
// an announced VDL covers them, and reports back its read point (which storage must keep
// readable: PGMRPL) and its oldest snapshot (below which versions may be reclaimed).
//
// Frames: u32 length (of what follows) | u8 type | payload.
//   HELLO   (writer -> reader, first): u64 vdl | u32 groups | u64 × groups: each PG's last LSN at or below vdl
//   RECORDS (writer -> reader): u32 count | count × (u64 lsn | u32 page | u8 kind | u8 flags | u32 offset | u32 length | bytes)
//   VDL     (writer -> reader): u64 vdl | f64 the writer's wall-clock time (ms) when it reached it
//           (the reader's replica lag is its own clock at apply minus this; hosts share NTP time)
//   HORIZON (reader -> writer): u64 read point | u64 oldest snapshot
//
// Invariants:
//  R1. A reader receives, after HELLO, every record above HELLO's VDL, in LSN order: the
//      writer sends the records it appended above the VDL right after HELLO, then all new ones.
//  R2. A reader whose connection breaks, or that falls too far behind (the writer drops it
//      when its unsent bytes pass a bound), re-attaches and forgets its cache (C4).

import * as net from 'node:net';
import { listenOn } from '../net/listen.js';
import type { Lsn, PageId } from '../common/index.js';
import type { RedoKind, RedoRecord } from '../page/index.js';

const enum Frame {
  Hello = 1,
  Records = 2,
  Vdl = 3,
  Horizon = 4,
}

export interface StreamRecord {
  lsn: Lsn;
  pageId: PageId;
  kind: RedoKind;
  flags: number;
  offset: number;
  data: Uint8Array;
}

function frame(type: Frame, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 1 + payload.length);
  out[4] = type;
  out.set(payload, 5);
  return out;
}

function u64s(values: Lsn[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((value, index) => view.setBigUint64(index * 8, value));
  return out;
}

function encodeRecords(records: readonly StreamRecord[]): Uint8Array {
  let size = 4;
  for (const record of records) size += 22 + record.data.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, records.length);
  let at = 4;
  for (const record of records) {
    view.setBigUint64(at, record.lsn);
    view.setUint32(at + 8, record.pageId);
    out[at + 12] = record.kind;
    out[at + 13] = record.flags;
    view.setUint32(at + 14, record.offset);
    view.setUint32(at + 18, record.data.length);
    out.set(record.data, at + 22);
    at += 22 + record.data.length;
  }
  return out;
}

function decodeRecords(payload: Uint8Array): StreamRecord[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = view.getUint32(0);
  const records: StreamRecord[] = [];
  let at = 4;
  for (let index = 0; index < count; index++) {
    const length = view.getUint32(at + 18);
    records.push({
      lsn: view.getBigUint64(at),
      pageId: view.getUint32(at + 8) as PageId,
      kind: payload[at + 12] as RedoKind,
      flags: payload[at + 13]!,
      offset: view.getUint32(at + 14),
      data: payload.slice(at + 22, at + 22 + length),
    });
    at += 22 + length;
  }
  return records;
}

/** Splits a byte stream into frames. */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: Frame, payload: Uint8Array) => void) {}
  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (this.buffered.length < 4 + length) return;
      const type = this.buffered[4] as Frame;
      const payload = new Uint8Array(this.buffered.subarray(5, 4 + length));
      this.buffered = this.buffered.subarray(4 + length);
      this.onFrame(type, payload);
    }
  }
}

export interface ReaderState {
  readPoint: Lsn;
  oldestSnapshot: Lsn;
}

/** The writer's side: a server readers attach to. */
export class ReplicationServer {
  private readonly server: net.Server;
  private readonly readers = new Map<net.Socket, ReaderState>();
  /** Records appended above the VDL, for readers that attach now (R1). */
  private recent: StreamRecord[] = [];
  private lastVdl: Lsn = 0n;

  constructor(
    private readonly source: { vdl(): Lsn; lastLsnOfGroups(vdl: Lsn): Lsn[] },
    private readonly options: { unsentBytesMax: number; onDrop?: () => void } = { unsentBytesMax: 64 * 1024 * 1024 },
  ) {
    this.lastVdl = source.vdl();
    this.server = net.createServer((socket) => this.attach(socket));
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return listenOn(this.server, port, host);
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    const vdl = this.source.vdl();
    socket.write(frame(Frame.Hello, new Uint8Array([...u64s([vdl]), ...(() => {
      const groups = this.source.lastLsnOfGroups(vdl);
      const count = new Uint8Array(4);
      new DataView(count.buffer).setUint32(0, groups.length);
      return [...count, ...u64s(groups)];
    })()])));
    const above = this.recent.filter((record) => record.lsn > vdl);
    if (above.length > 0) socket.write(frame(Frame.Records, encodeRecords(above)));
    // Until it reports, the reader reads at the VDL it was told (storage keeps that readable).
    this.readers.set(socket, { readPoint: vdl, oldestSnapshot: vdl });
    const reader = new FrameReader((type, payload) => {
      if (type !== Frame.Horizon) return;
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      this.readers.set(socket, { readPoint: view.getBigUint64(0), oldestSnapshot: view.getBigUint64(8) });
    });
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.readers.delete(socket));
  }

  /** The writer appended these records (one mini-transaction). */
  appended(records: readonly StreamRecord[]): void {
    for (const record of records) this.recent.push(record);
    if (this.readers.size === 0) return;
    this.broadcast(frame(Frame.Records, encodeRecords(records)));
  }

  /** The VDL moved. */
  advanced(vdl: Lsn): void {
    if (vdl <= this.lastVdl) return;
    this.lastVdl = vdl;
    let keep = 0;
    while (keep < this.recent.length && this.recent[keep]!.lsn <= vdl) keep++;
    if (keep > 0) this.recent = this.recent.slice(keep);
    if (this.readers.size > 0) {
      const payload = new Uint8Array(16);
      const view = new DataView(payload.buffer);
      view.setBigUint64(0, vdl);
      view.setFloat64(8, wallClockMs());
      this.broadcast(frame(Frame.Vdl, payload));
    }
  }

  private broadcast(bytes: Uint8Array): void {
    for (const socket of this.readers.keys()) {
      // R2: a reader that cannot keep up is dropped; it re-attaches and starts afresh.
      if (socket.writableLength > this.options.unsentBytesMax) {
        socket.destroy();
        this.options.onDrop?.();
        continue;
      }
      socket.write(bytes);
    }
  }

  /** What attached readers last reported. */
  readerStates(): ReaderState[] {
    return [...this.readers.values()];
  }

  get readerCount(): number {
    return this.readers.size;
  }

  async close(): Promise<void> {
    for (const socket of this.readers.keys()) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface ReplicationHandlers {
  hello(vdl: Lsn, lastLsnOfGroups: Lsn[]): void;
  records(records: StreamRecord[]): void;
  /** writerTimeMs: the writer's wall clock when it reached vdl. */
  vdl(vdl: Lsn, writerTimeMs: number): void;
  closed(): void;
}

/** Wall-clock milliseconds with sub-millisecond resolution (replica lag is a few ms). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The reader's side: one connection to the writer. */
export class ReplicationClient {
  private readonly socket: net.Socket;

  constructor(host: string, port: number, handlers: ReplicationHandlers) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    const reader = new FrameReader((type, payload) => {
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      if (type === Frame.Hello) {
        const vdl = view.getBigUint64(0);
        const count = view.getUint32(8);
        const groups: Lsn[] = [];
        for (let index = 0; index < count; index++) groups.push(view.getBigUint64(12 + index * 8));
        handlers.hello(vdl, groups);
      } else if (type === Frame.Records) handlers.records(decodeRecords(payload));
      else if (type === Frame.Vdl) handlers.vdl(view.getBigUint64(0), view.getFloat64(8));
    });
    this.socket.on('data', (chunk) => reader.push(chunk));
    this.socket.on('error', () => this.socket.destroy());
    this.socket.on('close', () => handlers.closed());
  }

  report(state: ReaderState): void {
    if (!this.socket.writable) return;
    this.socket.write(frame(Frame.Horizon, u64s([state.readPoint, state.oldestSnapshot])));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A redo record as the page layer applies it. */
export function asRedoRecord(record: StreamRecord): RedoRecord {
  return { lsn: record.lsn, prevLsnOfThisPg: 0n, pageId: record.pageId, epoch: 0 as RedoRecord['epoch'], flags: record.flags, kind: record.kind, offset: record.offset, data: record.data };
}
