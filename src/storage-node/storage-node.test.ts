// Storage node behaviour on bad input and faults, driven through the simulator's disks
// (so a crash loses exactly what was not synced) and its message codec.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultStorageLimits, epoch, nodeId, pageId, protectionGroupId, SeededRandom, segmentId, type Lsn, type StorageLimits } from '../common/index.js';
import { applyRedo, emptyPage, FLAG_CPL, RedoKind, unsealPage, type RedoRecord } from '../page/index.js';
import { decodeMessage, encodeMessage, type Message } from '../net/messages.js';
import { EventQueue } from '../sim/event-queue.js';
import { SimLogDisk, SimOrderedStore, type DiskFaults } from '../sim/sim-disk.js';
import { StorageNode } from './storage-node.js';

const CLIENT = 'client:test';
const segmentA = segmentId(protectionGroupId(0), nodeId(1));
const segmentB = segmentId(protectionGroupId(1), nodeId(1));

class Harness {
  readonly events = new EventQueue();
  readonly random = new SeededRandom(7);
  readonly faults: DiskFaults = { appendErrorProbability: 0 };
  readonly disk = new SimLogDisk(this.events, this.random, this.faults);
  readonly store = new SimOrderedStore(this.events, this.random);
  readonly sent: Message[] = [];
  readonly logs: string[] = [];
  node!: StorageNode;

  constructor(private readonly limits: Partial<StorageLimits> = {}) {
    this.boot();
  }

  boot(): void {
    this.node = new StorageNode(
      {
        nowMs: () => this.events.nowMs,
        random: this.random,
        // Through the real codec, as on the wire.
        send: (_to, message) => {
          const decoded = decodeMessage(encodeMessage(message));
          assert.ok(decoded.ok);
          this.sent.push(decoded.message);
        },
        log: (event) => this.logs.push(event),
      },
      this.disk,
      this.store,
      { node: nodeId(1), availabilityZone: 'az-a', limits: { ...defaultStorageLimits, ...this.limits }, groupCommit: true, gossipIntervalMs: 1e9, coalesceIntervalMs: 20, hydrationTimeoutMs: 100 },
    );
    this.node.start(() => undefined);
    this.run(10);
  }

  run(ms: number): void {
    const until = this.events.nowMs + ms;
    for (let now = this.events.nowMs; now < until; now += 5) {
      while (this.events.step(now + 5));
      this.events.nowMs = now + 5;
      this.node.tick();
    }
  }

  deliver(message: Message): void {
    const decoded = decodeMessage(encodeMessage(message));
    assert.ok(decoded.ok);
    this.node.receive(decoded.message);
    this.run(20);
  }

  crashAndRestart(): void {
    this.disk.crash();
    this.store.crash();
    this.boot();
  }

  lastOf<K extends Message['kind']>(kind: K): Extract<Message, { kind: K }> {
    const found = [...this.sent].reverse().find((message) => message.kind === kind);
    assert.ok(found, `no ${kind} was sent`);
    return found as Extract<Message, { kind: K }>;
  }

  create(segment = segmentA): void {
    this.deliver({ kind: 'membership', from: CLIENT, requestId: 1, segment, peers: [nodeId(1)], history: [{ epoch: epoch(1), truncateAboveLsn: 0n }], bootstrap: true });
  }

  write(records: RedoRecord[], options: { epoch?: number; segment?: typeof segmentA; vdlHint?: Lsn; retentionLsn?: Lsn } = {}): void {
    this.deliver({ kind: 'write', from: CLIENT, segment: options.segment ?? segmentA, epoch: epoch(options.epoch ?? 1), vdlHint: options.vdlHint ?? 0n, retentionLsn: options.retentionLsn ?? 0n, records });
  }

  storeKeys(prefix: string): string[] {
    return this.store.rangeKeys({ start: prefix, end: `${prefix}\uffff` });
  }
}

function record(lsn: Lsn, previous: Lsn, page = 3, byte = Number(lsn)): RedoRecord {
  return { lsn, prevLsnOfThisPg: previous, pageId: pageId(page), epoch: epoch(1), flags: FLAG_CPL, kind: RedoKind.Write, offset: Number(lsn) * 4, data: new Uint8Array([byte, byte, byte]) };
}

