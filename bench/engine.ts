// bench/engine: the engine's tables over the real storage fleet (6 storage-node processes,
// the writer in this process) with a buffer cache about 10x smaller than the data, next to
// a baseline measured in the same run: lmdb, in a child process, doing the same work (same
// keys, same rows, one durable commit per batch of inserts). Prints ratios, the data/cache
// ratio, and this process's RSS (the writer alone: the baseline runs elsewhere).
//
//   npm run bench:engine -- [--rows N] [--cache-mb MB] [--seconds S]
//
// Inserts are transactions of INSERT_BATCH rows, each committed durably; lookups are
// point reads by primary key in read-committed transactions; scans read 1,000 rows by key
// range. Every row goes through MVCC (versions, visibility, row locks).

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { PAGE_BYTES } from '../src/common/index.js';
import { BufferCache } from '../src/engine/buffer-cache.js';
import { encodeKey } from '../src/engine/codec.js';
import { Database } from '../src/engine/database.js';
import { volumePageStore } from '../src/engine/page-store.js';
import { Fleet } from '../src/testing/fleet.js';
import { connectVolume } from '../src/volume-client/index.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const ROWS = flag('rows', 100_000);
const CACHE_MB = flag('cache-mb', 1);
const SECONDS = flag('seconds', 3);
const VALUE_BYTES = 100;
const INSERT_BATCH = 100;

const valueOf = (index: number): string => `${index % 251}`.padEnd(VALUE_BYTES, 'v');
/** A fixed permutation, so inserts and lookups hit pages all over the tree. */
const scattered = (index: number): number => (index * 7919) % ROWS;

interface Target {
  insertBatch(from: number, to: number): Promise<void>;
  get(index: number): Promise<string | undefined>;
  scan(from: number, count: number): Promise<number>;
}

async function measure(name: string, target: Target): Promise<{ insert: number; lookup: number; scan: number }> {
  let started = performance.now();
  for (let from = 0; from < ROWS; from += INSERT_BATCH) await target.insertBatch(from, Math.min(ROWS, from + INSERT_BATCH));
  const insert = ROWS / ((performance.now() - started) / 1000);
  let lookups = 0;
  started = performance.now();
  const deadline = started + SECONDS * 1000;
  while (performance.now() < deadline) {
    const index = scattered(lookups * 31 + 17);
    const value = await target.get(index);
    if (value !== valueOf(index)) throw new Error(`${name}: row ${index} is wrong: ${value}`);
    lookups++;
  }
  const lookup = lookups / ((performance.now() - started) / 1000);
  started = performance.now();
  let scanned = 0;
  for (let round = 0; round < 20; round++) scanned += await target.scan(scattered(round * 101) % Math.max(1, ROWS - 1000), 1000);
  const scan = scanned / ((performance.now() - started) / 1000);
  return { insert, lookup, scan };
}

const lmdbKey = (index: number): Buffer => Buffer.from(encodeKey([index]));

/** The baseline, in a child process: prints its figures as one JSON line. */
async function baseline(): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-bench-engine-'));
  try {
    const lmdb = open({ path: path.join(scratch, 'baseline.lmdb'), encoding: 'string', overlappingSync: false });
    const result = await measure('lmdb', {
      insertBatch: async (from, to) => {
        await lmdb.transaction(() => {
          for (let index = from; index < to; index++) lmdb.put(lmdbKey(scattered(index)), valueOf(scattered(index)));
        });
      },
      get: async (index) => lmdb.get(lmdbKey(index)) as string | undefined,
      scan: async (from, count) => {
        let seen = 0;
        for (const entry of lmdb.getRange({ start: lmdbKey(from), limit: count })) seen += entry.value ? 1 : 0;
        return seen;
      },
    });
    await lmdb.close();
    console.log(JSON.stringify(result));
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function runBaseline(): Promise<{ insert: number; lookup: number; scan: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--baseline', '--rows', String(ROWS), '--seconds', String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as { insert: number; lookup: number; scan: number }) : reject(new Error(`baseline exited ${code}`))));
  });
}

