// The registry, text I/O of every type, casts, binary formats, comparisons, integer
// arithmetic and type names, against PostgreSQL (PGlite). Invariants: TY1 (text output),
// TY2 (binary round trip), TY4 (binary bytes), TY5 (casts), TY6 (order), TY7 (registry),
// TY8 (integer arithmetic errors).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyTypmod, cast, castContext } from './casts.js';
import { integerOperation, type IntegerOperator, type IntegerTypeName } from './integer.js';
import { negate } from './operators.js';
import { type ReferenceCase, referenceSuite, sqlLiteral, textArrayBinary } from './reference-postgres.js';
import { formatType, parseTypeText, typeDisplayName } from './type-names.js';
import { binaryIn, binaryOut, compare, DEFAULT_TYPE_CONTEXT, textIn, textOut, type TypeContext, typeCatalog, type TypeName, TypeOids } from './types.js';

const { sample, reference, assertSameAsPostgres } = referenceSuite();

/** A regclass lookup that finds nothing, so names behave as in an empty database. */
const context: TypeContext = { ...DEFAULT_TYPE_CONTEXT, relationOid: () => null };


describe('the registry (TY7)', () => {
  it("matches pg_type's oid, typname, typlen, typcategory, typispreferred, typarray and typelem", async () => {
    const ours = typeCatalog();
    const theirs = await reference().query<{ oid: number; name: string; length: number; category: string; preferred: boolean; element: number; array: number }>(
      'select oid::int, typname::text as name, typlen::int as length, typcategory::text as category, typispreferred as preferred, typelem::int as element, typarray::int as array from pg_type where oid = any($1::int[]) order by oid',
      [ours.map((row) => row.oid)],
    );
    assert.deepEqual([...ours].sort((a, b) => a.oid - b.oid), theirs);
  });

  it("names types as format_type(oid, NULL) does in messages", async () => {
    const oids = typeCatalog().map((row) => row.oid);
    const theirs = await reference().query<{ oid: number; name: string }>('select oid::int, format_type(oid, null) as name from pg_type where oid = any($1::int[])', [oids]);
    for (const row of theirs) assert.equal(typeDisplayName(row.oid), row.name, String(row.oid));
  });
});

const integerTexts = (type: IntegerTypeName, offset: number): string[] => {
  const bits = { int2: 16n, int4: 32n, int8: 64n }[type];
  const max = 2n ** (bits - 1n);
  const random = sample(fc.bigInt({ min: -max * 2n, max: max * 2n }), 150, offset).map(String);
  return [...random, String(max - 1n), String(-max), String(max), String(-max - 1n), ' 12 ', '+7', '-0', '', ' ', '-', '1.5', '1e3', '12x', 'x', '0012', '\t42\n'];
};

const textSamples = (offset: number): string[] => [
  ...sample(fc.string({ unit: 'grapheme', maxLength: 12 }), 80, offset),
  ...sample(fc.string({ maxLength: 12 }), 80, offset + 1).map((text) => text.replaceAll('\u0000', '')),
  'abc', 'abc   ', '  abc', 'héllo', '日本語テキスト', '😀😀😀😀', 'a😀 ', '', ' ', '    ',
].filter((text) => !text.includes('\u0000'));

