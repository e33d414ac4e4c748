// An engine process for tests and benchmarks until the PostgreSQL front end (issue 5)
// serves SQL: a writer or a reader over the volume, taking SQL (the engine test driver's
// dialect) as JSON lines on a TCP port, one session per connection.
//
//   node engine-server.js writer --metadata F --peers 1=h:p,... --port P --replication-port R [--cache-mb M]
//   node engine-server.js reader --metadata F --peers ... --port P --writer h:R [--cache-mb M]
//
// Request: {"sql": "..."}; reply: {"ok": "<outcome>"} or {"error": "<SQLSTATE>", "message": "..."}.
// It prints one JSON line {"ready": true, ...} when serving.

import * as net from 'node:net';
import { StorageError, type Lsn } from '../common/index.js';
import { BufferCache } from '../engine/buffer-cache.js';
import { isFormatted } from '../engine/btree.js';
import { Database } from '../engine/database.js';
import { EngineError } from '../engine/errors.js';
import { volumePageStore, type PageStore } from '../engine/page-store.js';
import { asRedoRecord, ReplicationClient, ReplicationServer, type StreamRecord } from '../engine/replication.js';
import { Vacuum } from '../engine/vacuum.js';
import { parsePeers } from '../storage-node/process.js';
import { connectVolume, readMetadata } from '../volume-client/index.js';
import { EngineSession, loadParser } from './isolation/engine-session.js';

const argv = process.argv.slice(3);
const role = process.argv[2];
const flag = (name: string, fallback?: string): string => {
  const at = argv.indexOf(`--${name}`);
  const value = at >= 0 ? argv[at + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
};

function serveSql(db: Database, port: number): Promise<net.Server> {
  const server = net.createServer((socket) => {
    const session = new EngineSession(db);
    let buffered = '';
    let chain = Promise.resolve();
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        chain = chain.then(async () => {
          let reply: unknown;
          try {
            const request = JSON.parse(line) as { sql: string };
            reply = { ok: await session.run(request.sql) };
          } catch (error) {
            if (error instanceof EngineError) reply = { error: error.sqlState, message: error.message };
            else if (error instanceof StorageError) reply = { error: 'XX000', message: error.message, storage: error.code };
            else reply = { error: 'XX000', message: (error as Error).message };
          }
          if (socket.writable) socket.write(`${JSON.stringify(reply)}\n`);
        });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => void chain.then(() => session.close()));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function writer(): Promise<void> {
  const metadataPath = flag('metadata');
  const connection = connectVolume({ name: `engine-writer-${process.pid}`, metadataPath, nodes: parsePeers(flag('peers')), retention: 'manual' });
  const started = performance.now();
  await connection.open();
  const openedMs = performance.now() - started;
  const client = connection.client;
  const groups = readMetadata(metadataPath).groups.length;
  const replication = new ReplicationServer(
    {
      vdl: () => client.vdl,
      lastLsnOfGroups: (vdl) => Array.from({ length: groups }, (_, group) => client.requiredSclFor(group, vdl)),
    },
    {
      unsentBytesMax: Number(flag('reader-unsent-max', String(64 * 1024 * 1024))),
      onDrop: () => console.error(JSON.stringify({ event: 'reader_dropped', reason: 'too far behind' })),
    },
  );
  const store = volumePageStore(connection, (records) => replication.appended(records.map((record): StreamRecord => ({ lsn: record.lsn, pageId: record.pageId, kind: record.kind, flags: record.flags, offset: record.offset, data: record.data }))));
  client.onVdlAdvance = (vdl) => replication.advanced(vdl);
  const cache = new BufferCache(store, { bytesMax: Number(flag('cache-mb', '64')) * 1024 * 1024 });
  const databaseStarted = performance.now();
  const db = (await isFormatted(cache)) ? await Database.open(cache) : await Database.create(cache);
  const databaseMs = performance.now() - databaseStarted;
  const vacuum = new Vacuum(db);
  // PGMRPL: storage keeps what the oldest reader's read point needs; vacuum keeps what any snapshot needs.
  setInterval(() => {
    let retention = client.vdl;
    const loading = cache.oldestLoadLsn();
    if (loading !== undefined && loading < retention) retention = loading;
    db.readerSnapshots.clear();
    for (const [index, state] of replication.readerStates().entries()) {
      if (state.readPoint < retention) retention = state.readPoint;
      db.readerSnapshots.set(String(index), state.oldestSnapshot);
    }
    if (client.state === 'open') client.retentionLsn = retention;
  }, 20);
  vacuum.start();
  const replicationPort = await replication.listen(Number(flag('replication-port', '0')));
  await loadParser();
  await serveSql(db, Number(flag('port')));
  console.log(JSON.stringify({ ready: true, role: 'writer', pid: process.pid, replicationPort, volumeOpenMs: Math.round(openedMs), databaseOpenMs: Math.round(databaseMs), vdl: String(client.vdl) }));
}

async function reader(): Promise<void> {
  const metadataPath = flag('metadata');
  const [writerHost, writerPort] = flag('writer').split(':') as [string, string];
  const verbose = argv.includes('--verbose');
  const connection = connectVolume({
    name: `engine-reader-${process.pid}`,
    metadataPath,
    nodes: parsePeers(flag('peers')),
    log: (event, fields) => {
      if (verbose) console.error(JSON.stringify({ event, ...fields }, (_, value: unknown) => (typeof value === 'bigint' ? String(value) : value)));
    },
  });
  const client = connection.client;
  let readPoint: Lsn = 0n;
  let queue: StreamRecord[] = [];
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
  const cache = new BufferCache(store, { bytesMax: Number(flag('cache-mb', '64')) * 1024 * 1024 });
  let db: Database | undefined;
  let attached = 0;
  let ready: (() => void) | undefined;
  const firstHello = new Promise<void>((resolve) => (ready = resolve));
  let replication: ReplicationClient | undefined;
  const attach = (): void => {
    replication = new ReplicationClient(writerHost, Number(writerPort), {
      hello: (vdl, lastLsnOfGroups) => {
        // R2: a new stream may have a gap behind it: forget every cached page.
        if (attached++ > 0) {
          cache.invalidate();
          console.error(JSON.stringify({ event: 'reader_reattached', vdl: String(vdl) }));
        }
        queue = [];
        client.attachReader(readMetadata(metadataPath), vdl > readPoint ? vdl : readPoint, lastLsnOfGroups);
        if (vdl > readPoint) readPoint = vdl;
        ready?.();
        ready = undefined;
      },
      records: (records) => {
        for (const record of records) if (record.lsn > readPoint) queue.push(record);
      },
      vdl: (vdl) => {
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
        for (let index = waiters.length - 1; index >= 0; index--) {
          if (waiters[index]!.lsn <= readPoint) waiters.splice(index, 1)[0]!.resolve();
        }
      },
      closed: () => setTimeout(attach, 100),
    });
  };
  attach();
  await firstHello;
  db = await Database.open(cache, { reader: true });
  setInterval(() => {
    const loading = cache.oldestLoadLsn();
    replication?.report({ readPoint: loading !== undefined && loading < readPoint ? loading : readPoint, oldestSnapshot: db!.oldestLocalSnapshot() });
  }, 50);
  await loadParser();
  await serveSql(db, Number(flag('port')));
  console.log(JSON.stringify({ ready: true, role: 'reader', pid: process.pid, readPoint: String(readPoint) }));
}

(role === 'writer' ? writer() : role === 'reader' ? reader() : Promise.reject(new Error(`unknown role ${role}`))).catch((error: Error) => {
  console.error(`engine-server: ${error.stack ?? error.message}`);
  process.exit(1);
});
