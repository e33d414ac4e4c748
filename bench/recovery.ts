// bench/recovery: how long a writer takes to come back after kill -9, for a volume with
// 10 MB of log and one with 1 GB. A loader process (the engine in-process over six
// storage-node processes) creates a table of 2,000 rows of 1 KB and updates random rows to
// 16 KB values (in overflow pages; 32 sessions, one transaction per update, vacuum running)
// until the log reaches the target; then it is killed with transactions in flight. A new writer process opens the
// volume (volume recovery, then the database) and serves a query. Compute recovery does
// no redo replay and no undo, so neither step should grow with the log. Then a reader
// joins the volume and serves a query (it copies nothing, so that should not grow either).
//
//   npm run bench:recovery -- [--small-mb 10] [--large-mb 1024]

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BufferCache } from '../src/engine/buffer-cache.js';
import { isFormatted } from '../src/engine/btree.js';
import { encodeKey } from '../src/engine/codec.js';
import { Database } from '../src/engine/database.js';
import { volumePageStore } from '../src/engine/page-store.js';
import { Vacuum } from '../src/engine/vacuum.js';
import { parsePeers } from '../src/storage-node/process.js';
import { EngineCluster, SqlConnection } from '../src/testing/engine-cluster.js';
import { freePort } from '../src/testing/fleet.js';
import { connectVolume } from '../src/volume-client/index.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1]! : fallback;
};
const ROWS = 2000;
const ROW_BYTES = 1000;
const UPDATE_BYTES = 16_000;

async function load(): Promise<void> {
  const target = Number(flag('bytes', '0'));
  const connection = connectVolume({ name: `recovery-loader-${process.pid}`, metadataPath: flag('metadata', ''), nodes: parsePeers(flag('peers', '')) });
  await connection.open();
  let logBytes = 0;
  const store = volumePageStore(connection, (records) => {
    for (const record of records) logBytes += record.data.length + 36;
  });
  const cache = new BufferCache(store, { bytesMax: 32 * 1024 * 1024 });
  const db = (await isFormatted(cache)) ? await Database.open(cache) : await Database.create(cache);
  const setup = db.begin();
  const table = (await setup.createTable({ name: 't', columns: [{ name: 'id', type: 'int4', notNull: true, default: null }, { name: 'v', type: 'text', notNull: true, default: null }], primaryKey: [0] }))!;
  for (let id = 1; id <= ROWS; id++) await setup.insert(table, [id, `${id}:`.padEnd(ROW_BYTES, 'x')]);
  await setup.commit();
  const vacuum = new Vacuum(db, { intervalMs: 500 });
  vacuum.start();
  let reported = false;
  let seed = 12345;
  const session = async (): Promise<void> => {
    for (;;) {
      seed = (seed * 48271) % 2147483647;
      const id = 1 + (seed % ROWS);
      const tx = db.begin();
      try {
        tx.beginStatement();
        await tx.update(table, encodeKey([id]), (values) => [values[0]!, `${id}:${seed}:`.padEnd(UPDATE_BYTES, 'y')]);
        await tx.commit();
      } catch {
        tx.rollback();
      }
      if (!reported && logBytes >= target) {
        reported = true;
        console.log(JSON.stringify({ done: true, logBytes }));
      }
    }
  };
  const progress = setInterval(() => console.error(JSON.stringify({ logMb: Math.round(logBytes / 1024 / 1024) })), 5000);
  progress.unref();
  await Promise.all(Array.from({ length: 32 }, session));
}

async function measure(mb: number): Promise<{ mb: number; logBytes: number; volumeOpenMs: number; databaseOpenMs: number; readyMs: number; firstQueryMs: number; loadSeconds: number; readerJoinMs: number; readerFirstQueryMs: number }> {
  const cluster = await EngineCluster.start({ readers: 0, groups: 16, pagesPerGroup: 16384, cacheMb: 32 });
  try {
    // The cluster's own writer made an empty database: stop it, then load with the loader.
    await cluster.kill(cluster.writer);
    const started = performance.now();
    const loader = spawn(process.execPath, [fileURLToPath(import.meta.url), '--load', '--metadata', cluster.fleet.metadataPath, '--peers', cluster.fleet.peers, '--bytes', String(mb * 1024 * 1024)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const logBytes = await new Promise<number>((resolve, reject) => {
      let out = '';
      loader.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const newline = out.indexOf('\n');
        if (newline >= 0) resolve((JSON.parse(out.slice(0, newline)) as { logBytes: number }).logBytes);
      });
      loader.once('exit', (code) => reject(new Error(`loader exited (${code})`)));
    });
    const loadSeconds = (performance.now() - started) / 1000;
    // kill -9 with 32 transactions in flight.
    const exited = new Promise((resolve) => loader.once('exit', resolve));
    loader.kill('SIGKILL');
    await exited;
    const restart = performance.now();
    await cluster.startWriter();
    const readyMs = performance.now() - restart;
    const connection = await SqlConnection.connect(cluster.writer.port);
    const queried = performance.now();
    const row = await connection.ok('SELECT id FROM t WHERE id = 1');
    const firstQueryMs = performance.now() - queried;
    if (row !== '1') throw new Error(`unexpected row ${row}`);
    connection.close();
    const ready = cluster.writer.ready as { volumeOpenMs: number; databaseOpenMs: number };
    // A reader joins the volume: process start to serving, then its first query.
    const reader = { role: 'reader' as const, port: await freePort(), process: undefined, ready: undefined, log: [] };
    cluster.readers.push(reader);
    const joining = performance.now();
    await cluster.startReader(reader);
    const readerJoinMs = performance.now() - joining;
    const readerConnection = await SqlConnection.connect(reader.port);
    const readerQueried = performance.now();
    const readerRow = await readerConnection.ok('SELECT id FROM t WHERE id = 2');
    const readerFirstQueryMs = performance.now() - readerQueried;
    if (readerRow !== '2') throw new Error(`unexpected row on the reader: ${readerRow}`);
    readerConnection.close();
    return { mb, logBytes, volumeOpenMs: ready.volumeOpenMs, databaseOpenMs: ready.databaseOpenMs, readyMs, firstQueryMs, loadSeconds, readerJoinMs, readerFirstQueryMs };
  } finally {
    await cluster.destroy();
  }
}

async function main(): Promise<void> {
  if (args.includes('--load')) return load();
  const sizes = [Number(flag('small-mb', '10')), Number(flag('large-mb', '1024'))];
  const results = [];
  for (const mb of sizes) {
    const result = await measure(mb);
    results.push(result);
    console.log(
      `log ${(result.logBytes / 1024 / 1024).toFixed(0)} MB (loaded in ${result.loadSeconds.toFixed(0)} s): volume recovery ${result.volumeOpenMs} ms, database open ${result.databaseOpenMs} ms, process start to serving ${result.readyMs.toFixed(0)} ms, first query ${result.firstQueryMs.toFixed(1)} ms; a reader joins in ${result.readerJoinMs.toFixed(0)} ms (process start to serving), first query on it ${result.readerFirstQueryMs.toFixed(1)} ms`,
    );
  }
  const [small, large] = results as [(typeof results)[0], (typeof results)[0]];
  console.log(`ratio (large/small): volume recovery ${(large.volumeOpenMs / Math.max(1, small.volumeOpenMs)).toFixed(2)}x, writer start to serving ${(large.readyMs / small.readyMs).toFixed(2)}x, reader join ${(large.readerJoinMs / small.readerJoinMs).toFixed(2)}x`);
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