test('an acknowledged record survives kill -9; what was never acknowledged does not appear', () => {
  const harness = new Harness();
  harness.create();
  harness.write([record(1n, 0n), record(2n, 1n), record(3n, 2n)]);
  const ack = harness.lastOf('write-ack');
  assert.equal(ack.status, 'ok');
  assert.equal(ack.scl, 3n);
  harness.crashAndRestart();
  harness.deliver({ kind: 'get-page', from: CLIENT, requestId: 9, segment: segmentA, epoch: epoch(1), pageId: pageId(3), atLsn: 3n, requiredScl: 3n });
  const reply = harness.lastOf('page');
  assert.equal(reply.status, 'ok');
  const expected = emptyPage();
  for (const lsn of [1n, 2n, 3n]) applyRedo(expected, record(lsn, lsn - 1n));
  assert.deepStrictEqual(unsealPage(reply.page), expected);
});

test('a hole in the chain holds the SCL back until it is filled', () => {
  const harness = new Harness();
  harness.create();
  harness.write([record(1n, 0n), record(3n, 2n)]);
  assert.equal(harness.lastOf('write-ack').scl, 1n);
  harness.write([record(2n, 1n)]);
  assert.equal(harness.lastOf('write-ack').scl, 3n);
});

test('a write with an epoch older than a recovery query is refused as fenced and never applied', () => {
  const harness = new Harness();
  harness.create();
  harness.write([record(1n, 0n)]);
  harness.deliver({ kind: 'recovery-query', from: CLIENT, requestId: 4, segment: segmentA, newEpoch: epoch(2) });
  assert.equal(harness.lastOf('recovery-reply').status, 'ok');
  harness.write([record(2n, 1n)]);
  const ack = harness.lastOf('write-ack');
  assert.equal(ack.status, 'fenced');
  assert.equal(ack.fencedEpoch, 2);
  assert.equal(ack.scl, 1n);
  // After the restart the fence still holds: it was made durable before the reply.
  harness.crashAndRestart();
  harness.write([record(2n, 1n)]);
  assert.equal(harness.lastOf('write-ack').status, 'fenced');
});

test('a truncation under a new epoch discards records above the recovered VDL', () => {
  const harness = new Harness();
  harness.create();
  harness.write([record(1n, 0n), record(2n, 1n), record(3n, 2n)]);
  harness.deliver({ kind: 'recovery-query', from: CLIENT, requestId: 4, segment: segmentA, newEpoch: epoch(2) });
  harness.deliver({ kind: 'truncate', from: CLIENT, requestId: 5, segment: segmentA, history: [{ epoch: epoch(1), truncateAboveLsn: 0n }, { epoch: epoch(2), truncateAboveLsn: 2n }], peers: [nodeId(1)] });
  assert.equal(harness.lastOf('truncate-ack').scl, 2n);
  harness.crashAndRestart();
  harness.write([], { epoch: 2 });
  assert.equal(harness.lastOf('write-ack').scl, 2n);
  harness.deliver({ kind: 'get-page', from: CLIENT, requestId: 9, segment: segmentA, epoch: epoch(2), pageId: pageId(3), atLsn: 2n, requiredScl: 2n });
  const expected = emptyPage();
  for (const lsn of [1n, 2n]) applyRedo(expected, record(lsn, lsn - 1n));
  assert.deepStrictEqual(unsealPage(harness.lastOf('page').page), expected);
});

test('an unknown segment gets a typed error and a log line; the node keeps serving', () => {
  const harness = new Harness();
  harness.create();
  harness.write([record(1n, 0n)], { segment: segmentB });
  assert.equal(harness.lastOf('write-ack').status, 'unknown_segment');
  assert.ok(harness.logs.includes('unknown_segment'));
  harness.write([record(1n, 0n)]);
  assert.equal(harness.lastOf('write-ack').status, 'ok');
});

