// float4 and float8 against PostgreSQL (PGlite): output digits (TY1) on generated doubles
// and floats, input on generated decimals (midpoints between float32s included), and the
// arithmetic's overflow, underflow and division errors (TY8).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  floatArithmetic,
  type FloatOperator,
  formatFloat4,
  formatFloat8,
  parseFloat4,
  parseFloat8,
  shortestFloat32Digits,
  shortestFloat64Digits,
} from './float.js';
import { exactDecimal } from './numeric.js';
import { type ReferenceCase, referenceSuite, sqlLiteral } from './reference-postgres.js';

const { sample, assertSameAsPostgres } = referenceSuite();

/** A JS number as text PostgreSQL reads back to the same value (String(-0) is '0'). */
const floatText = (value: number): string => (Object.is(value, -0) ? '-0' : String(value));

/** Doubles across the whole range, and the awkward ones: large integers, powers, neighbours. */
function interestingDoubles(count: number, offset: number): number[] {
  const values = sample(fc.double(), count, offset);
  const integers = sample(fc.bigInt({ min: 2n ** 50n, max: 2n ** 80n }), count / 4, offset + 1).map(Number);
  const scaled = sample(fc.tuple(fc.integer({ min: 1, max: 99999 }), fc.integer({ min: -30, max: 30 })), count / 4, offset + 2).map(([m, e]) => Number(`${m}e${e}`));
  const fixed = [0, -0, NaN, Infinity, -Infinity, 0.1, 1e21, 1.5e-7, 1e15, 1e14, 123456789012345, 1e-4, 1e-5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2 ** 52, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 9007199254740993, 1 / 3];
  return [...values, ...integers, ...scaled, ...fixed];
}

describe('float output (TY1)', () => {
  it('prints doubles with the shortest digits PostgreSQL prints', async () => {
    const doubles = interestingDoubles(2000, 0);
    await assertSameAsPostgres(doubles.map((value) => ({ sql: `${sqlLiteral(floatText(value))}::float8`, ours: () => formatFloat8(value) })));
  });

  it('prints floats with the shortest float32 digits PostgreSQL prints', async () => {
    const floats = [...sample(fc.float(), 2000, 3), ...interestingDoubles(400, 4).map(Math.fround)];
    floats.push(1 / 3, 0.1, 94721904, 16777216, 16777217, 1e6, 123456, 1.17549435e-38, 1e-45, 3.4028234663852886e38);
    const cases = floats.map((value) => Math.fround(value)).map((value) => ({ sql: `${sqlLiteral(floatText(value))}::float4`, ours: () => formatFloat4(value) }));
    await assertSameAsPostgres(cases);
  });

  it("the exact interval search agrees with JS's shortest digits away from the bounds", () => {
    for (const value of sample(fc.double({ min: 2 ** -1000, max: 2 ** 50, noNaN: true }), 3000, 5)) {
      const ours = shortestFloat64Digits(value);
      const text = value.toExponential();
      const [mantissa, exponent] = text.split('e') as [string, string];
      assert.deepEqual(ours, { digits: mantissa.replace('.', ''), exponent: Number(exponent) }, String(value));
    }
    assert.deepEqual(shortestFloat32Digits(Math.fround(0.1)), { digits: '1', exponent: -1 });
  });
});

/** Decimal strings as people and programs write them, valid and not. */
const floatTexts: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.double().map(String) },
  {
    weight: 10,
    arbitrary: fc
      .tuple(fc.constantFrom('', '-', '+'), fc.stringMatching(/^[0-9]{0,25}$/), fc.stringMatching(/^[0-9]{0,25}$/), fc.integer({ min: -340, max: 340 }), fc.boolean())
      .map(([sign, integer, fraction, exponent, withExponent]) => `${sign}${integer}.${fraction}${withExponent ? `e${exponent}` : ''}`),
  },
  { weight: 2, arbitrary: fc.constantFrom('NaN', 'nan', '-NaN', 'nan(12_x)', 'nan(', 'Infinity', '-infinity', 'inf', '+INF', 'infinit', ' 1 ', '1e', '1e+', '.', '-', '', '  ', '1.2.3', 'e5', '0x10', '-0x1.8p3', '0x.8', '0x1p', '0x', '0x1p-1074', '0x1p-1075', '1_0', '١') },
);