describe('text input and output of every type (TY1)', () => {
  it('bool', async () => {
    const texts = ['t', 'true', 'TRUE', 'tr', 'tru', 'truex', 'yes', 'y', 'YE', 'on', 'ON', 'o', 'of', 'off', 'offf', '1', '0', '01', 'f', 'fa', 'false', 'no', 'n', ' t ', '\tyes\n', 'x', '', ' ', '2'];
    await assertSameAsPostgres(texts.map((text) => ({ sql: `${sqlLiteral(text)}::bool`, ours: () => textOut(TypeOids.bool, textIn(TypeOids.bool, text)) })));
  });

  it('int2, int4, int8 and oid', async () => {
    const cases: ReferenceCase[] = [];
    for (const [type, offset] of [['int2', 0], ['int4', 10], ['int8', 20]] as const) {
      for (const text of integerTexts(type, offset)) cases.push({ sql: `${sqlLiteral(text)}::${type}`, ours: () => textOut(TypeOids[type], textIn(TypeOids[type], text)) });
    }
    const oidTexts = ['0', '4294967295', '4294967296', '-1', '-2147483648', ' 12 ', '+3', 'x', '', '12x', '18446744073709551616'];
    for (const text of oidTexts) cases.push({ sql: `${sqlLiteral(text)}::oid`, ours: () => textOut(TypeOids.oid, textIn(TypeOids.oid, text)) });
    await assertSameAsPostgres(cases);
  });

  it('text, varchar(n), char(n) and name, with typmods applied as the input function and as casts do', async () => {
    const cases: ReferenceCase[] = [];
    const longNames = ['a'.repeat(63), 'a'.repeat(64), 'é'.repeat(40), `${'a'.repeat(62)}é`, `${'a'.repeat(61)}😀x`];
    for (const text of [...textSamples(30), ...longNames]) {
      cases.push({ sql: `${sqlLiteral(text)}::text`, ours: () => textOut(TypeOids.text, textIn(TypeOids.text, text)) });
      cases.push({ sql: `${sqlLiteral(text)}::name`, ours: () => textOut(TypeOids.name, textIn(TypeOids.name, text)) });
      cases.push({ sql: `${sqlLiteral(text)}::bpchar`, ours: () => textOut(TypeOids.bpchar, textIn(TypeOids.bpchar, text)) });
      for (const length of [1, 3, 5]) {
        const typmod = length + 4;
        // The cast: input without typmod, then length coercion with explicit = true.
        cases.push({ sql: `${sqlLiteral(text)}::varchar(${length})`, ours: () => textOut(TypeOids.varchar, cast(text, TypeOids.unknown, TypeOids.varchar, typmod, true)) });
        cases.push({ sql: `${sqlLiteral(text)}::char(${length})`, ours: () => textOut(TypeOids.bpchar, cast(text, TypeOids.unknown, TypeOids.bpchar, typmod, true)) });
        // The input function with the column's typmod: implicit semantics, errors when too long.
        cases.push({ sql: `pg_catalog."varchar"(${sqlLiteral(text)}::varchar, ${typmod}, false)`, ours: () => textOut(TypeOids.varchar, textIn(TypeOids.varchar, text, typmod)) });
        cases.push({ sql: `pg_catalog.bpchar(${sqlLiteral(text)}::bpchar, ${typmod}, false)`, ours: () => textOut(TypeOids.bpchar, textIn(TypeOids.bpchar, text, typmod)) });
      }
    }
    await assertSameAsPostgres(cases);
  });

  it('bytea, in hex and escape formats', async () => {
    const texts = [
      '\\x', '\\x00ff', '\\xDEADbeef', '\\x 01 02\n03', '\\x0', '\\x0g', '\\xg0', '\\x 0 1', '\\X01', 'abc', 'a\\\\b', '\\101\\102', '\\400', '\\1', '\\', 'é', '\\x😀',
      ...sample(fc.uint8Array({ maxLength: 20 }), 60, 40).map((bytes) => `\\x${Buffer.from(bytes).toString('hex')}`),
    ];
    await assertSameAsPostgres(texts.map((text) => ({ sql: `${sqlLiteral(text)}::bytea`, ours: () => textOut(TypeOids.bytea, textIn(TypeOids.bytea, text)) })));
  });
});

