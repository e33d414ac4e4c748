// A database instance over the shared volume: the writer (owns the redo log, streams it to
// readers, runs vacuum) or a reader (applies the writer's redo stream to the pages it
// caches, serves read-only transactions at its read point). Both the SQL instance process
// and the engine test server are built on these.

import { millisecondsFromEnv, type Lsn } from '../common/index.js';
import { BufferCache } from '../engine/buffer-cache.js';
import { isFormatted } from '../engine/btree.js';
import { Database } from '../engine/database.js';
import { EngineError } from '../engine/errors.js';
import { volumePageStore, type PageStore } from '../engine/page-store.js';
import { asRedoRecord, ReplicationClient, ReplicationServer, wallClockMs, type StreamRecord } from '../engine/replication.js';
import { Vacuum } from '../engine/vacuum.js';
import { connectVolume, readMetadata } from '../volume-client/index.js';
import type { NodeId } from '../common/index.js';
import type { PeerAddress } from '../net/tcp-transport.js';

export type NodeAddresses = Map<NodeId, PeerAddress>;

export interface InstanceOptions {
  metadataPath: string;
  nodes: NodeAddresses;
  cacheBytes: number;
}

export interface WriterInstance {
  db: Database;
  replicationPort: number;
  volumeOpenMs: number;
  databaseOpenMs: number;
  vdl: () => Lsn;
  close: () => Promise<void>;
}

/** Opens the volume as its writer (volume recovery), then the database; creates it on a fresh volume. */
export async function openWriter(options: InstanceOptions & { replicationPort: number; readerUnsentBytesMax: number; onReaderDropped?: () => void }): Promise<WriterInstance> {
  // Redo leaves when a commit waits for it (one batch per transaction, not per mini-transaction).
  const connection = connectVolume({ name: `writer-${process.pid}`, metadataPath: options.metadataPath, nodes: options.nodes, retention: 'manual', limits: { heldRecordsMax: 256 } });
  const started = performance.now();
  await connection.open();
  const volumeOpenMs = performance.now() - started;
  const client = connection.client;
  const groups = readMetadata(options.metadataPath).groups.length;
  const replication = new ReplicationServer(
    {
      vdl: () => client.vdl,
      lastLsnOfGroups: (vdl) => Array.from({ length: groups }, (_, group) => client.requiredSclFor(group, vdl)),
    },
    { unsentBytesMax: options.readerUnsentBytesMax, onDrop: () => options.onReaderDropped?.() },
  );
  const store = volumePageStore(connection, (records) => replication.appended(records.map((record): StreamRecord => ({ lsn: record.lsn, pageId: record.pageId, kind: record.kind, flags: record.flags, offset: record.offset, data: record.data }))));
  client.onVdlAdvance = (vdl) => replication.advanced(vdl);
  const cache = new BufferCache(store, { bytesMax: options.cacheBytes });
  const databaseStarted = performance.now();
  const db = (await isFormatted(cache)) ? await Database.open(cache) : await Database.create(cache);
  const databaseOpenMs = performance.now() - databaseStarted;
  // Passes look only at rows that changed (V4), so they can be frequent: a hot row (pgbench's
  // branch) keeps a short version chain, which every update of it reads.
  // A row changed once (one of many accounts) waits up to 10 s (V5), so that rows sharing a
  // leaf lose their dead versions in one redo record, not one each.
  const vacuum = new Vacuum(db, { intervalMs: 100, coldRowDelayMs: millisecondsFromEnv('BOREAL_VACUUM_COLD_MS', 10_000, 3_600_000) });
  // PGMRPL: storage keeps what the oldest reader's read point needs; vacuum keeps what any snapshot needs.
  const retention = setInterval(() => {
    let keep = client.vdl;
    const loading = cache.oldestLoadLsn();
    if (loading !== undefined && loading < keep) keep = loading;
    db.readerSnapshots.clear();
    for (const [index, state] of replication.readerStates().entries()) {
      if (state.readPoint < keep) keep = state.readPoint;
      db.readerSnapshots.set(String(index), state.oldestSnapshot);
    }
    if (client.state === 'open') client.retentionLsn = keep;
  }, 20);
  vacuum.start();
  const replicationPort = await replication.listen(options.replicationPort);
  return {
    db,
    replicationPort,
    volumeOpenMs,
    databaseOpenMs,
    vdl: () => client.vdl,
    close: async () => {
      clearInterval(retention);
      await vacuum.stop();
      await replication.close();
      await connection.close();
    },
  };
}

export interface ReplicaLag {
  /** The newest sample: writer reached a VDL -> this reader applied it, in ms. */
  lastMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Samples in the window (the last 60 s, at most 20,000). */
  samples: number;
}

/** Replica lag samples of the last minute (one per VDL the writer announces). */
export class LagWindow {
  private times: number[] = [];
  private values: number[] = [];

