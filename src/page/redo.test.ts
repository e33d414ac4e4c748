import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { epoch, pageId, PAGE_BYTES } from '../common/index.js';
import { applyRedo, decodeRedo, decodeWriteMany, emptyPage, encodeRedo, encodeWriteMany, RedoKind, sealPage, unsealPage, validateRedo, type RedoRecord } from './redo.js';

const patch = fc.oneof(
  fc.record({ kind: fc.constant(RedoKind.Init), offset: fc.constant(0), data: fc.constant(new Uint8Array(0)) }, { noNullPrototype: true }),
  fc.integer({ min: 0, max: PAGE_BYTES - 1 }).chain((offset) =>
    fc.record({ kind: fc.constant(RedoKind.Write), offset: fc.constant(offset), data: fc.uint8Array({ minLength: 1, maxLength: Math.min(200, PAGE_BYTES - offset) }) }, { noNullPrototype: true }),
  ),
  fc
    .array(
      fc.integer({ min: 0, max: PAGE_BYTES - 1 }).chain((offset) => fc.record({ offset: fc.constant(offset), data: fc.uint8Array({ minLength: 1, maxLength: Math.min(64, PAGE_BYTES - offset) }) }, { noNullPrototype: true })),
      { minLength: 1, maxLength: 6 },
    )
    .map((ranges) => ({ kind: RedoKind.WriteMany, offset: 0, data: encodeWriteMany(ranges), ranges })),
);

test('a WriteMany record writes each of its ranges in order, as the same Write records would', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.integer({ min: 0, max: PAGE_BYTES - 1 }).chain((offset) => fc.record({ offset: fc.constant(offset), data: fc.uint8Array({ minLength: 1, maxLength: Math.min(64, PAGE_BYTES - offset) }) }, { noNullPrototype: true })),
        { minLength: 1, maxLength: 8 },
      ),
      (ranges) => {
        const many = emptyPage();
        const single = emptyPage();
        const base = { prevLsnOfThisPg: 0n, pageId: pageId(1), epoch: epoch(1), flags: 0 };
        applyRedo(many, { ...base, lsn: 1n, kind: RedoKind.WriteMany, offset: 0, data: encodeWriteMany(ranges) });
        ranges.forEach((range, index) => applyRedo(single, { ...base, lsn: BigInt(index + 1), kind: RedoKind.Write, offset: range.offset, data: range.data }));
        assert.deepStrictEqual(many, single);
      },
    ),
  );
  const base = { lsn: 2n, prevLsnOfThisPg: 1n, pageId: pageId(1), epoch: epoch(1), flags: 0, offset: 0 };
  assert.match(validateRedo({ ...base, kind: RedoKind.WriteMany, data: new Uint8Array([0, 0, 5, 0, 1]) }) ?? '', /malformed/, 'a range longer than the data');
  assert.match(validateRedo({ ...base, kind: RedoKind.WriteMany, data: encodeWriteMany([{ offset: PAGE_BYTES - 1, data: new Uint8Array(2) }]) }) ?? '', /malformed/, 'a range past the page');
  assert.match(validateRedo({ ...base, kind: RedoKind.WriteMany, data: new Uint8Array(0) }) ?? '', /malformed/, 'no range');
});

test('records applied after an encode/decode round trip give the same page as applied directly', () => {
  fc.assert(
    fc.property(fc.array(patch, { minLength: 1, maxLength: 30 }), (patches) => {
      const direct = emptyPage();
      const viaCodec = emptyPage();
      patches.forEach((item, index) => {
        const record: RedoRecord = { lsn: BigInt(index + 1), prevLsnOfThisPg: BigInt(index), pageId: pageId(3), epoch: epoch(1), flags: 0, kind: item.kind, offset: item.offset, data: item.data };
        applyRedo(direct, record);
        const decoded = decodeRedo(encodeRedo(record));
        assert.ok(decoded.ok);
        assert.deepStrictEqual(decoded.value, record);
        applyRedo(viaCodec, decoded.value);
      });
      assert.deepStrictEqual(viaCodec, direct);
    }),
  );
});

test('a record that writes past the page or links backwards is invalid', () => {
  const base = { pageId: pageId(1), epoch: epoch(1), flags: 0 };
  assert.match(validateRedo({ ...base, lsn: 5n, prevLsnOfThisPg: 4n, kind: RedoKind.Write, offset: PAGE_BYTES - 2, data: new Uint8Array(3) }) ?? '', /past end/);
  assert.match(validateRedo({ ...base, lsn: 5n, prevLsnOfThisPg: 5n, kind: RedoKind.Init, offset: 0, data: new Uint8Array(0) }) ?? '', /above/);
  assert.match(validateRedo({ ...base, lsn: 5n, prevLsnOfThisPg: 1n, kind: RedoKind.Image, offset: 0, data: new Uint8Array(10) }) ?? '', /whole page/);
});

test('a sealed page detects any single flipped bit', () => {
  const page = emptyPage();
  page.set([1, 2, 3], 4000);
  const sealed = sealPage(page);
  assert.deepStrictEqual(unsealPage(sealed), page);
  for (const at of [0, 4000, PAGE_BYTES - 1, PAGE_BYTES + 2]) {
    const damaged = sealed.slice();
    damaged[at] = damaged[at]! ^ 0x10;
    assert.equal(unsealPage(damaged), undefined);
  }
});

test('a record with a flipped bit fails its checksum', () => {
  const bytes = encodeRedo({ lsn: 9n, prevLsnOfThisPg: 2n, pageId: pageId(1), epoch: epoch(1), flags: 1, kind: RedoKind.Write, offset: 8, data: new Uint8Array([7, 7]) });
  for (let at = 0; at < bytes.length; at++) {
    const damaged = bytes.slice();
    damaged[at] = damaged[at]! ^ 1;
    assert.equal(decodeRedo(damaged).ok, false, `flip at ${at}`);
  }
});

test('a WriteMany record is valid exactly when its ranges decode, and then applies them', () => {
  // Bytes biased toward plausible range headers: small lengths, offsets near the page end.
  // Ranges whose length field mostly tells the truth, at offsets up to past the page end.
  const range = fc.tuple(fc.oneof(fc.integer({ min: 0, max: PAGE_BYTES - 41 }), fc.integer({ min: PAGE_BYTES - 41, max: PAGE_BYTES + 8 })), fc.uint8Array({ maxLength: 40 }), fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 41 }) }));
  const data = fc
    .array(range, { maxLength: 5 })
    .map((parts) => Uint8Array.from(parts.flatMap(([offset, body, lie]) => [offset & 0xff, offset >> 8, (lie ?? body.length) & 0xff, (lie ?? body.length) >> 8, ...body])));
  let valid = 0;
  fc.assert(
    fc.property(data, (bytes) => {
      const record: RedoRecord = { lsn: 2n, prevLsnOfThisPg: 1n, pageId: pageId(1), epoch: epoch(1), flags: 0, kind: RedoKind.WriteMany, offset: 0, data: bytes };
      const ranges = decodeWriteMany(bytes);
      assert.equal(validateRedo(record) === undefined, ranges !== undefined);
      if (ranges === undefined) return;
      valid++;
      const direct = emptyPage();
      for (const range of ranges) direct.set(range.data, range.offset);
      const applied = emptyPage();
      applyRedo(applied, record);
      assert.deepEqual(applied, direct);
    }),
    { numRuns: 2000, seed: 7 },
  );
  assert.ok(valid > 300, `${valid} of 2000 were valid`);
});
