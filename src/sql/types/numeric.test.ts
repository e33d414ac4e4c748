// Numeric against PostgreSQL (PGlite): input and output (TY1), arithmetic (TY3), rounding,
// typmods, comparisons and the binary format (TY2, TY4) on generated values. Failures print
// the fast-check seed that regenerates the same cases.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cast } from './casts.js';
import { Numeric, numericTypmod } from './numeric.js';
import { type ReferenceCase, referenceSuite, sqlLiteral, textArrayBinary } from './reference-postgres.js';
import { textOut, TypeOids } from './types.js';

const { sample, reference, assertSameAsPostgres } = referenceSuite();

const digitString = (lengthMax: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), { minLength: 0, maxLength: lengthMax }).map((digits) => digits.join(''));

/** Decimal literals of all shapes: long, short, tiny, zero, signed, with trailing zeros. */
const decimalText: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('', '-', '+', ''), digitString(25), digitString(22), fc.integer({ min: 0, max: 9 }))
  .map(([sign, integer, fraction, shape]) => {
    const integerPart = integer === '' ? '0' : integer;
    if (shape === 0) return `${sign}${integerPart}`;
    if (shape === 1) return `${sign}0.${'0'.repeat(fraction.length % 7)}${fraction || '1'}`;
    return `${sign}${integerPart}.${fraction}`;
  });