/** Literal values of each source type for the cast matrix. */
const castSources: ReadonlyArray<{ type: TypeName; typmod: number; spelling: string; values: string[] }> = [
  { type: 'unknown', typmod: -1, spelling: '', values: ['12', ' 7 ', 'abc', '1.5', 'true', '2024-01-02 03:04:05', '\\x41'] },
  { type: 'bool', typmod: -1, spelling: 'boolean', values: ['true', 'false'] },
  { type: 'int2', typmod: -1, spelling: 'smallint', values: ['0', '-1', '32767', '-32768', '100'] },
  { type: 'int4', typmod: -1, spelling: 'integer', values: ['0', '-1', '2147483647', '-2147483648', '40000', '2'] },
  { type: 'int8', typmod: -1, spelling: 'bigint', values: ['0', '9223372036854775807', '-9223372036854775808', '3000000000', '-3000000000', '16777217', '9007199254740993', '4294967295'] },
  { type: 'float4', typmod: -1, spelling: 'real', values: ['0', '-0', '1.5', '2.5', '-2.5', '32767.5', '32768', '2147483520', '1e10', '1e20', 'NaN', 'Infinity', '-Infinity', '1e-40', '0.1', '123456.7'] },
  {
    type: 'float8',
    typmod: -1,
    spelling: 'double precision',
    values: ['0', '-0', '0.5', '1.5', '2.5', '-2.5', '-0.5', '32767.5', '-32768.5', '2147483647.5', '-2147483648.5', '2147483646.5', '9.2233720368547758e18', '-9.2233720368547758e18', 'NaN', 'Infinity', '-Infinity', '1e39', '1e-50', '3.4028235e38', '3.4028236e38', '0.1', '1e300', '123456789.123'],
  },
  { type: 'numeric', typmod: -1, spelling: 'numeric', values: ['0', '1.5', '-2.5', '0.5', '32767.49', '32767.5', '2147483647.5', '-2147483648.5', '9223372036854775807.4', '9223372036854775807.5', 'NaN', 'Infinity', '-Infinity', '1e39', '1e-50', '123.456', '1e400', '-0.000001'] },
  { type: 'text', typmod: -1, spelling: 'text', values: ['123', ' 42 ', 'abc', '1.5', 'true', '2024-01-02', '\\x41', '  padded  ', 'héllo wörld', '12345678901234567890', '-', '4000000000'] },
  { type: 'varchar', typmod: 14, spelling: 'varchar(10)', values: ['123', 'abc  ', 'true', 'x😀y'] },
  { type: 'bpchar', typmod: 9, spelling: 'character(5)', values: ['ab', 'abc  ', '12', 'yes'] },
  { type: 'name', typmod: -1, spelling: 'name', values: ['abc', '123', 't'] },
  { type: 'oid', typmod: -1, spelling: 'oid', values: ['0', '4294967295', '2147483648', '4000000000'] },
  { type: 'regclass', typmod: -1, spelling: 'regclass', values: ['0', '4000000000'] },
  { type: 'date', typmod: -1, spelling: 'date', values: ['2024-01-02', 'infinity', '-infinity', '4714-11-24 BC', '5874897-12-31', '294276-12-31', '294277-01-01'] },
  { type: 'timestamp', typmod: -1, spelling: 'timestamp', values: ['2024-01-02 03:04:05.678', 'infinity', '4714-11-24 00:00 BC', '294276-12-31 23:59:59.999999', '2024-01-02 23:59:59.5'] },
  { type: 'timestamptz', typmod: -1, spelling: 'timestamptz', values: ['2024-01-02 03:04:05.678+00', '-infinity', '4714-11-24 00:00+00 BC', '294276-12-31 23:59:59.999999+00'] },
  { type: 'bytea', typmod: -1, spelling: 'bytea', values: ['\\x0102ff', '\\x', '\\x3132'] },
];