  add(nowMs: number, lagMs: number): void {
    this.times.push(nowMs);
    this.values.push(lagMs);
    if (this.times.length > 20_000 || nowMs - this.times[0]! > 60_000) {
      let drop = 0;
      while (drop < this.times.length && (this.times.length - drop > 20_000 || nowMs - this.times[drop]! > 60_000)) drop++;
      this.times = this.times.slice(drop);
      this.values = this.values.slice(drop);
    }
  }

  summary(): ReplicaLag {
    if (this.values.length === 0) return { lastMs: null, p50Ms: null, p99Ms: null, samples: 0 };
    const sorted = [...this.values].sort((a, b) => a - b);
    const at = (fraction: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!);
    return { lastMs: round(this.values.at(-1)!), p50Ms: at(0.5), p99Ms: at(0.99), samples: sorted.length };
  }
}

function round(ms: number): number {
  return Math.round(Math.max(0, ms) * 100) / 100;
}

export interface ReaderInstance {
  db: Database;
  readPoint: () => Lsn;
  replicaLag: () => ReplicaLag;
  close: () => Promise<void>;
}

/** Attaches to the volume as a reader fed by the writer's redo stream at writerHost:writerPort. */
export async function openReader(options: InstanceOptions & { writerHost: string; writerPort: number; log?: (event: string, fields: Record<string, unknown>) => void }): Promise<ReaderInstance> {
  const connection = connectVolume({ name: `reader-${process.pid}`, metadataPath: options.metadataPath, nodes: options.nodes, log: options.log ?? (() => undefined) });
  const client = connection.client;
  let readPoint: Lsn = 0n;
  let queue: StreamRecord[] = [];
  const lag = new LagWindow();
  const waiters: Array<{ lsn: Lsn; resolve: () => void }> = [];
  const store: PageStore = {
    pageCount: client.pageCount,
    durableLsn: () => readPoint,
    nextLsn: () => readPoint + 1n,
    readPage: (page, atLsn) => connection.readPage(page, atLsn),
    canAppend: () => false,
    append: () => {
      throw new EngineError('25006', 'cannot write on a reader');
    },
    waitDurable: (lsn) => (lsn <= readPoint ? Promise.resolve() : new Promise((resolve) => waiters.push({ lsn, resolve }))),
  };
  const cache = new BufferCache(store, { bytesMax: options.cacheBytes });
  let attached = 0;
  let closed = false;
  let ready: (() => void) | undefined;
  const firstHello = new Promise<void>((resolve) => (ready = resolve));
  let replication: ReplicationClient | undefined;
  const attach = (): void => {
    replication = new ReplicationClient(options.writerHost, options.writerPort, {
      hello: (vdl, lastLsnOfGroups) => {
        // R2: a new stream may have a gap behind it: forget every cached page.
        if (attached++ > 0) {
          cache.invalidate();
          options.log?.('reader_reattached', { vdl: String(vdl) });
        }
        queue = [];
        client.attachReader(readMetadata(options.metadataPath), vdl > readPoint ? vdl : readPoint, lastLsnOfGroups);
        if (vdl > readPoint) readPoint = vdl;
        ready?.();
        ready = undefined;
      },
      records: (records) => {
        for (const record of records) if (record.lsn > readPoint) queue.push(record);
      },
      vdl: (vdl, writerTimeMs) => {
        if (vdl <= readPoint) return;
        // Invariant 6: records reach pages only once the read point covers them, all at once.
        let applied = 0;
        while (applied < queue.length && queue[applied]!.lsn <= vdl) {
          const record = queue[applied++]!;
          cache.applyRedo(asRedoRecord(record));
          client.noteReaderRecord(record.pageId, record.lsn);
        }
        queue = queue.slice(applied);
        readPoint = vdl;
        client.advanceReader(vdl);
        const now = wallClockMs();
        lag.add(now, now - writerTimeMs);
        for (let index = waiters.length - 1; index >= 0; index--) {
          if (waiters[index]!.lsn <= readPoint) waiters.splice(index, 1)[0]!.resolve();
        }
      },
      closed: () => {
        if (!closed) setTimeout(attach, 100);
      },
    });
  };
  attach();
  await firstHello;
  const db = await Database.open(cache, { reader: true });
  const report = setInterval(() => {
    const loading = cache.oldestLoadLsn();
    replication?.report({ readPoint: loading !== undefined && loading < readPoint ? loading : readPoint, oldestSnapshot: db.oldestLocalSnapshot() });
  }, 50);
  return {
    db,
    readPoint: () => readPoint,
    replicaLag: () => lag.summary(),
    close: async () => {
      closed = true;
      clearInterval(report);
      replication?.close();
      await connection.close();
    },
  };
}
