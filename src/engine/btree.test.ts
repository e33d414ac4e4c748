// B+tree against a sorted-map model, through a buffer cache far smaller than the tree,
// over the model page store (which reports stale reads). Keys from a small alphabet so
// that puts replace and deletes hit; some values large enough for overflow chains.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PAGE_BYTES } from '../common/index.js';
import { ModelStore } from '../testing/model-page-store.js';
import { BTree, formatVolume, KeyTooLarge, recycleRetiredPages, retiredPageCount } from './btree.js';
import { BufferCache } from './buffer-cache.js';
import { compareKeys } from './slotted-page.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));

class SortedModel {
  readonly entries = new Map<string, Uint8Array>();
  range(from?: Uint8Array, to?: Uint8Array): Array<[string, Uint8Array]> {
    return [...this.entries]
      .filter(([key]) => (from === undefined || compareKeys(fromHex(key), from) >= 0) && (to === undefined || compareKeys(fromHex(key), to) < 0))
      .sort(([a], [b]) => compareKeys(fromHex(a), fromHex(b)));
  }
}

async function collect(tree: BTree, from?: Uint8Array, to?: Uint8Array): Promise<Array<[string, Uint8Array]>> {
  const out: Array<[string, Uint8Array]> = [];
  for await (const [key, value] of tree.scan(from, to)) out.push([hex(key), value]);
  return out;
}

const keyArbitrary = fc.uint8Array({ minLength: 1, maxLength: 24 }).map((bytes) => bytes.map((byte) => byte % 6));
const valueArbitrary = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 600 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2000, max: 20000 }) },
);

test('random puts, deletes, gets and scans match a sorted map, with a cache 1/8 of the tree', { timeout: 60_000 }, async () => {
  const operation = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArbitrary, size: valueArbitrary, fill: fc.integer({ min: 0, max: 255 }) }, { noNullPrototype: true }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArbitrary }, { noNullPrototype: true }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArbitrary }, { noNullPrototype: true }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('scan' as const), from: fc.option(keyArbitrary, { nil: undefined }), to: fc.option(keyArbitrary, { nil: undefined }) }, { noNullPrototype: true }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('recycle' as const) }, { noNullPrototype: true }) },
  );
  let largestTree = 0;
  let deepest = 0;
  let cachedRanges = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 100, maxLength: 400, size: 'max' }), async (operations) => {
      const store = new ModelStore(4096, 64n);
      const cache = new BufferCache(store, { bytesMax: 16 * PAGE_BYTES });
      await formatVolume(cache);
      const tree = await BTree.create(cache);
      const model = new SortedModel();
      for (const [step, item] of operations.entries()) {
        if (item.kind === 'put') {
          const value = new Uint8Array(item.size).map((_, index) => (item.fill + index) % 251);
          assert.equal(await tree.put(item.key, value), model.entries.has(hex(item.key)), `step ${step}: put reports whether the key existed`);
          model.entries.set(hex(item.key), value);
        } else if (item.kind === 'delete') {
          assert.equal(await tree.delete(item.key), model.entries.delete(hex(item.key)), `step ${step}: delete`);
        } else if (item.kind === 'get') {
          assert.deepEqual(await tree.get(item.key), model.entries.get(hex(item.key)), `step ${step}: get`);
        } else if (item.kind === 'recycle') {
          // Nothing runs concurrently here, so every unlinked leaf may be reused at once.
          await recycleRetiredPages(cache, store.lsn + 1n);
        } else {
          assert.deepEqual(await collect(tree, item.from, item.to), model.range(item.from, item.to), `step ${step}: scan`);
          // The synchronous read of cached pages gives the scan's answer, or none at all.
          const cached = tree.rangeIfCached(item.from ?? new Uint8Array(0), item.to ?? Uint8Array.of(0xff, 0xff));
          if (cached !== undefined) {
            cachedRanges++;
            assert.deepEqual(cached.map(([key, value]) => [hex(key), value]), model.range(item.from, item.to ?? Uint8Array.of(0xff, 0xff)), `step ${step}: cached range`);
          }
        }
      }
      assert.deepEqual(await collect(tree), model.range(), 'full scan at the end');
      assert.deepEqual(store.staleReads, []);
      largestTree = Math.max(largestTree, store.history.size);
      deepest = Math.max(deepest, await tree.depth());
    }),
    { numRuns: 40, seed: 1234 },
  );
  // Some runs grew to many pages (leaf splits, a root split, overflow chains).
  assert.ok(largestTree > 40 && deepest >= 2, `largest tree touched ${largestTree} pages, deepest had ${deepest} levels`);
  assert.ok(cachedRanges > 50, `cached ranges answered ${cachedRanges} times`);
});