function memory(): { rss: number; peak: number; anon: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM'), anon: field('RssAnon') };
}

async function main(): Promise<void> {
  if (args.includes('--baseline')) return baseline();
  console.log(`bench/engine: ${ROWS} rows of ${VALUE_BYTES} bytes, buffer cache ${CACHE_MB} MB, ${os.cpus().length} cores`);
  const theirs = await runBaseline();
  const fleet = await Fleet.start({ groups: 8, pagesPerGroup: 8192 });
  const connection = connectVolume({ name: 'bench-engine', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
  try {
    await connection.open();
    const store = volumePageStore(connection);
    const cache = new BufferCache(store, { bytesMax: Math.max(PAGE_BYTES, Math.floor(CACHE_MB * 1024 * 1024)) });
    const db = await Database.create(cache);
    const setup = db.begin();
    const table = (await setup.createTable({ name: 'bench', columns: [{ name: 'id', type: 'int4', notNull: true, default: null }, { name: 'v', type: 'text', notNull: true, default: null }], primaryKey: [0] }))!;
    await setup.commit();
    const before = memory();
    let peakDuring = 0;
    const sampler = setInterval(() => (peakDuring = Math.max(peakDuring, memory().rss)), 100);
    const ours = await measure('engine', {
      insertBatch: async (from, to) => {
        const tx = db.begin();
        for (let index = from; index < to; index++) await tx.insert(table, [scattered(index), valueOf(scattered(index))]);
        await tx.commit(); // durable, like the baseline's commit
      },
      get: async (index) => {
        const tx = db.begin();
        const row = await tx.get(table, [index]);
        await tx.commit();
        return row?.values[1] as string | undefined;
      },
      scan: async (from, count) => {
        const tx = db.begin();
        let seen = 0;
        for await (const row of tx.scan(table, encodeKey([from]))) {
          seen += row.values.length > 0 ? 1 : 0;
          if (seen >= count) break;
        }
        await tx.commit();
        return seen;
      },
    });
    clearInterval(sampler);
    const row = (label: string, engine: number, lmdb: number, unit: string): string =>
      `${label.padEnd(30)} | engine ${engine.toFixed(0)} ${unit} | lmdb ${lmdb.toFixed(0)} ${unit} | ratio ${(engine / lmdb).toFixed(2)}x`;
    console.log(row(`insert (transactions of ${INSERT_BATCH}, durable)`, ours.insert, theirs.insert, 'rows/s'));
    console.log(row('point lookup (a transaction each)', ours.lookup, theirs.lookup, 'lookups/s'));
    console.log(row('range scan (1,000 rows each)', ours.scan, theirs.scan, 'rows/s'));
    let treeEntries = 0;
    for await (const _ of db.tree(table.root).scan()) treeEntries++;
    const dataMb = ((await usedPages(db)) * PAGE_BYTES) / 1024 / 1024;
    const cacheMb = cache.bytesMax / 1024 / 1024;
    console.log(`data ${dataMb.toFixed(1)} MB in pages (${treeEntries} versions), cache ${cacheMb.toFixed(1)} MB: data/cache ${(dataMb / cacheMb).toFixed(1)}x; ${cache.stats.hits} hits, ${cache.stats.misses} misses, ${cache.stats.evictions} evictions`);
    const after = memory();
    console.log(
      `writer RSS: ${before.rss.toFixed(0)} MB before the run (anonymous ${before.anon.toFixed(0)} MB), peak during ${peakDuring.toFixed(0)} MB, after ${after.rss.toFixed(0)} MB (anonymous ${after.anon.toFixed(0)} MB); cache bound ${cacheMb.toFixed(1)} MB, so ${(peakDuring - cacheMb).toFixed(0)} MB above it (the process's fixed overhead: V8, code, sockets)`,
    );
  } finally {
    await connection.close();
    await fleet.destroy();
  }
}

/** Pages handed out so far (the meta page's next never-used page). */
async function usedPages(db: Database): Promise<number> {
  const bytes = await db.cache.store.readPage(0 as never, db.cache.store.durableLsn());
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
}

main().catch((error: Error) => {
  console.error(`bench/engine: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