const castTargets: ReadonlyArray<{ type: TypeName; typmod: number }> = [
  { type: 'bool', typmod: -1 },
  { type: 'int2', typmod: -1 },
  { type: 'int4', typmod: -1 },
  { type: 'int8', typmod: -1 },
  { type: 'float4', typmod: -1 },
  { type: 'float8', typmod: -1 },
  { type: 'numeric', typmod: -1 },
  { type: 'numeric', typmod: ((5 << 16) | 2) + 4 },
  { type: 'numeric', typmod: ((3 << 16) | 0) + 4 },
  { type: 'text', typmod: -1 },
  { type: 'varchar', typmod: -1 },
  { type: 'varchar', typmod: 7 },
  { type: 'bpchar', typmod: -1 },
  { type: 'bpchar', typmod: 7 },
  { type: 'name', typmod: -1 },
  { type: 'oid', typmod: -1 },
  { type: 'regclass', typmod: -1 },
  { type: 'date', typmod: -1 },
  { type: 'timestamp', typmod: -1 },
  { type: 'timestamp', typmod: 0 },
  { type: 'timestamptz', typmod: -1 },
  { type: 'timestamptz', typmod: 2 },
  { type: 'bytea', typmod: -1 },
];

/** Casts PostgreSQL 18 (PGlite) has and 15 does not: between integers and bytea. */
const castsAddedAfter15: ReadonlySet<string> = new Set(['int2>bytea', 'int4>bytea', 'int8>bytea', 'bytea>int2', 'bytea>int4', 'bytea>int8']);

const isStringType = (type: TypeName): boolean => type === 'text' || type === 'varchar' || type === 'bpchar' || type === 'name' || type === 'unknown';

describe('casts (TY5)', () => {
  it('convert every pair of types as PostgreSQL, rounding, range errors and "cannot cast" included', async () => {
    const cases: ReferenceCase[] = [];
    for (const source of castSources) {
      for (const value of source.values) {
        for (const target of castTargets) {
          // Text to regclass looks names up in the catalog; we only compare OIDs written in digits.
          if (target.type === 'regclass' && isStringType(source.type) && !/^\d+$/.test(value)) continue;
          if (castsAddedAfter15.has(`${source.type}>${target.type}`)) continue;
          const literal = source.type === 'unknown' ? sqlLiteral(value) : `${sqlLiteral(value)}::${source.spelling}`;
          cases.push({
            sql: `CAST(${literal} AS ${formatType(TypeOids[target.type], target.typmod)})`,
            ours: () => {
              const from = TypeOids[source.type];
              const to = TypeOids[target.type];
              return textOut(to, cast(textIn(from, value, source.typmod, context), from, to, target.typmod, true, context), context);
            },
          });
        }
      }
    }
    await assertSameAsPostgres(cases);
  });

  it('apply assignment length coercion (explicit = false) as the typmod functions do', async () => {
    const cases: ReferenceCase[] = [];
    for (const text of ['abc', 'abc  ', 'abcdef', 'ab    ', 'a😀😀 ']) {
      cases.push({ sql: `pg_catalog."varchar"(${sqlLiteral(text)}::varchar, 7, false)`, ours: () => applyTypmod(TypeOids.varchar, text, 7, false) as string });
      cases.push({ sql: `pg_catalog.bpchar(${sqlLiteral(text)}::bpchar, 7, false)`, ours: () => applyTypmod(TypeOids.bpchar, text, 7, false) as string });
    }
    await assertSameAsPostgres(cases);
  });

  it("exist in the contexts pg_cast and PostgreSQL's I/O conversion rules give", async () => {
    const oids = typeCatalog().filter((row) => row.category !== 'A').map((row) => row.oid);
    const rows = await reference().query<{ source: number; target: number; context: string }>(
      'select castsource::int as source, casttarget::int as target, castcontext::text as context from pg_cast where castsource = any($1::int[]) and casttarget = any($1::int[])',
      [oids],
    );
    const listed = new Map(rows.map((row) => [`${row.source}>${row.target}`, ({ i: 'implicit', a: 'assignment', e: 'explicit' } as const)[row.context as 'i' | 'a' | 'e']]));
    const category = new Map(typeCatalog().map((row) => [row.oid, row.category]));
    for (const from of oids) {
      for (const to of oids) {
        if (from === to || from === TypeOids.unknown || to === TypeOids.unknown) continue;
        const integers: readonly number[] = [TypeOids.int2, TypeOids.int4, TypeOids.int8];
        if ((to === TypeOids.bytea && integers.includes(from)) || (from === TypeOids.bytea && integers.includes(to))) {
          assert.equal(castContext(from, to), null, 'PostgreSQL 15 has no casts between integers and bytea');
          continue;
        }
        const expected = listed.get(`${from}>${to}`) ?? (category.get(to) === 'S' ? 'assignment' : category.get(from) === 'S' ? 'explicit' : null);
        assert.equal(castContext(from, to), expected, `${from} → ${to}`);
      }
    }
  });
});