/** Decimals at, just above and just below the midpoint between two neighbouring float32s. */
function float32Midpoints(count: number, offset: number): string[] {
  return sample(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(1e-40), max: Math.fround(3e38) }), count, offset).flatMap((value) => {
    const below = Math.fround(value);
    const view = new DataView(new ArrayBuffer(4));
    view.setFloat32(0, below);
    view.setUint32(0, view.getUint32(0) + 1);
    const above = view.getFloat32(0);
    if (!Number.isFinite(above)) return [];
    const { digits, exponent } = exactDecimal((below + above) / 2);
    const text = `${digits}e${exponent}`;
    return [text, `${digits}00000000001e${exponent - 11}`, `${digits - 1n}99999999999e${exponent - 11}`];
  });
}

describe('float input', () => {
  it('reads doubles as float8in does, errors included', async () => {
    const texts = [...sample(floatTexts, 1500, 6), '1e-400', '1e400', ' 1e400x', '2.4703282292062328e-324', '2.4703282292062327e-324', '1.7976931348623158e308', '1.7976931348623159e308'];
    await assertSameAsPostgres(texts.map((text) => ({ sql: `${sqlLiteral(text)}::float8`, ours: () => formatFloat8(parseFloat8(text)) })));
  });

  it('reads floats as float4in (strtof) does, midpoints between float32s included', async () => {
    const texts = [...sample(floatTexts, 1000, 7), ...float32Midpoints(300, 8), '1e-46', '1e-45', '7e-46', '3.4028235e38', '3.4028236e38', '1e39'];
    await assertSameAsPostgres(texts.map((text) => ({ sql: `${sqlLiteral(text)}::float4`, ours: () => formatFloat4(parseFloat4(text)) })));
  });
});

describe('float arithmetic', () => {
  it('adds, subtracts, multiplies and divides with PostgreSQL overflow, underflow and zero-division errors', async () => {
    const operators: FloatOperator[] = ['+', '-', '*', '/'];
    const special = [0, -0, 1, -1, 1e308, -1e308, 1e-308, 5e-324, Infinity, -Infinity, NaN, 3.4e38, 1e-45, 2];
    const pairs = [...sample(fc.tuple(fc.double(), fc.double()), 300, 9)];
    for (const a of special) for (const b of special) pairs.push([a, b]);
    const cases: ReferenceCase[] = [];
    for (const [a, b] of pairs) {
      for (const operator of operators) {
        cases.push({
          sql: `${sqlLiteral(floatText(a))}::float8 ${operator} ${sqlLiteral(floatText(b))}::float8`,
          ours: () => formatFloat8(floatArithmetic(operator, a, b, false)),
        });
        const fa = Math.fround(a);
        const fb = Math.fround(b);
        cases.push({
          sql: `${sqlLiteral(floatText(fa))}::float4 ${operator} ${sqlLiteral(floatText(fb))}::float4`,
          ours: () => formatFloat4(floatArithmetic(operator, fa, fb, true)),
        });
      }
    }
    await assertSameAsPostgres(cases);
  });
});

describe('float edge cases pinned to PostgreSQL 15', () => {
  it('formats the documented examples', () => {
    assert.equal(formatFloat8(0.1), '0.1');
    assert.equal(formatFloat8(1e21), '1e+21');
    assert.equal(formatFloat8(1.5e-7), '1.5e-07');
    assert.equal(formatFloat8(-0), '-0');
    assert.equal(formatFloat8(NaN), 'NaN');
    assert.equal(formatFloat8(-Infinity), '-Infinity');
    assert.equal(formatFloat4(Math.fround(0.1)), '0.1');
    assert.equal(formatFloat4(Math.fround(1 / 3)), '0.33333334');
    assert.equal(formatFloat4(94721904), '9.4721904e+07');
    // PostgreSQL 15 names the whole input for real, only the number for double precision.
    assert.throws(() => parseFloat4(' 1e-50 '), { message: '" 1e-50 " is out of range for type real' });
    assert.throws(() => parseFloat8(' 1e400 '), { message: '"1e400" is out of range for type double precision' });
    // glibc's strtod reports a hexadecimal overflow as ERANGE (PGlite's musl returns ∞).
    assert.throws(() => parseFloat8('0x1.fffffffffffff8p1023'), { code: '22003' });
    assert.equal(parseFloat8('0x1.fffffffffffff7p1023'), 1.7976931348623157e308);
  });
});
