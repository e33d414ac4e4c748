// A reader's cache (C4, invariant 6): a writer changes random pages; its records reach a
// reader's cache only when an announced VDL covers them, while the reader loads pages
// (some loads straddle a VDL step, some a re-attach). After every step, every page the
// reader holds equals the page as of its read point: never older, never newer.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAGE_BYTES, pageId, SeededRandom, type Lsn } from '../common/index.js';
import { FLAG_CPL, type RedoRecord } from '../page/index.js';
import { ModelStore } from '../testing/model-page-store.js';
import { BufferCache } from './buffer-cache.js';
import { MiniTransaction } from './mini-transaction.js';
import type { PageStore } from './page-store.js';

test('a reader cache holds every page exactly at its read point through VDL steps, slow loads and re-attaches', { timeout: 60_000 }, async () => {
  for (let seed = 1; seed <= 60; seed++) {
    const random = new SeededRandom(seed);
    const storage = new ModelStore(16, 1_000_000n);
    const stream: RedoRecord[] = [];
    const writerStore: PageStore = {
      ...(storage as unknown as PageStore),
      pageCount: storage.pageCount,
      durableLsn: () => storage.durableLsn(),
      nextLsn: () => storage.nextLsn(),
      readPage: (page, at) => storage.readPage(page, at),
      canAppend: (records) => storage.canAppend(records),
      waitDurable: (lsn) => storage.waitDurable(lsn),
      append: (patches) => {
        const lsns = storage.append(patches);
        patches.forEach((patch, index) => stream.push({ lsn: lsns[index]!, prevLsnOfThisPg: 0n, pageId: patch.pageId, epoch: 0 as RedoRecord['epoch'], flags: index === patches.length - 1 ? FLAG_CPL : 0, kind: patch.kind, offset: patch.offset, data: patch.data }));
        return lsns;
      },
    };
    const writer = new BufferCache(writerStore, { bytesMax: 16 * PAGE_BYTES });
    let readPoint: Lsn = 0n;
    const slowReads: Array<() => void> = [];
    let finishing = false;
    const readerStore: PageStore = {
      pageCount: 16,
      durableLsn: () => readPoint,
      nextLsn: () => readPoint + 1n,
      // Some reads are held back until the test lets them go (a slow segment).
      readPage: async (page, at) => {
        if (!finishing && random.integer(3) === 0) await new Promise<void>((resolve) => slowReads.push(resolve));
        return storage.readPage(page, at);
      },
      canAppend: () => false,
      append: () => assert.fail('a reader never appends'),
      waitDurable: async () => undefined,
    };
    const reader = new BufferCache(readerStore, { bytesMax: 6 * PAGE_BYTES });
    let delivered = 0;
    const pending: Array<Promise<unknown>> = [];
    for (let step = 0; step < 60; step++) {
      // The writer changes 1-3 pages in one mini-transaction.
      const mtr = new MiniTransaction(writer);
      for (const page of [...new Set([random.integer(16), random.integer(16), random.integer(16)].slice(0, 1 + random.integer(3)))]) {
        await mtr.latch(pageId(page));
        mtr.write(pageId(page), random.integer(PAGE_BYTES - 8), new Uint8Array(8).fill(1 + random.integer(255)));
      }
      await mtr.commit();
      const choice = random.integer(10);
      if (choice < 4) {
        // A VDL announcement: storage makes it durable, the reader applies what it covers.
        await storage.waitDurable(storage.lsn);
        const vdl = storage.durableLsn();
        for (; delivered < stream.length && stream[delivered]!.lsn <= vdl; delivered++) reader.applyRedo(stream[delivered]!);
        readPoint = vdl;
      } else if (choice < 7) {
        // A query pins (loads) a page.
        pending.push(reader.pin(pageId(random.integer(16))).then((frame) => reader.unpin(frame)));
      } else if (choice === 7) {
        // Re-attach: the reader forgets its cache and starts at the newest VDL.
        await storage.waitDurable(storage.lsn);
        reader.invalidate();
        delivered = stream.findIndex((record) => record.lsn > storage.durableLsn());
        if (delivered < 0) delivered = stream.length;
        readPoint = storage.durableLsn();
      } else {
        for (const release of slowReads.splice(0)) release();
      }
      await new Promise((resolve) => setImmediate(resolve));
      // Invariant 6: what the reader caches is the page as of its read point.
      for (let page = 0; page < 16; page++) {
        const frame = reader.peek(pageId(page));
        if (frame === undefined) continue;
        assert.deepEqual(frame.bytes, await storage.readPage(pageId(page), readPoint), `seed ${seed} step ${step}: page ${page} at read point ${readPoint}`);
      }
    }
    finishing = true;
    for (const release of slowReads.splice(0)) release();
    await Promise.all(pending);
  }
});
