// bench/engine: the engine's B+tree over the real storage fleet (6 storage-node processes,
// the writer in this process) with a buffer cache 10x smaller than the data, next to a
// baseline measured in the same run: lmdb in this process doing the same work (same keys,
// same values, one durable commit per batch of inserts). Prints ratios and the writer's RSS.
//
//   npm run bench:engine -- [--rows N] [--cache-mb MB] [--seconds S]
//
// This is the first cut, before tables and transactions exist: it measures the layers
// built so far (cache, mini-transactions, B+tree, volume), not SQL.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from 'lmdb';
import { PAGE_BYTES } from '../src/common/index.js';
import { BTree, formatVolume } from '../src/engine/btree.js';
import { BufferCache } from '../src/engine/buffer-cache.js';
import { volumePageStore } from '../src/engine/page-store.js';
import { Fleet } from '../src/testing/fleet.js';
import { connectVolume } from '../src/volume-client/index.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const ROWS = flag('rows', 40_000);
const CACHE_MB = flag('cache-mb', 0.5);
const SECONDS = flag('seconds', 3);
const VALUE_BYTES = 100;
const INSERT_BATCH = 100;

const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`row${String(index).padStart(9, '0')}`);
const valueOf = (index: number): Uint8Array => new Uint8Array(VALUE_BYTES).fill(index % 251);
/** A fixed permutation, so inserts and lookups hit pages all over the tree. */
const scattered = (index: number): number => (index * 7919) % ROWS;

interface Target {
  insertBatch(from: number, to: number): Promise<void>;
  get(index: number): Promise<Uint8Array | undefined>;
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
    if (value === undefined || value[0] !== index % 251) throw new Error(`${name}: row ${index} is wrong`);
    lookups++;
  }
  const lookup = lookups / ((performance.now() - started) / 1000);
  started = performance.now();
  let scanned = 0;
  for (let round = 0; round < 20; round++) scanned += await target.scan(scattered(round * 101) % Math.max(1, ROWS - 1000), 1000);
  const scan = scanned / ((performance.now() - started) / 1000);
  return { insert, lookup, scan };
}

async function main(): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-bench-engine-'));
  const dataMb = (ROWS * (VALUE_BYTES + 12)) / 1024 / 1024;
  console.log(`bench/engine: ${ROWS} rows of ${VALUE_BYTES} bytes (~${dataMb.toFixed(1)} MB of rows), buffer cache ${CACHE_MB} MB, ${os.cpus().length} cores`);
  try {
    // Baseline: lmdb in this process, one durable commit per insert batch.
    const lmdb = open({ path: path.join(scratch, 'baseline.lmdb'), encoding: 'binary', overlappingSync: false });
    const baseline = await measure('lmdb', {
      insertBatch: async (from, to) => {
        await lmdb.transaction(() => {
          for (let index = from; index < to; index++) lmdb.put(Buffer.from(keyOf(scattered(index))), Buffer.from(valueOf(scattered(index))));
        });
      },
      get: async (index) => lmdb.get(Buffer.from(keyOf(index))) as Uint8Array | undefined,
      scan: async (from, count) => {
        let seen = 0;
        for (const entry of lmdb.getRange({ start: Buffer.from(keyOf(from)), limit: count })) seen += entry.value ? 1 : 0;
        return seen;
      },
    });
    await lmdb.close();

    const fleet = await Fleet.start({ groups: 4, pagesPerGroup: 4096 });
    const connection = connectVolume({ name: 'bench-engine', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
    try {
      await connection.open();
      const store = volumePageStore(connection);
      const cache = new BufferCache(store, { bytesMax: Math.max(PAGE_BYTES, Math.floor(CACHE_MB * 1024 * 1024)) });
      await formatVolume(cache);
      const tree = await BTree.create(cache);
      const engine = await measure('engine', {
        insertBatch: async (from, to) => {
          for (let index = from; index < to; index++) await tree.put(keyOf(scattered(index)), valueOf(scattered(index)));
          // Like the baseline's commit: the batch is durable before the next one starts.
          await store.waitDurable(cache.lastLsn);
        },
        get: (index) => tree.get(keyOf(index)),
        scan: async (from, count) => {
          let seen = 0;
          for await (const entry of tree.scan(keyOf(from))) {
            seen += entry[1].length > 0 ? 1 : 0;
            if (seen >= count) break;
          }
          return seen;
        },
      });
      const row = (label: string, ours: number, theirs: number, unit: string): string =>
        `${label.padEnd(30)} | engine ${ours.toFixed(0)} ${unit} | lmdb ${theirs.toFixed(0)} ${unit} | ratio ${(ours / theirs).toFixed(2)}x`;
      console.log(row(`insert (batches of ${INSERT_BATCH}, durable)`, engine.insert, baseline.insert, 'rows/s'));
      console.log(row('point lookup', engine.lookup, baseline.lookup, 'lookups/s'));
      console.log(row('range scan (1,000 rows each)', engine.scan, baseline.scan, 'rows/s'));
      console.log(`tree depth ${await tree.depth()}, cache ${(cache.bytesMax / 1024 / 1024).toFixed(1)} MB: ${cache.stats.hits} hits, ${cache.stats.misses} misses, ${cache.stats.evictions} evictions`);
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
      console.log(`writer RSS ${field('VmRSS').toFixed(0)} MB (peak ${field('VmHWM').toFixed(0)} MB; includes the lmdb baseline run in this process), cache bound ${(cache.bytesMax / 1024 / 1024).toFixed(1)} MB`);
    } finally {
      await connection.close();
      await fleet.destroy();
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(`bench/engine: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
