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
import { StorageError } from '../common/index.js';
import type { Database } from '../engine/database.js';
import { EngineError } from '../engine/errors.js';
import { openReader, openWriter } from '../instance/volume-instance.js';
import { parsePeers } from '../storage-node/process.js';
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
  const instance = await openWriter({
    metadataPath: flag('metadata'),
    nodes: parsePeers(flag('peers')),
    cacheBytes: Number(flag('cache-mb', '64')) * 1024 * 1024,
    replicationPort: Number(flag('replication-port', '0')),
    readerUnsentBytesMax: Number(flag('reader-unsent-max', String(64 * 1024 * 1024))),
    onReaderDropped: () => console.error(JSON.stringify({ event: 'reader_dropped', reason: 'too far behind' })),
  });
  await loadParser();
  await serveSql(instance.db, Number(flag('port')));
  console.log(JSON.stringify({ ready: true, role: 'writer', pid: process.pid, replicationPort: instance.replicationPort, volumeOpenMs: Math.round(instance.volumeOpenMs), databaseOpenMs: Math.round(instance.databaseOpenMs), vdl: String(instance.vdl()) }));
}

async function reader(): Promise<void> {
  const [writerHost, writerPort] = flag('writer').split(':') as [string, string];
  const verbose = argv.includes('--verbose');
  const instance = await openReader({
    metadataPath: flag('metadata'),
    nodes: parsePeers(flag('peers')),
    cacheBytes: Number(flag('cache-mb', '64')) * 1024 * 1024,
    writerHost,
    writerPort: Number(writerPort),
    log: (event, fields) => {
      if (verbose || event === 'reader_reattached') console.error(JSON.stringify({ event, ...fields }, (_, value: unknown) => (typeof value === 'bigint' ? String(value) : value)));
    },
  });
  await loadParser();
  await serveSql(instance.db, Number(flag('port')));
  console.log(JSON.stringify({ ready: true, role: 'reader', pid: process.pid, readPoint: String(instance.readPoint()) }));
}

(role === 'writer' ? writer() : role === 'reader' ? reader() : Promise.reject(new Error(`unknown role ${role}`))).catch((error: Error) => {
  console.error(`engine-server: ${error.stack ?? error.message}`);
  process.exit(1);
});
