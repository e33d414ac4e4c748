// The buffer cache over a real volume: six storage-node processes, a cache of 8 pages over
// 64, mini-transactions that change 1-3 pages each. Every page read back through the cache,
// straight from storage, and by a new writer after recovery equals the model.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAGE_BYTES, pageId, SeededRandom } from '../common/index.js';
import { emptyPage } from '../page/index.js';
import { Fleet } from '../testing/fleet.js';
import { connectVolume } from '../volume-client/index.js';
import { BTree, formatVolume } from './btree.js';
import { BufferCache } from './buffer-cache.js';
import { MiniTransaction } from './mini-transaction.js';
import { volumePageStore } from './page-store.js';

test('mini-transactions through an 8-page cache over a 64-page volume survive a new writer', { timeout: 120_000 }, async () => {
  const fleet = await Fleet.start({ groups: 4, pagesPerGroup: 16 });
  try {
    const pages = 64;
    const model = Array.from({ length: pages }, () => emptyPage());
    const random = new SeededRandom(11);
    const first = connectVolume({ name: 'engine-a', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
    await first.open();
    const store = volumePageStore(first);
    const cache = new BufferCache(store, { bytesMax: 8 * PAGE_BYTES });
    let last = 0n;
    for (let round = 0; round < 150; round++) {
      const touched = [...new Set(Array.from({ length: 1 + random.integer(3) }, () => random.integer(pages)))].sort((a, b) => a - b);
      const mtr = new MiniTransaction(cache);
      for (const page of touched) {
        await mtr.latch(pageId(page));
        const offset = random.integer(PAGE_BYTES - 100);
        const data = new Uint8Array(1 + random.integer(100)).fill(1 + random.integer(255));
        mtr.write(pageId(page), offset, data);
        model[page]!.set(data, offset);
      }
      last = (await mtr.commit()) ?? last;
    }
    await store.waitDurable(last);
    assert.ok(cache.stats.evictions > 0 && cache.stats.misses > pages, JSON.stringify(cache.stats));
    for (let page = 0; page < pages; page++) {
      const mtr = new MiniTransaction(cache);
      assert.deepEqual(await mtr.read(pageId(page)), model[page], `page ${page} through the cache`);
      await mtr.commit();
      assert.deepEqual(await first.readPage(pageId(page), first.client.vdl), model[page], `page ${page} from storage`);
    }
    await first.close();

    // A new writer recovers the volume; a cold cache over it sees every durable change.
    const second = connectVolume({ name: 'engine-b', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
    await second.open();
    try {
      const cold = new BufferCache(volumePageStore(second), { bytesMax: 8 * PAGE_BYTES });
      for (let page = 0; page < pages; page++) {
        const mtr = new MiniTransaction(cold);
        assert.deepEqual(await mtr.read(pageId(page)), model[page], `page ${page} after recovery`);
        await mtr.commit();
      }
    } finally {
      await second.close();
    }
  } finally {
    await fleet.destroy();
  }
});

test('a B+tree of 3,000 rows through a 16-page cache is whole again for a new writer', { timeout: 120_000 }, async () => {
  const fleet = await Fleet.start({ groups: 4, pagesPerGroup: 256 });
  try {
    const encoder = new TextEncoder();
    const row = (index: number): Uint8Array => encoder.encode(`row ${index}: ${'x'.repeat(index % 200)}`);
    const keyOf = (index: number): Uint8Array => encoder.encode(`k${String((index * 7) % 3000).padStart(5, '0')}`);
    const first = connectVolume({ name: 'btree-a', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
    await first.open();
    const store = volumePageStore(first);
    const cache = new BufferCache(store, { bytesMax: 16 * PAGE_BYTES });
    await formatVolume(cache);
    const tree = await BTree.create(cache);
    for (let index = 0; index < 3000; index++) await tree.put(keyOf(index), row((index * 7) % 3000));
    await tree.put(encoder.encode('big'), new Uint8Array(300_000).fill(7));
    await store.waitDurable(cache.lastLsn);
    await first.close();

    const second = connectVolume({ name: 'btree-b', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
    await second.open();
    try {
      const reopened = BTree.open(new BufferCache(volumePageStore(second), { bytesMax: 16 * PAGE_BYTES }), tree.root);
      let count = 0;
      for await (const [key, value] of reopened.scan(encoder.encode('k'), encoder.encode('l'))) {
        assert.deepEqual(key, encoder.encode(`k${String(count).padStart(5, '0')}`));
        assert.deepEqual(value, row(count));
        count++;
      }
      assert.equal(count, 3000);
      assert.deepEqual(await reopened.get(encoder.encode('big')), new Uint8Array(300_000).fill(7));
      assert.ok((await reopened.depth()) >= 2);
    } finally {
      await second.close();
    }
  } finally {
    await fleet.destroy();
  }
});