/** Sample literals per type for the binary format and ordering tests. */
const typeSamples: ReadonlyArray<{ type: TypeName; texts: string[] }> = [
  { type: 'bool', texts: ['t', 'f'] },
  { type: 'int2', texts: ['0', '-32768', '32767', ...sample(fc.integer({ min: -32768, max: 32767 }), 30, 50).map(String)] },
  { type: 'int4', texts: ['0', '-2147483648', '2147483647', ...sample(fc.integer(), 30, 51).map(String)] },
  { type: 'int8', texts: ['0', '-9223372036854775808', '9223372036854775807', ...sample(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), 30, 52).map(String)] },
  { type: 'oid', texts: ['0', '4294967295', '2147483648', '17'] },
  { type: 'float4', texts: ['0', '-0', 'NaN', 'Infinity', '-Infinity', '1e-45', ...sample(fc.float({ noNaN: true }), 30, 53).map((value) => (Object.is(value, -0) ? '-0' : String(value)))] },
  { type: 'float8', texts: ['0', '-0', 'NaN', 'Infinity', '-Infinity', '5e-324', ...sample(fc.double({ noNaN: true }), 30, 54).map((value) => (Object.is(value, -0) ? '-0' : String(value)))] },
  { type: 'numeric', texts: ['0', '0.000', 'NaN', 'Infinity', '-Infinity', '1.0', '1.00', '-12345.6789', '1e-30', '1e30'] },
  { type: 'text', texts: textSamples(55) },
  { type: 'varchar', texts: textSamples(56).slice(0, 40) },
  { type: 'bpchar', texts: ['a', 'a ', 'a  b', 'b', '', ' ', 'é', '😀', '\uffff', 'A'] },
  { type: 'name', texts: ['abc', 'ABC', 'a'.repeat(63), ''] },
  { type: 'bytea', texts: ['\\x', '\\x00', '\\x0000', '\\xff', '\\x01ff', ...sample(fc.uint8Array({ maxLength: 6 }), 20, 57).map((bytes) => `\\x${Buffer.from(bytes).toString('hex')}`)] },
  { type: 'date', texts: ['2024-01-02', 'infinity', '-infinity', '4714-11-24 BC', '5874897-12-31', '2000-01-01', '1999-12-31'] },
  { type: 'timestamp', texts: ['2024-01-02 03:04:05.678', 'infinity', '-infinity', '4714-11-24 00:00 BC', '294276-12-31 23:59:59.999999', '2000-01-01'] },
  { type: 'timestamptz', texts: ['2024-01-02 03:04:05.678+00', 'infinity', '-infinity', '4714-11-24 00:00+00 BC', '2000-01-01 00:00:00.000001+00'] },
];