const numericText: fc.Arbitrary<string> = fc.oneof(
  { weight: 20, arbitrary: decimalText },
  { weight: 1, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', '0', '0.000', '-0.0', '1', '-1', '10000', '0.0001', '9999.9999') },
);


describe('numeric text input and output (TY1)', () => {
  it('reads and prints literals as PostgreSQL does', async () => {
    const handWritten = [
      '1.50', '  12.5  ', '.5', '5.', '-.5', '+0.0', '1e5', '1E-5', '1.5e+3', '12.34e-10', '0e-5', '-0', '00012.3400',
      'NaN', 'nan', ' -inf', '+Infinity', 'infinity', 'inf', '-Infinity ', 'Infinityx', 'NaNa',
      '', ' ', '.', '-', '1.2.3', '1e', '1e+', 'e5', '1 2', 'abc', '1x', '١',
      '1e131071', '1e131072', '1e-16383', '1e-16384', '0e-16384', '1e999999999999', '9'.repeat(1000) + '.' + '9'.repeat(1000),
    ];
    const generated = sample(numericText, 600).flatMap((text) => [text, `${text}e${(text.length % 40) - 20}`]);
    await assertSameAsPostgres(
      [...handWritten, ...generated].map((text) => ({ sql: `${sqlLiteral(text)}::numeric`, ours: () => Numeric.parse(text).toString() })),
    );
  });

  it('keeps PostgreSQL 15 behaviour where later versions differ (PGlite is 18)', () => {
    // strtol skips spaces before the exponent; PostgreSQL 16 rewrote the parser.
    assert.equal(Numeric.parse('1e 5').toString(), '100000');
    // Non-decimal and underscore-separated numbers arrived in PostgreSQL 16.
    assert.throws(() => Numeric.parse('0x10'), /invalid input syntax for type numeric: "0x10"/);
    assert.throws(() => Numeric.parse('1_000'), /invalid input syntax for type numeric: "1_000"/);
  });

  it('applies numeric(p,s) typmods, negative scales and scales above the precision included', async () => {
    const pairs = sample(fc.tuple(numericText, fc.integer({ min: 1, max: 30 }), fc.integer({ min: -6, max: 34 })), 500, 1);
    const cases = pairs.map(([text, precision, scale]) => ({
      sql: `${sqlLiteral(text)}::numeric(${precision},${scale})`,
      ours: () => Numeric.parse(text, numericTypmod(precision, scale)).toString(),
    }));
    cases.push(
      { sql: `'Infinity'::numeric(3,1)`, ours: () => Numeric.parse('Infinity', numericTypmod(3, 1)).toString() },
      { sql: `'NaN'::numeric(3,1)`, ours: () => Numeric.parse('NaN', numericTypmod(3, 1)).toString() },
      { sql: `'99.95'::numeric(3,1)`, ours: () => Numeric.parse('99.95', numericTypmod(3, 1)).toString() },
      { sql: `'-99.94'::numeric(3,1)`, ours: () => Numeric.parse('-99.94', numericTypmod(3, 1)).toString() },
      { sql: `'0.5'::numeric(1,0)`, ours: () => Numeric.parse('0.5', numericTypmod(1, 0)).toString() },
      { sql: `'1e-20000'::numeric(5,2)`, ours: () => Numeric.parse('1e-20000', numericTypmod(5, 2)).toString() },
      { sql: `'1e999999'::numeric(5,2)`, ours: () => Numeric.parse('1e999999', numericTypmod(5, 2)).toString() },
      { sql: `'1e-16383'::numeric(5,2)`, ours: () => Numeric.parse('1e-16383', numericTypmod(5, 2)).toString() },
      { sql: `'1.5e-16383'::numeric(5,2)`, ours: () => Numeric.parse('1.5e-16383', numericTypmod(5, 2)).toString() },
      { sql: `'1e131071'::numeric(5,2)`, ours: () => Numeric.parse('1e131071', numericTypmod(5, 2)).toString() },
    );
    await assertSameAsPostgres(cases);
  });
});

describe('numeric arithmetic (TY3)', () => {
  const operations: ReadonlyArray<readonly [string, (a: Numeric, b: Numeric) => Numeric]> = [
    ['+', (a, b) => a.add(b)],
    ['-', (a, b) => a.sub(b)],
    ['*', (a, b) => a.mul(b)],
    ['/', (a, b) => a.div(b)],
    ['%', (a, b) => a.mod(b)],
  ];

  it('adds, subtracts, multiplies, divides (also with div()) and takes remainders exactly as PostgreSQL', async () => {
    const pairs = sample(fc.tuple(numericText, numericText), 800, 2);
    pairs.push(['1', '3'], ['10', '4'], ['0.000001', '7'], ['1e20', '3'], ['2', '0'], ['0', '0'], ['NaN', '0'], ['Infinity', '0'], ['1', 'Infinity'], ['-7.5', '2'], ['7', '-0.3'], ['1', '1e-1000'], ['1e-1000', '3'], ['9999', '0.0001'], ['0.0001', '9999'], ['1', '9999'], ['1', '10000'], ['1', '10001'], ['1e-1500', '3'], ['2.5e-1001', '1'], ['1', '7e-1200'], ['123.456', '1e-1100']);
    const cases: ReferenceCase[] = [];
    for (const [a, b] of pairs) {
      for (const [operator, apply] of operations) {
        cases.push({ sql: `${sqlLiteral(a)}::numeric ${operator} ${sqlLiteral(b)}::numeric`, ours: () => apply(Numeric.parse(a), Numeric.parse(b)).toString() });
      }
      cases.push({ sql: `div(${sqlLiteral(a)}::numeric, ${sqlLiteral(b)}::numeric)`, ours: () => Numeric.parse(a).divTrunc(Numeric.parse(b)).toString() });
    }
    await assertSameAsPostgres(cases);
  });

  it('negates, takes absolute values and compares as PostgreSQL (NaN above Infinity, scale ignored)', async () => {
    const pairs = sample(fc.tuple(numericText, numericText), 400, 3);
    pairs.push(['NaN', 'NaN'], ['NaN', 'Infinity'], ['-Infinity', '-1e100'], ['1.0', '1.00'], ['0', '-0.000']);
    const cases: ReferenceCase[] = pairs.flatMap(([a, b]) => [
      { sql: `-${sqlLiteral(a)}::numeric`, ours: () => Numeric.parse(a).neg().toString() },
      { sql: `abs(${sqlLiteral(a)}::numeric)`, ours: () => Numeric.parse(a).abs().toString() },
      {
        sql: `case when ${sqlLiteral(a)}::numeric < ${sqlLiteral(b)}::numeric then -1 when ${sqlLiteral(a)}::numeric > ${sqlLiteral(b)}::numeric then 1 else 0 end`,
        ours: () => String(Numeric.parse(a).compare(Numeric.parse(b))),
      },
    ]);
    await assertSameAsPostgres(cases);
  });

  it('rounds and truncates to any scale, negative included', async () => {
    const pairs = sample(fc.tuple(numericText, fc.integer({ min: -8, max: 25 })), 500, 4);
    pairs.push(['2.5', 0], ['-2.5', 0], ['1234.5', -2], ['9999.5', 0], ['0.5', -1], ['5', -1], ['-5', -1], ['NaN', 2], ['Infinity', 1]);
    const cases: ReferenceCase[] = pairs.flatMap(([text, scale]) => [
      { sql: `round(${sqlLiteral(text)}::numeric, ${scale})`, ours: () => Numeric.parse(text).round(scale).toString() },
      { sql: `trunc(${sqlLiteral(text)}::numeric, ${scale})`, ours: () => Numeric.parse(text).trunc(scale).toString() },
    ]);
    await assertSameAsPostgres(cases);
  });
});

describe('numeric conversions', () => {
  it('converts to and from integers and floats as PostgreSQL', async () => {
    const texts = sample(numericText, 300, 5);
    texts.push('2.5', '-2.5', '3.5', '0.5', '-0.5', '2147483647.4', '2147483647.5', '-2147483648.5', '9223372036854775807.5', '1e400', '1e-400');
    const cases: ReferenceCase[] = texts.flatMap((text) => [
      { sql: `${sqlLiteral(text)}::numeric::int8`, ours: () => textOut(TypeOids.int8, cast(Numeric.parse(text), TypeOids.numeric, TypeOids.int8)) },
      { sql: `${sqlLiteral(text)}::numeric::int4`, ours: () => textOut(TypeOids.int4, cast(Numeric.parse(text), TypeOids.numeric, TypeOids.int4)) },
      { sql: `${sqlLiteral(text)}::numeric::float8`, ours: () => textOut(TypeOids.float8, cast(Numeric.parse(text), TypeOids.numeric, TypeOids.float8)) },
      { sql: `${sqlLiteral(text)}::numeric::float4`, ours: () => textOut(TypeOids.float4, cast(Numeric.parse(text), TypeOids.numeric, TypeOids.float4)) },
    ]);
    // float8 → numeric prints the double with 15 significant digits (%.15g), float4 with 6.
    const doubles = sample(fc.double(), 400, 6);
    doubles.push(0.1, 1e21, 1.5e-7, 1000000000000005, 123456789012345680000, 5e-324, -0, 2 ** 70);
    for (const value of doubles) {
      cases.push({ sql: `${sqlLiteral(String(value))}::float8::numeric`, ours: () => Numeric.fromNumber(value).toString() });
    }
    for (const value of sample(fc.float(), 200, 7)) {
      cases.push({ sql: `${sqlLiteral(String(value))}::float4::numeric`, ours: () => Numeric.fromNumber(Math.fround(value), 6).toString() });
    }
    await assertSameAsPostgres(cases);
  });
});

describe('numeric binary format (TY2, TY4)', () => {
  it("produces numeric_send's bytes and reads them back to the same value and scale", async () => {
    const texts = [...sample(numericText, 400, 8), '0', '0.000', 'NaN', 'Infinity', '-Infinity', '1e-1000', '12345678.000000001', '-0.0001'];
    const rows = await reference().binaryResults(`select v::numeric from unnest($1::text[]) as v`, [
      { oid: 1009, bytes: textArrayBinary(texts) },
    ]);
    assert.equal(rows.length, texts.length);
    texts.forEach((text, index) => {
      const value = Numeric.parse(text);
      const theirs = rows[index]![0]!;
      assert.deepEqual(Buffer.from(value.toBinary()).toString('hex'), Buffer.from(theirs).toString('hex'), `numeric_send(${text})`);
      const back = Numeric.fromBinary(theirs);
      assert.equal(back.toString(), value.toString(), `numeric_recv(${text})`);
    });
  });

  it('is accepted by PostgreSQL as a binary parameter', async () => {
    const texts = sample(numericText, 200, 9);
    for (const text of texts.slice(0, 200)) {
      const rows = await reference().binaryResults('select $1::numeric::text', [{ oid: 1700, bytes: Numeric.parse(text).toBinary() }]);
      assert.equal(new TextDecoder().decode(rows[0]![0]!), Numeric.parse(text).toString(), text);
    }
  });

  it('rejects malformed binary numerics as numeric_recv does', () => {
    const header = (digits: number, weight: number, sign: number, scale: number, ...words: number[]): Uint8Array => {
      const bytes = new Uint8Array(8 + 2 * words.length);
      const view = new DataView(bytes.buffer);
      view.setUint16(0, digits);
      view.setInt16(2, weight);
      view.setUint16(4, sign);
      view.setUint16(6, scale);
      words.forEach((word, index) => view.setUint16(8 + 2 * index, word));
      return bytes;
    };
    assert.throws(() => Numeric.fromBinary(header(1, 0, 0x1234, 0, 1)), /invalid sign/);
    assert.throws(() => Numeric.fromBinary(header(1, 0, 0, 0, 10000)), /invalid digit/);
    assert.throws(() => Numeric.fromBinary(header(0, 0, 0, 0x4000)), /invalid scale/);
    assert.throws(() => Numeric.fromBinary(Uint8Array.of(0, 1, 0, 0)), { code: '08P01' });
    // No limit on the digit count (PostgreSQL 15): 3001 digits at weight 0, dscale 0 is 1.
    assert.equal(Numeric.fromBinary(header(3001, 0, 0, 0, ...new Array<number>(3001).fill(1))).toString(), '1');
    // Digits hidden by the display scale are truncated: 1.2345 sent with dscale 2 is 1.23.
    assert.equal(Numeric.fromBinary(header(2, 0, 0, 2, 1, 2345)).toString(), '1.23');
    // A protocol fixture: 12345.678 is ndigits 3, weight 1, +, dscale 3, digits 1 2345 6780.
    assert.equal(Buffer.from(Numeric.parse('12345.678').toBinary()).toString('hex'), '0003000100000003000109291a7c');
  });
});
