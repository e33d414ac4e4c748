import assert from 'node:assert/strict';
import { test } from 'node:test';
import { epoch, pageId, segmentId, protectionGroupId, nodeId, defaultStorageLimits } from '../common/index.js';
import { RedoKind, FLAG_CPL, type RedoRecord } from '../page/index.js';
import { decodeMessage, encodeMessage, FrameSplitter, type Message } from './messages.js';

const segment = segmentId(protectionGroupId(2), nodeId(5));
const record = (lsn: bigint): RedoRecord => ({
  lsn,
  prevLsnOfThisPg: lsn - 1n,
  pageId: pageId(7),
  epoch: epoch(3),
  flags: FLAG_CPL,
  kind: RedoKind.Write,
  offset: 100,
  data: new Uint8Array([1, 2, 3, 4, 5]),
});

const fixtures: Message[] = [
  { kind: 'write', from: 'client:w', segment, epoch: epoch(3), vdlHint: 10n, retentionLsn: 2n, records: [record(11n), record(12n)] },
  { kind: 'write-ack', segment, status: 'ok', dataEpoch: epoch(3), fencedEpoch: epoch(3), scl: 12n, incarnation: 4, repairing: false, repairTargetKnown: false, controlSequence: 9 },
  { kind: 'get-page', from: 'client:w', requestId: 1, segment, epoch: epoch(3), pageId: pageId(7), atLsn: 12n, requiredScl: 11n },
  { kind: 'page', requestId: 1, segment, status: 'ok', page: new Uint8Array(8196).fill(9) },
  { kind: 'recovery-query', from: 'client:w', requestId: 2, segment, newEpoch: epoch(4) },
  { kind: 'recovery-reply', requestId: 2, segment, status: 'ok', dataEpoch: epoch(3), scl: 12n, vdlHint: 10n, chainLsnAtHint: 9n, chain: [[11n, false], [12n, true]], repairing: false, incarnation: 1 },
  { kind: 'truncate', from: 'client:w', requestId: 3, segment, history: [{ epoch: epoch(4), truncateAboveLsn: 12n }], peers: [nodeId(1), nodeId(5)] },
  { kind: 'gossip-push', segment, fromSegment: segment, dataEpoch: epoch(3), vdlHint: 10n, history: [], hydrateFromLsn: 0n, records: [record(13n)] },
  { kind: 'gossip-push', segment, fromSegment: segment, dataEpoch: epoch(5), vdlHint: 0n, history: [{ epoch: epoch(4), truncateAboveLsn: 12n }, { epoch: epoch(5), truncateAboveLsn: 2n ** 64n - 1n }], hydrateFromLsn: 7n, records: [] },
  { kind: 'gossip-pull', segment, fromSegment: segmentId(protectionGroupId(0), nodeId(1)), dataEpoch: epoch(4), scl: 12n, history: [{ epoch: epoch(4), truncateAboveLsn: 12n }] },
  { kind: 'write-ack', segment, status: 'checksum_mismatch', dataEpoch: epoch(0), fencedEpoch: epoch(7), scl: 0n, incarnation: 1_700_000_000_123, repairing: true, repairTargetKnown: true, controlSequence: 0 },
  { kind: 'page', requestId: 2 ** 31, segment, status: 'not_readable', page: new Uint8Array(0) },
  { kind: 'hydrate-chunk', segment, fromSegment: segment, status: 'ok', dataEpoch: epoch(3), atLsn: 12n, chainLsn: 11n, session: 5, afterPageId: -1, pageIds: [7], done: true, pages: new Uint8Array(8196) },
  { kind: 'repair-target', from: 'client:w', segment, targetLsn: 99n },
  { kind: 'hello', from: 'node:1' },
];

test('every message kind survives an encode/decode round trip', () => {
  for (const message of fixtures) {
    const decoded = decodeMessage(encodeMessage(message));
    assert.ok(decoded.ok, `${message.kind}: ${decoded.ok ? '' : decoded.detail}`);
    assert.deepStrictEqual(decoded.message, message);
  }
});

test('a stream split at every byte offset yields the same frames', () => {
  const stream = Buffer.concat(fixtures.map((message) => encodeMessage(message)));
  for (let cut = 0; cut <= stream.length; cut++) {
    const splitter = new FrameSplitter(defaultStorageLimits.frameBytesMax);
    const first = splitter.push(new Uint8Array(stream.subarray(0, cut)));
    const second = splitter.push(new Uint8Array(stream.subarray(cut)));
    const frames = [...first.frames, ...second.frames];
    assert.equal(frames.length, fixtures.length, `cut at ${cut}`);
    frames.forEach((frame, index) => {
      const decoded = decodeMessage(frame);
      assert.ok(decoded.ok);
      assert.deepStrictEqual(decoded.message, fixtures[index]);
    });
  }
});

test('a flipped bit anywhere in a frame is detected, never decoded into a different message', () => {
  const frame = encodeMessage(fixtures[0]!);
  for (let at = 0; at < frame.length; at++) {
    for (const bit of [0, 3, 7]) {
      const damaged = frame.slice();
      damaged[at] = damaged[at]! ^ (1 << bit);
      const decoded = decodeMessage(damaged);
      assert.equal(decoded.ok, false, `flip at byte ${at} bit ${bit} went unnoticed`);
    }
  }
});

test('an oversized frame is refused before it is buffered', () => {
  const splitter = new FrameSplitter(1024);
  const header = new Uint8Array(8);
  new DataView(header.buffer).setUint32(0, 1 << 30, true);
  assert.equal(splitter.push(header).error, 'frame_too_large');
});

test('a frame whose length field lies is malformed', () => {
  const frame = encodeMessage(fixtures[1]!);
  new DataView(frame.buffer).setUint32(0, frame.length - 1, true);
  const decoded = decodeMessage(frame);
  assert.equal(decoded.ok, false);
  assert.equal(decoded.ok ? undefined : decoded.error, 'malformed_frame');
  const tiny = new FrameSplitter(1024).push(new Uint8Array([3, 0, 0, 0]));
  assert.equal(tiny.error, 'malformed_frame');
});