describe('binary formats (TY2, TY4)', () => {
  it("send PostgreSQL's bytes, and receive them back to the same value", async () => {
    for (const { type, texts } of typeSamples) {
      const oid = TypeOids[type];
      const rows = await reference().binaryResults(`select v::${type} from unnest($1::text[]) as v`, [{ oid: 1009, bytes: textArrayBinary(texts) }]);
      texts.forEach((text, index) => {
        const value = textIn(oid, text, -1, context);
        const theirs = rows[index]![0]!;
        assert.equal(Buffer.from(binaryOut(oid, value)).toString('hex'), Buffer.from(theirs).toString('hex'), `${type} send(${text})`);
        assert.equal(textOut(oid, binaryIn(oid, theirs), context), textOut(oid, value, context), `${type} recv(${text})`);
      });
    }
  });

  it('are read by PostgreSQL as binary parameters', async () => {
    for (const { type, texts } of typeSamples) {
      const oid = TypeOids[type];
      for (const text of texts.slice(0, 8)) {
        const value = textIn(oid, text, -1, context);
        const rows = await reference().binaryResults(`select format('%s', $1::${type})`, [{ oid, bytes: binaryOut(oid, value) }]);
        assert.equal(new TextDecoder().decode(rows[0]![0]!), textOut(oid, value, context), `${type} ${text}`);
      }
    }
  });

  it('reject what the receive functions reject', () => {
    assert.throws(() => binaryIn(TypeOids.int4, Uint8Array.of(0, 0, 1)), { code: '08P01', message: 'insufficient data left in message' });
    assert.throws(() => binaryIn(TypeOids.int4, Uint8Array.of(0, 0, 0, 0, 1)), { code: '22P03', message: 'incorrect binary data format' });
    assert.throws(() => binaryIn(TypeOids.text, Uint8Array.of(0x61, 0xc3, 0x28)), { code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0xc3 0x28' });
    assert.throws(() => binaryIn(TypeOids.text, Uint8Array.of(0xed, 0xa0, 0x80)), { code: '22021' });
    assert.throws(() => binaryIn(TypeOids.text, Uint8Array.of(0x61, 0x00)), { code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' });
    assert.throws(() => binaryIn(TypeOids.name, new Uint8Array(64).fill(0x61)), { code: '42622' });
    assert.throws(() => binaryIn(TypeOids.varchar, new TextEncoder().encode('abcdef'), 7), { code: '22001' });
    assert.equal(binaryIn(TypeOids.bpchar, new TextEncoder().encode('ab'), 7), 'ab ');
    assert.equal(binaryIn(TypeOids.bool, Uint8Array.of(2)), true);
  });
});

describe('comparison (TY6)', () => {
  it('orders every type as PostgreSQL (C collation for text, NaN last, char(n) without padding)', async () => {
    for (const { type, texts } of typeSamples) {
      const oid = TypeOids[type];
      // Ties (1.0 = 1.00, 'a' = 'a ' as char, 0 = -0) are broken by the output text.
      const rows = await reference().query<{ v: string }>(`select format('%s', v::${type}) as v from unnest($1::text[]) as t(v) order by v::${type}, format('%s', v::${type}) collate "C"`, [texts]);
      const values = texts.map((text) => textIn(oid, text, -1, context));
      const ours = values
        .sort((a, b) => compare(oid, a, b) || compareText(textOut(oid, a, context), textOut(oid, b, context)))
        .map((value) => textOut(oid, value, context));
      assert.deepEqual(ours, rows.map((row) => row.v), type);
    }
  });
});

function compareText(a: string, b: string): number {
  return compare(TypeOids.text, a, b);
}

describe('integer arithmetic', () => {
  it('adds, subtracts, multiplies, divides, takes remainders and negates with PostgreSQL errors', async () => {
    const operators: IntegerOperator[] = ['+', '-', '*', '/', '%'];
    const cases: ReferenceCase[] = [];
    for (const [type, offset] of [['int2', 60], ['int4', 61], ['int8', 62]] as const) {
      const bits = BigInt({ int2: 16, int4: 32, int8: 64 }[type]);
      const max = 2n ** (bits - 1n);
      const edges = [0n, 1n, -1n, 2n, -2n, max - 1n, -max, max / 2n, -max / 2n, 3n, 7n];
      const pairs = sample(fc.tuple(fc.bigInt({ min: -max, max: max - 1n }), fc.bigInt({ min: -max, max: max - 1n })), 120, offset);
      for (const a of edges) for (const b of edges) pairs.push([a, b]);
      const value = (v: bigint): number | bigint => (type === 'int8' ? v : Number(v));
      for (const [a, b] of pairs) {
        for (const operator of operators) {
          cases.push({
            sql: `(${a})::${type} ${operator} (${b})::${type}`,
            ours: () => String(integerOperation(operator, type, value(a), value(b))),
          });
        }
        cases.push({ sql: `-((${a})::${type})`, ours: () => String(negate(TypeOids[type], value(a))) });
      }
    }
    await assertSameAsPostgres(cases);
  });
});

describe('PostgreSQL 15 behaviour where PGlite (18) differs', () => {
  it('reads oids as strtoul did: below -2^31 is out of range, 2^64 - 1 wraps to 2^32 - 1', () => {
    assert.throws(() => textIn(TypeOids.oid, '-2147483649'), { code: '22003', message: 'value "-2147483649" is out of range for type oid' });
    assert.equal(textIn(TypeOids.oid, '-2147483648'), 2147483648);
    assert.equal(textIn(TypeOids.oid, '18446744073709551615'), 4294967295);
    assert.throws(() => textIn(TypeOids.oid, '18446744071562067967'), { code: '22003' });
  });

  it('has no casts between integers and bytea (added in PostgreSQL 18)', () => {
    assert.throws(() => cast(1, TypeOids.int4, TypeOids.bytea), { code: '42846', message: 'cannot cast type integer to bytea' });
    assert.throws(() => cast(Uint8Array.of(1), TypeOids.bytea, TypeOids.int8), { code: '42846', message: 'cannot cast type bytea to bigint' });
  });

  it('reports integer overflow before trailing junk, as pg_strtoint32 did', () => {
    assert.throws(() => textIn(TypeOids.int4, '99999999999x'), { code: '22003', message: 'value "99999999999x" is out of range for type integer' });
  });
});

describe('type names', () => {
  const spellings = [
    'int', 'integer', 'int4', 'smallint', 'int2', 'bigint', 'int8', 'real', 'float4', 'float', 'float(1)', 'float(24)', 'float(25)', 'float(53)',
    'double precision', 'float8', 'numeric', 'decimal', 'dec', 'numeric(10,2)', 'decimal(5)', 'numeric(3,-2)', 'NUMERIC( 10 , 4 )', 'boolean', 'bool',
    'text', 'varchar', 'varchar(10)', 'character varying(10)', 'char varying(3)', 'Character  Varying', 'char', 'character', 'char(5)', 'character(5)',
    'bpchar', 'bpchar(4)', 'name', 'bytea', 'date', 'timestamp', 'timestamp(3)', 'timestamp without time zone', 'timestamp(0) with time zone',
    'timestamptz', 'timestamptz(4)', 'timestamp (2) without time zone', 'oid', 'regclass', 'pg_catalog.int4', 'int[]', 'varchar(5)[]', 'integer[][]',
    'serial', 'bigserial', 'smallserial', 'serial4', 'serial8', 'serial2',
  ];

  it('parse SQL spellings and print them back as format_type does', async () => {
    const columns = spellings.map((spelling, index) => `c${index} ${spelling}`).join(', ');
    await reference().query(`create table type_names (${columns})`);
    const rows = await reference().query<{ name: string }>("select format_type(atttypid, atttypmod) as name from pg_attribute where attrelid = 'type_names'::regclass and attnum > 0 order by attnum");
    spellings.forEach((spelling, index) => {
      const { type, typmod } = parseTypeText(spelling);
      assert.equal(formatType(type, typmod), rows[index]!.name, spelling);
    });
    assert.deepEqual(parseTypeText('serial'), { type: TypeOids.int4, typmod: -1, serial: 'serial' });
  });

  it('report bad modifiers and unknown types as PostgreSQL', async () => {
    const bad = ['varchar(0)', 'varchar(10485761)', 'char(0)', 'numeric(0)', 'numeric(1001)', 'numeric(5,1001)', 'numeric(5,-1001)', 'numeric(5,6,7)', 'float(0)', 'float(54)', 'text(3)', 'int4(2)', 'nosuchtype'];
    await assertSameAsPostgres(bad.map((spelling) => ({ sql: `null::${spelling}`, ours: () => (parseTypeText(spelling), null) })));
  });
});