test('10,000 keys of 200 bytes in scattered order: every key found, scans in order, three levels', { timeout: 60_000 }, async () => {
  const store = new ModelStore(8192, 4096n);
  const cache = new BufferCache(store, { bytesMax: 64 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  const name = (index: number): string => `key-${String(index).padStart(6, '0')}`.padEnd(200, '.');
  const keyOf = (index: number): Uint8Array => new TextEncoder().encode(name((index * 7919) % 10000));
  for (let index = 0; index < 10000; index++) await tree.put(keyOf(index), new TextEncoder().encode(`value ${index} `.repeat(4)));
  for (let index = 0; index < 10000; index += 97) {
    assert.deepEqual(await tree.get(keyOf(index)), new TextEncoder().encode(`value ${index} `.repeat(4)));
  }
  const keys: string[] = [];
  for await (const [key] of tree.scan()) keys.push(new TextDecoder().decode(key));
  assert.equal(keys.length, 10000);
  assert.deepEqual(keys, [...keys].sort());
  const some: string[] = [];
  for await (const [key] of tree.scan(new TextEncoder().encode(name(1000)), new TextEncoder().encode(name(1010)))) some.push(new TextDecoder().decode(key));
  assert.deepEqual(some, Array.from({ length: 10 }, (_, index) => name(1000 + index)));
  assert.equal(await tree.depth(), 3);
  assert.ok(store.history.size > 300, `${store.history.size} pages`);
  assert.ok(cache.stats.evictions > 0);
});

test('a 1 MB value round-trips, and replacing it frees its overflow pages for reuse', { timeout: 60_000 }, async () => {
  const store = new ModelStore(1024, 4096n);
  const cache = new BufferCache(store, { bytesMax: 32 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  const big = new Uint8Array(1024 * 1024).map((_, index) => (index * 31) % 253);
  await tree.put(new Uint8Array([1]), big);
  assert.deepEqual(await tree.get(new Uint8Array([1])), big);
  const pagesAfterFirst = store.history.size;
  await tree.put(new Uint8Array([1]), new Uint8Array([42]));
  assert.deepEqual(await tree.get(new Uint8Array([1])), new Uint8Array([42]));
  await tree.put(new Uint8Array([2]), big);
  assert.deepEqual(await tree.get(new Uint8Array([2])), big);
  // The second 1 MB value reused the freed chain instead of new pages.
  assert.equal(store.history.size, pagesAfterFirst);
});

test('bad input: an oversized key is refused, a full volume says so, and the tree stays usable', { timeout: 60_000 }, async () => {
  const store = new ModelStore(16, 4096n);
  const cache = new BufferCache(store, { bytesMax: 8 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  await assert.rejects(tree.put(new Uint8Array(2000), new Uint8Array(1)), KeyTooLarge);
  await assert.rejects(tree.put(new Uint8Array([9]), new Uint8Array(200_000)), /volume is full/);
  assert.equal(await tree.get(new Uint8Array([9])), undefined);
  assert.equal(await tree.put(new Uint8Array([9]), new Uint8Array([1, 2, 3])), false);
  assert.deepEqual(await tree.get(new Uint8Array([9])), new Uint8Array([1, 2, 3]));
  assert.equal(await tree.put(new Uint8Array([9]), new Uint8Array([4]), { unique: true }), true);
  assert.deepEqual(await tree.get(new Uint8Array([9])), new Uint8Array([1, 2, 3]));
});

test('readers running beside a writer always find existing keys and whole values (B-link, overflow reuse)', { timeout: 60_000 }, async () => {
  const store = new ModelStore(4096, 256n);
  // Small enough that a big value's chain is read from storage, page by page, while the
  // writer runs in between.
  const cache = new BufferCache(store, { bytesMax: 8 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  const encoder = new TextEncoder();
  const keyOf = (index: number): Uint8Array => encoder.encode(`k${String((index * 7919) % 3000).padStart(5, '0')}`);
  const bigA = new Uint8Array(30_000).fill(0xaa);
  const bigB = new Uint8Array(30_000).fill(0xbb);
  await tree.put(encoder.encode('big'), bigA);
  for (let index = 0; index < 200; index++) await tree.put(keyOf(index), encoder.encode(`v${index}`));
  let writing = true;
  const writer = (async () => {
    // Splits all over the tree, and the big value's chain freed and reused again and again.
    for (let index = 200; index < 3000; index++) {
      await tree.put(keyOf(index), encoder.encode(`v${index}`));
      if (index % 5 === 0) await tree.put(encoder.encode('big'), index % 10 === 0 ? bigB : bigA);
    }
    writing = false;
  })();
  let checks = 0;
  const reader = async (seed: number): Promise<void> => {
    for (let round = 0; writing; round++) {
      // A round is one client request: let the event loop run between them (a reader that
      // only hits the cache never leaves the microtask queue and would starve the writer).
      await new Promise((resolve) => setImmediate(resolve));
      const index = (seed * 31 + round * 17) % 200;
      assert.deepEqual(await tree.get(keyOf(index)), encoder.encode(`v${index}`), `key ${index} vanished during a split`);
      const big = await tree.get(encoder.encode('big'));
      assert.ok(big !== undefined && (big.every((byte) => byte === 0xaa) || big.every((byte) => byte === 0xbb)), 'a torn or foreign big value');
      let previous: Uint8Array | undefined;
      let seen = 0;
      for await (const [key] of tree.scan(encoder.encode('k01000'), encoder.encode('k01100'))) {
        assert.ok(previous === undefined || compareKeys(previous, key) < 0, 'scan out of order or repeated');
        assert.ok(compareKeys(key, encoder.encode('k01000')) >= 0, 'scan went below its start');
        previous = key;
        seen++;
      }
      assert.ok(seen <= 100);
      checks++;
    }
  };
  await Promise.all([writer, reader(1), reader(2), reader(3)]);
  assert.ok(checks > 30, `${checks} reader rounds ran beside the writer`);
  assert.equal(await tree.depth(), 2);
  assert.deepEqual(store.staleReads, []);
});

test('a mini-transaction waits at the LAL and fails clearly when it is larger than the LAL', { timeout: 60_000 }, async () => {
  const store = new ModelStore(1024, 40n);
  const cache = new BufferCache(store, { bytesMax: 32 * PAGE_BYTES });
  await formatVolume(cache);
  await assert.rejects(formatVolume(cache), /already formatted/);
  const tree = await BTree.create(cache);
  // 16 KB: three overflow pages and the leaf, well within the LAL but past it with
  // the records still in flight, so the commit waits for the VDL instead of failing.
  for (let index = 0; index < 6; index++) await tree.put(new Uint8Array([index]), new Uint8Array(16_000).fill(index));
  for (let index = 0; index < 6; index++) assert.deepEqual(await tree.get(new Uint8Array([index])), new Uint8Array(16_000).fill(index));
  // 400 KB needs about 50 overflow pages in one mini-transaction: more than the LAL allows.
  await assert.rejects(tree.put(new Uint8Array([99]), new Uint8Array(400_000)), /larger than the writer may run ahead/);
  assert.equal(await tree.get(new Uint8Array([99])), undefined);
  assert.equal(await tree.put(new Uint8Array([99]), new Uint8Array([1])), false);
});

test('emptied leaves are unlinked, a concurrent scan still sees every key that stays, and their pages are reused', { timeout: 60_000 }, async () => {
  const store = new ModelStore(8192, 4096n);
  const cache = new BufferCache(store, { bytesMax: 32 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  const key = (index: number): Uint8Array => new TextEncoder().encode(`k${String(index).padStart(6, '0')}`);
  const value = new Uint8Array(200).fill(7);
  for (let index = 0; index < 3000; index++) await tree.put(key(index), value);
  const pagesBefore = store.history.size;
  // Keys 0-999 and 2000-2999 stay; 1000-1999 go while a scan runs over everything.
  const scanned: string[] = [];
  const scan = (async () => {
    for await (const [each] of tree.scan()) {
      scanned.push(new TextDecoder().decode(each));
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  for (let index = 1000; index < 2000; index++) {
    await tree.delete(key(index));
    if (index % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await scan;
  const kept = [...Array.from({ length: 1000 }, (_, index) => index), ...Array.from({ length: 1000 }, (_, index) => 2000 + index)].map((index) => `k${String(index).padStart(6, '0')}`);
  const seen = new Set(scanned);
  assert.deepEqual(kept.filter((each) => !seen.has(each)), [], 'a key that stayed was skipped by the scan');
  assert.deepEqual([...scanned].sort(), scanned, 'the scan is in key order');
  assert.ok(retiredPageCount(cache) >= 20, `unlinked leaves: ${retiredPageCount(cache)}`);
  const all: string[] = [];
  for await (const [each] of tree.scan()) all.push(new TextDecoder().decode(each));
  assert.deepEqual(all, kept);
  // Once recycled, the pages serve new keys: the volume grows far less than it did for them.
  const recycled = await recycleRetiredPages(cache, store.lsn + 1n);
  assert.ok(recycled >= 20);
  const used = async (): Promise<number> => new DataView((await store.readPage(0 as never, store.vdl)).buffer).getUint32(4, true);
  await store.waitDurable(store.lsn);
  const beforeRefill = await used();
  // New keys, in the emptied range and past the end.
  const refill = [...Array.from({ length: 450 }, (_, index) => 1000 + 2 * index), ...Array.from({ length: 450 }, (_, index) => 5000 + index)];
  for (const index of refill) await tree.put(key(index), value);
  await store.waitDurable(store.lsn);
  assert.ok((await used()) - beforeRefill < recycled / 2, `new pages taken: ${(await used()) - beforeRefill}, recycled ${recycled}`);
  assert.ok(pagesBefore > 0);
  for (const index of refill) assert.deepEqual(await tree.get(key(index)), value, `key ${index}`);
  const final: string[] = [];
  for await (const [each] of tree.scan()) final.push(new TextDecoder().decode(each));
  assert.deepEqual(final, [...kept, ...refill.map((index) => `k${String(index).padStart(6, '0')}`)].sort());
  assert.deepEqual(store.staleReads, []);
});

test('ascending keys fill leaves (rightmost splits keep the old page LEAF_FILL_FACTOR full) and every key stays reachable', { timeout: 60_000 }, async () => {
  for (const size of [1, 100, 900]) {
    const store = new ModelStore(8192, 4096n);
    const cache = new BufferCache(store, { bytesMax: 64 * PAGE_BYTES });
    await formatVolume(cache);
    const tree = await BTree.create(cache);
    const key = (index: number): Uint8Array => new TextEncoder().encode(`a${String(index).padStart(8, '0')}${'k'.repeat(index % 40)}`);
    const value = new Uint8Array(size).fill(3);
    for (let index = 0; index < 3000; index++) await tree.put(key(index), value);
    for (let index = 0; index < 3000; index += 7) assert.deepEqual(await tree.get(key(index)), value, `value size ${size}, key ${index}`);
    let count = 0;
    for await (const _ of tree.scan()) count++;
    assert.equal(count, 3000);
    await store.waitDurable(store.lsn);
    const pages = new DataView((await store.readPage(0 as never, store.vdl)).buffer).getUint32(4, true);
    const bytesPerEntry = 6 + 9 + 20 + size + 2;
    // Leaves are nearly full: far fewer pages than half-full splits would leave.
    assert.ok(pages < (3000 * bytesPerEntry) / (PAGE_BYTES * 0.75) + 10, `value size ${size}: ${pages} pages`);
  }
  // Fixed-size cells that leave 14 bytes free in a full leaf: the old page must still take
  // the separator as its high key (19 bytes), so a rightmost split moves a cell or two.
  const store = new ModelStore(8192, 4096n);
  const cache = new BufferCache(store, { bytesMax: 64 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  const fixed = (index: number): Uint8Array => new TextEncoder().encode(`b${String(index).padStart(16, '0')}`);
  for (let index = 0; index < 1000; index++) await tree.put(fixed(index), new Uint8Array(29).fill(index % 251));
  for (let index = 0; index < 1000; index++) assert.equal((await tree.get(fixed(index)))?.[0], index % 251, `key ${index}`);
});

test('a leaf loaded by ascending keys keeps room for a new version of its rows (LEAF_FILL_FACTOR)', { timeout: 60_000 }, async () => {
  const store = new ModelStore(8192, 4096n);
  const cache = new BufferCache(store, { bytesMax: 64 * PAGE_BYTES });
  await formatVolume(cache);
  const tree = await BTree.create(cache);
  const key = (index: number, version = ''): Uint8Array => new TextEncoder().encode(`r${String(index).padStart(8, '0')}${version}`);
  const value = new Uint8Array(100).fill(5);
  for (let index = 0; index < 3000; index++) await tree.put(key(index), value);
  const used = async (): Promise<number> => {
    await store.waitDurable(store.lsn);
    return new DataView((await store.readPage(0 as never, store.vdl)).buffer).getUint32(4, true);
  };
  const loaded = await used();
  // A second version of one row in every leaf (about 60 rows a leaf): each lands next to
  // its row, in a leaf that was filled by the load. None of them may split a leaf.
  for (let index = 0; index < 3000; index += 50) await tree.put(key(index, '~v2'), value);
  assert.equal((await used()) - loaded, 0, 'pages taken by one new version in each loaded leaf');
  for (let index = 0; index < 3000; index += 50) assert.deepEqual(await tree.get(key(index, '~v2')), value);
  assert.deepEqual(store.staleReads, []);
});