test('disk full or EIO on append: a typed error, a log line, nothing acknowledged lost, other segments served', () => {
  const harness = new Harness();
  harness.create(segmentA);
  harness.create(segmentB);
  harness.write([record(1n, 0n)]);
  harness.faults.appendErrorProbability = 1;
  harness.write([record(2n, 1n)]);
  assert.equal(harness.lastOf('write-ack').status, 'disk_error');
  assert.ok(harness.logs.includes('hot_log_append_failed'));
  harness.faults.appendErrorProbability = 0;
  harness.write([record(1n, 0n, 9)], { segment: segmentB });
  assert.equal(harness.lastOf('write-ack').status, 'ok');
  harness.write([record(2n, 1n)]);
  assert.equal(harness.lastOf('write-ack').scl, 2n);
  harness.crashAndRestart();
  harness.write([]);
  assert.equal(harness.lastOf('write-ack').scl, 2n);
});

test('the hot tail limit is enforced with a typed overloaded reply', () => {
  const harness = new Harness({ hotTailRecordsMax: 4 });
  harness.create();
  harness.write([record(1n, 0n), record(2n, 1n), record(3n, 2n), record(4n, 3n), record(5n, 4n)]);
  assert.equal(harness.lastOf('write-ack').status, 'overloaded');
  assert.equal(harness.lastOf('write-ack').scl, 0n);
});

test('a corrupt page version is detected and reported, never served', () => {
  const harness = new Harness({ recordsPerVersion: 1 });
  harness.create();
  harness.write([record(1n, 0n), record(2n, 1n)]);
  harness.run(100); // coalesce into page versions
  assert.ok(harness.store.flipBit('v/'));
  harness.deliver({ kind: 'get-page', from: CLIENT, requestId: 9, segment: segmentA, epoch: epoch(1), pageId: pageId(3), atLsn: 2n, requiredScl: 2n });
  assert.equal(harness.lastOf('page').status, 'checksum_mismatch');
  assert.ok(harness.logs.includes('corrupt_page_version'));
});

test('a corrupt record in the store makes the segment repair itself and leave read quorums', () => {
  const harness = new Harness();
  harness.create();
  harness.write([record(1n, 0n), record(2n, 1n)]);
  harness.run(100);
  assert.ok(harness.store.flipBit('p/'));
  harness.deliver({ kind: 'recovery-query', from: CLIENT, requestId: 4, segment: segmentA, newEpoch: epoch(2) });
  const reply = harness.lastOf('recovery-reply');
  assert.equal(reply.repairing, true);
  assert.ok(harness.logs.includes('segment_damaged'));
});

test('records covered by a version at or below the GC point never reach the page store; reads from that point on still see them', () => {
  const harness = new Harness({ recordsPerVersion: 4 });
  harness.create();
  const records = Array.from({ length: 10 }, (_, index) => record(BigInt(index + 1), BigInt(index)));
  // The writer says: all ten are durable (vdlHint) and nobody reads below LSN 10 (retention).
  harness.write(records, { vdlHint: 10n, retentionLsn: 10n });
  harness.run(100); // one coalescing pass: versions at LSN 4 and 8, the newest (8) is kept
  const page = `${segmentA}/${'3'.padStart(8, '0')}/`;
  const lsnsOf = (prefix: string): string[] => harness.storeKeys(`${prefix}/${page}`).map((key) => String(BigInt(`0x${key.slice(-16)}`)));
  assert.deepEqual(lsnsOf('v'), ['8']);
  assert.deepEqual(lsnsOf('p'), ['9', '10'], 'only the records above the version are stored');
  const expected = emptyPage();
  for (const each of records) applyRedo(expected, each);
  const read = (atLsn: Lsn): Extract<Message, { kind: 'page' }> => {
    harness.deliver({ kind: 'get-page', from: CLIENT, requestId: 9, segment: segmentA, epoch: epoch(1), pageId: pageId(3), atLsn, requiredScl: atLsn });
    return harness.lastOf('page');
  };
  assert.deepStrictEqual(unsealPage(read(10n).page), expected);
  // Below the GC point the page is gone: refused, never served wrong.
  assert.equal(read(5n).status, 'not_readable');
  harness.crashAndRestart();
  assert.deepStrictEqual(unsealPage(read(10n).page), expected);
  assert.equal(read(5n).status, 'not_readable');
});

