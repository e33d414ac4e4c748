// The key encoding orders like the values (K1), stays ordered with a suffix (K2), and
// decodes back; rows round-trip (K3).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeKey, decodeRow, encodeKey, encodeRow, keyPartsLength, prefixEnd, type Value } from './codec.js';
import { compareKeys } from './slotted-page.js';

const sign = (value: number): number => (value < 0 ? -1 : value > 0 ? 1 : 0);

function compareValues(a: Value, b: Value): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  if (typeof a === 'string' && typeof b === 'string') return sign(compareKeys(new TextEncoder().encode(a), new TextEncoder().encode(b)));
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Number.isNaN(a) ? 1 : -1;
    return sign(a - b);
  }
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  return 0;
}

// Text is valid Unicode (as in a UTF-8 database), NUL bytes included; numbers are any
// double, integral or not, in one column (K1 must hold across both).
const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary-ascii' }));
const columnKinds = [
  fc.oneof(fc.constant(null), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.double()),
  fc.oneof(fc.constant(null), text),
  fc.oneof(fc.constant(null), fc.double({ noDefaultInfinity: false }), fc.integer()),
  fc.oneof(fc.constant(null), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
];

test('keys sort like their values, column by column, with any suffix (K1, K2)', () => {
  const tuple = fc.tuple(...columnKinds);
  fc.assert(
    fc.property(tuple, tuple, fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b, suffixA, suffixB) => {
      let expected = 0;
      for (let index = 0; index < a.length && expected === 0; index++) expected = compareValues(a[index]!, b[index]!);
      const keyA = encodeKey(a);
      const keyB = encodeKey(b);
      if (expected !== 0) {
        assert.equal(sign(compareKeys(keyA, keyB)), expected);
        const withA = new Uint8Array([...keyA, ...suffixA]);
        const withB = new Uint8Array([...keyB, ...suffixB]);
        assert.equal(sign(compareKeys(withA, withB)), expected, 'a suffix never changes the order');
      }
      assert.equal(keyPartsLength(keyA, a.length), keyA.length);
      const decoded = decodeKey(keyA, a.length);
      for (const [index, value] of a.entries()) {
        if (typeof value === 'number') assert.ok(Object.is(decoded[index], value === 0 ? 0 : value) || (Number.isNaN(value) && Number.isNaN(decoded[index])), `${value} -> ${String(decoded[index])}`);
        else assert.deepEqual(decoded[index], value);
      }
    }),
    { numRuns: 2000 },
  );
});

test('rows round-trip (K3)', () => {
  const value = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), text, fc.uint8Array());
  fc.assert(
    fc.property(fc.array(value, { maxLength: 12 }), (values) => {
      const decoded = decodeRow(encodeRow(values));
      assert.equal(decoded.length, values.length);
      for (const [index, original] of values.entries()) {
        if (typeof original === 'number') assert.ok(Object.is(decoded[index], original) || (Number.isNaN(original) && Number.isNaN(decoded[index])), `${original} -> ${decoded[index]}`);
        else assert.deepEqual(decoded[index], original);
      }
    }),
    { numRuns: 2000 },
  );
});

test('prefixEnd bounds exactly the keys that start with the prefix, and never aliases it', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }).map((bytes) => bytes.map((byte) => (byte > 200 ? 0xff : byte))), fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 12 }), (prefix, suffix, other) => {
      const before = Uint8Array.from(prefix);
      const end = prefixEnd(prefix);
      assert.deepEqual(prefix, before, 'the prefix is left as it was');
      if (prefix.every((byte) => byte === 0xff)) return assert.equal(end, undefined);
      assert.ok(end !== undefined);
      end[0] = end[0]! ^ 1;
      assert.deepEqual(prefix, before, 'the end is a copy');
      end[0] = end[0]! ^ 1;
      assert.ok(compareKeys(Uint8Array.from([...prefix, ...suffix]), end) < 0, 'prefix + anything sorts before the end');
      const startsWith = other.length >= prefix.length && prefix.every((byte, index) => other[index] === byte);
      if (!startsWith && compareKeys(other, prefix) >= 0) assert.ok(compareKeys(other, end) >= 0, 'a key past the prefix range sorts at or after the end');
    }),
    { numRuns: 3000, seed: 11 },
  );
});