test('dropping a volume removes its segments and their store keys, durably, and leaves the other volumes alone', () => {
  const harness = new Harness();
  const orders0 = segmentId(protectionGroupId(0), nodeId(1), 'orders');
  const orders1 = segmentId(protectionGroupId(1), nodeId(1), 'orders');
  for (const segment of [segmentA, orders0, orders1]) harness.create(segment);
  for (const segment of [segmentA, orders0, orders1]) harness.write([record(1n, 0n), record(2n, 1n)], { segment, vdlHint: 2n, retentionLsn: 2n });
  harness.run(100); // coalesced into the page store
  harness.write([record(3n, 2n)], { segment: orders0 }); // and one still in the hot log only
  assert.ok(harness.storeKeys(`m/${orders0}`).length > 0 && harness.storeKeys(`p/${orders1}`).length > 0);

  harness.deliver({ kind: 'drop-volume', from: CLIENT, requestId: 5, volume: 'orders' });
  const ack = harness.lastOf('drop-volume-ack');
  assert.deepStrictEqual([ack.status, ack.dropped, ack.volume], ['ok', 2, 'orders']);
  harness.write([record(4n, 3n)], { segment: orders0 });
  assert.equal(harness.lastOf('write-ack').status, 'unknown_segment', 'a dropped segment takes no writes');
  harness.run(100);
  for (const kind of ['m', 'v', 'p', 'l']) assert.deepEqual(harness.storeKeys(`${kind}/orders/`), [], `no ${kind}/ keys of the dropped volume`);

  const readA = (): Uint8Array | undefined => {
    harness.deliver({ kind: 'get-page', from: CLIENT, requestId: 9, segment: segmentA, epoch: epoch(1), pageId: pageId(3), atLsn: 2n, requiredScl: 2n });
    const reply = harness.lastOf('page');
    assert.equal(reply.status, 'ok');
    return unsealPage(reply.page);
  };
  const expected = emptyPage();
  for (const lsn of [1n, 2n]) applyRedo(expected, record(lsn, lsn - 1n));
  assert.deepStrictEqual(readA(), expected, 'the other volume still serves');

  // After a crash the drop holds: the segments do not come back from the hot log.
  harness.crashAndRestart();
  harness.run(100);
  harness.write([record(4n, 3n)], { segment: orders0 });
  assert.equal(harness.lastOf('write-ack').status, 'unknown_segment');
  for (const kind of ['m', 'v', 'p', 'l']) assert.deepEqual(harness.storeKeys(`${kind}/orders/`), []);
  assert.deepStrictEqual(readA(), expected);

  // Dropping again is a no-op; a malformed name is refused.
  harness.deliver({ kind: 'drop-volume', from: CLIENT, requestId: 6, volume: 'orders' });
  assert.deepStrictEqual([harness.lastOf('drop-volume-ack').status, harness.lastOf('drop-volume-ack').dropped], ['ok', 0]);
  harness.deliver({ kind: 'drop-volume', from: CLIENT, requestId: 7, volume: '../x' });
  assert.equal(harness.lastOf('drop-volume-ack').status, 'malformed');
});

test('a drop interrupted by a crash before its store keys were deleted finishes after the restart', () => {
  const harness = new Harness();
  const orders0 = segmentId(protectionGroupId(0), nodeId(1), 'orders');
  harness.create(orders0);
  harness.write([record(1n, 0n), record(2n, 1n)], { segment: orders0, vdlHint: 2n, retentionLsn: 2n });
  harness.run(100);
  assert.ok(harness.storeKeys(`p/${orders0}`).length > 0);
  // The drop is acknowledged (its frame synced); the crash comes before any store commit lands.
  harness.node.receive({ kind: 'drop-volume', from: CLIENT, requestId: 5, volume: 'orders' });
  for (let step = 0; step < 1000 && !harness.sent.some((message) => message.kind === 'drop-volume-ack'); step++) harness.events.step(harness.events.nowMs + 1) || (harness.events.nowMs += 1);
  assert.equal(harness.lastOf('drop-volume-ack').status, 'ok');
  assert.ok(harness.storeKeys(`p/${orders0}`).length > 0, 'the keys are still there when the node crashes');
  harness.crashAndRestart();
  harness.run(100);
  for (const kind of ['m', 'v', 'p', 'l']) assert.deepEqual(harness.storeKeys(`${kind}/orders/`), [], `no ${kind}/ keys after the restart`);
  harness.write([record(3n, 2n)], { segment: orders0 });
  assert.equal(harness.lastOf('write-ack').status, 'unknown_segment');
});
