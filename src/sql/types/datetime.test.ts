// date, timestamp and timestamptz against PostgreSQL (PGlite): text input of many forms and
// errors, output across the whole range (TY1), timestamp(p) rounding, the conversions
// between them in UTC and in a fixed-offset zone, and the binary formats (TY2).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  civilFromDays,
  dateToTimestamptz,
  daysFromCivil,
  fixedOffsetTimeZone,
  formatDate,
  formatTimestamp,
  formatTimestamptz,
  MICROSECONDS_PER_DAY,
  parseDate,
  parseTimestamp,
  parseTimestamptz,
  timestampToTimestamptz,
  timestamptzToDate,
  timestamptzToTimestamp,
  type TimeZone,
  UTC,
} from './datetime.js';
import { type ReferenceCase, referenceSuite, sqlLiteral } from './reference-postgres.js';
import { binaryIn, binaryOut, TypeOids } from './types.js';

const { sample, reference, assertSameAsPostgres } = referenceSuite();

const handWrittenInputs = [
  '2024-01-02', ' 2024-01-02 ', '2024-1-2', '024-01-02', '10000-01-01', '2024/01/02', '2024.01.02', '20240102', '240102',
  '1/2/3', '01/02/2024', '1-2-3', '12-31-99', '12/31/69', '12/31/70', '99-01-02', '2024-13-01', '2024-00-01', '2024-01-00', '2024-02-30',
  '2023-02-29', '2024-02-29', '2024-01-32', '0000-01-01', '0001-01-01 BC', '0001-01-01 AD', '0001-12-31 BC', '4714-11-24 BC', '4714-11-23 BC',
  '4713-01-01 BC', '294276-12-31 23:59:59.999999', '294277-01-01', '5874897-12-31', '5874898-01-01', '99999999999-01-01',
  '2024-01-02 03:04:05', '2024-01-02T03:04:05', '2024-01-02t03:04:05z', '2024-01-02 03:04', '2024-01-02 3:4:5', '2024-01-02 03:04:05.',
  '2024-01-02 03:04:05.5', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.1234565', '2024-01-02 03:04:05.1234575', '2024-01-02 03:04:05.0000005',
  '2024-01-02 23:59:59.9999999', '2024-01-02 24:00:00', '2024-01-02 24:00:00.5', '2024-01-02 24:01', '2024-01-02 23:59:60', '2024-01-02 12:00:60.5',
  '2024-01-02 12:60:00', '2024-01-02 25:00:00', '2024-01-02 03', '2024-01-02T', '2024-01-02 03:04:05 PM', '2024-01-02 12:04:05 am', '2024-01-02 13:00 pm',
  '2024-01-02 03:04:05+02', '2024-01-02 03:04:05+02:30', '2024-01-02 03:04:05-0230', '2024-01-02 03:04:05 +5', '2024-01-02 03:04:05+15:59:59',
  '2024-01-02 03:04:05+16', '2024-01-02 03:04:05+1:60', '2024-01-02 03:04:05-0', '2024-01-02 03:04:05Z', '2024-01-02 03:04:05 UTC',
  '2024-01-02 03:04:05 gmt', '2024-01-02 03:04:05 zulu', '2024-01-02 03:04:05 ut', '2024-01-02 -05', '2024-01-02 03:04:05+02 BC',
  '0001-01-01 00:00:00+01', '4714-11-24 00:00:00+01 BC', '4714-11-24 00:00:00-01 BC', '294276-12-31 23:30:00-01', '4714-11-23 23:30:00-01 BC',
  '294277-01-01 00:30:00+01', '4714-11-23 23:30:00 BC',
  'epoch', 'Epoch', 'infinity', 'INFINITY', '-infinity', 'J2451545', 'j0', 'allballs', '2024-01-02 allballs',
  '', ' ', 'x', '2024', '2024-01', '2024-01-02 x', '2024-01-02 03:04:05 05:06', '2024-01-02 2024-01-03', '2024-01-02 BC AD',
  '2024-01-02,03:04:05', '42', ' 42 ', '13', '12', '1', '123', '2024', '12345678901234567890', '2024-01-02 42', '1 2', '1 2 2024', '2024 1 2',
  '5 2024-01-02', '2024 123', '2024 366', '2023 366', '2024-01-02 030405', '2024-01-02 0304', '20240102 030405', '20240102T030405', '2024-01-02-03', '1/2/2024/5',
];

/** Timestamps written the ISO way with random fields, fractions, zones and eras. */
const isoTimestampText: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 1, max: 300000 }),
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 31 }),
    fc.integer({ min: 0, max: 23 }),
    fc.integer({ min: 0, max: 59 }),
    fc.integer({ min: 0, max: 59 }),
    fc.stringMatching(/^[0-9]{0,9}$/),
    fc.constantFrom('', '+00', '-07', '+05:30', '+1245', 'Z', ' UTC', '-15:59'),
    fc.constantFrom('', '', '', ' BC'),
    fc.constantFrom(' ', 'T'),
  )
  .map(([year, month, day, hour, minute, second, fraction, zone, era, separator]) => {
    const two = (value: number): string => String(value).padStart(2, '0');
    const fractionPart = fraction === '' ? '' : `.${fraction}`;
    return `${String(year).padStart(4, '0')}-${two(month)}-${two(day)}${separator}${two(hour)}:${two(minute)}:${two(second)}${fractionPart}${zone}${era}`;
  });

function inputCases(texts: readonly string[]): ReferenceCase[] {
  return texts.flatMap((text) => [
    { sql: `${sqlLiteral(text)}::date`, ours: () => formatDate(parseDate(text)) },
    { sql: `${sqlLiteral(text)}::timestamp`, ours: () => formatTimestamp(parseTimestamp(text)) },
    { sql: `${sqlLiteral(text)}::timestamptz`, ours: () => formatTimestamptz(parseTimestamptz(text)) },
  ]);
}

describe('date/time text input (TY1)', () => {
  it('reads the supported forms and reports errors as PostgreSQL', async () => {
    await assertSameAsPostgres(inputCases([...handWrittenInputs, ...sample(isoTimestampText, 500, 0)]));
  });

  it('rounds timestamp(p) half away from zero', async () => {
    const cases = sample(fc.tuple(isoTimestampText, fc.integer({ min: 0, max: 6 })), 300, 1).flatMap(([text, precision]) => [
      { sql: `${sqlLiteral(text)}::timestamp(${precision})`, ours: () => formatTimestamp(parseTimestamp(text, precision)) },
      { sql: `${sqlLiteral(text)}::timestamptz(${precision})`, ours: () => formatTimestamptz(parseTimestamptz(text, precision)) },
    ]);
    await assertSameAsPostgres(cases);
  });
});

/** Microseconds across the whole timestamp range, and near its ends. */
const timestampMicros: fc.Arbitrary<bigint> = fc.oneof(
  fc.bigInt({ min: -211813488000000000n, max: 9223371331199999999n }),
  fc.bigInt({ min: -211813488000000000n, max: -211813488000000000n + 10n ** 12n }),
  fc.bigInt({ min: 9223371331199999999n - 10n ** 12n, max: 9223371331199999999n }),
  fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }),
);

/** A timestamp as SQL PostgreSQL computes exactly: 2000-01-01 plus days plus microseconds. */
function timestampSql(micros: bigint): string {
  const days = micros / MICROSECONDS_PER_DAY - (micros % MICROSECONDS_PER_DAY < 0n ? 1n : 0n);
  const rest = micros - days * MICROSECONDS_PER_DAY;
  return `(timestamp '2000-01-01' + interval '${days} days' + interval '${rest} microseconds')`;
}

describe('date/time output (TY1)', () => {
  it('prints timestamps and dates anywhere in the range as PostgreSQL', async () => {
    const values = sample(timestampMicros, 800, 2);
    const cases: ReferenceCase[] = values.flatMap((micros) => [
      { sql: timestampSql(micros), ours: () => formatTimestamp(micros) },
      { sql: `${timestampSql(micros)}::date`, ours: () => formatDate(Number(micros / MICROSECONDS_PER_DAY - (micros % MICROSECONDS_PER_DAY < 0n ? 1n : 0n))) },
    ]);
    await assertSameAsPostgres(cases);
  });

  it('round-trips days through the calendar over the whole date range', () => {
    for (const days of sample(fc.integer({ min: -2451545, max: 2145031948 }), 5000, 3)) {
      const { year, month, day } = civilFromDays(days);
      assert.equal(daysFromCivil(year, month, day), days);
    }
    assert.deepEqual(civilFromDays(0), { year: 2000, month: 1, day: 1 });
    assert.deepEqual(civilFromDays(-2451545), { year: -4713, month: 11, day: 24 });
  });
});

describe('date/time conversions in a session time zone', () => {
  const zones: ReadonlyArray<readonly [string, TimeZone]> = [
    ["interval '+05:30' hour to minute", fixedOffsetTimeZone(5 * 3600 + 30 * 60)],
    ["interval '-08:00' hour to minute", fixedOffsetTimeZone(-8 * 3600)],
    ["'UTC'", UTC],
  ];

  for (const [setting, zone] of zones) {
    it(`converts and prints as PostgreSQL with time zone ${setting}`, async () => {
      await reference().query(`set time zone ${setting}`);
      try {
        const texts = [...sample(isoTimestampText, 150, 4), '4714-11-24 00:00:00 BC', '294276-12-31 23:59:59', '2024-01-02'];
        const context = { timeZone: zone };
        const cases: ReferenceCase[] = texts.flatMap((text) => [
          { sql: `${sqlLiteral(text)}::timestamptz`, ours: () => formatTimestamptz(parseTimestamptz(text, -1, context), zone) },
          { sql: `${sqlLiteral(text)}::timestamptz::timestamp`, ours: () => formatTimestamp(timestamptzToTimestamp(parseTimestamptz(text, -1, context), zone)) },
          { sql: `${sqlLiteral(text)}::timestamptz::date`, ours: () => formatDate(timestamptzToDate(parseTimestamptz(text, -1, context), zone)) },
          { sql: `${sqlLiteral(text)}::timestamp::timestamptz`, ours: () => formatTimestamptz(timestampToTimestamptz(parseTimestamp(text), zone), zone) },
          { sql: `${sqlLiteral(text)}::date::timestamptz`, ours: () => formatTimestamptz(dateToTimestamptz(parseDate(text), zone), zone) },
        ]);
        await assertSameAsPostgres(cases);
      } finally {
        await reference().query('reset time zone');
      }
    });
  }
});

describe('date/time binary formats (TY2)', () => {
  it("produces PostgreSQL's bytes and is read back by it", async () => {
    const values = [...sample(timestampMicros, 150, 5), 0n, 9223372036854775807n, -9223372036854775808n];
    for (const micros of values) {
      for (const type of [TypeOids.timestamp, TypeOids.timestamptz]) {
        const bytes = binaryOut(type, micros);
        const rows = await reference().binaryResults(`select $1::${type === TypeOids.timestamp ? 'timestamp' : 'timestamptz'}::text, $1`, [{ oid: type, bytes }]);
        const expectedText = type === TypeOids.timestamp ? formatTimestamp(micros) : formatTimestamptz(micros);
        assert.equal(new TextDecoder().decode(rows[0]![0]!), expectedText);
        assert.deepEqual(rows[0]![1], bytes);
        assert.equal(binaryIn(type, rows[0]![1]!), micros);
      }
    }
    for (const days of [0, -2451545, 2145031948, 8766, Infinity, -Infinity]) {
      const bytes = binaryOut(TypeOids.date, days);
      const rows = await reference().binaryResults('select $1::date::text, $1', [{ oid: TypeOids.date, bytes }]);
      assert.equal(new TextDecoder().decode(rows[0]![0]!), formatDate(days));
      assert.deepEqual(rows[0]![1], bytes);
      assert.equal(binaryIn(TypeOids.date, bytes), days);
    }
  });

  it('rejects out-of-range binary values as timestamp_recv and date_recv do', () => {
    const timestampBytes = (micros: bigint): Uint8Array => {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigInt64(0, micros);
      return bytes;
    };
    assert.throws(() => binaryIn(TypeOids.timestamp, timestampBytes(9223371331200000000n)), { code: '22008', message: 'timestamp out of range' });
    assert.throws(() => binaryIn(TypeOids.timestamp, timestampBytes(-211813488000000001n)), { code: '22008' });
    assert.throws(() => binaryIn(TypeOids.date, Uint8Array.of(0x7f, 0xff, 0xff, 0xfe)), { code: '22008', message: 'date out of range' });
    // timestamp(0) rounds what it receives.
    assert.equal(binaryIn(TypeOids.timestamp, timestampBytes(1_500_000n), 0), 2_000_000n);
  });
});

describe('PostgreSQL 15 behaviour where PGlite (18) differs, and known gaps', () => {
  it("rejects '+infinity' (accepted from PostgreSQL 16)", () => {
    assert.throws(() => parseDate('+infinity'), { code: '22007', message: 'invalid input syntax for type date: "+infinity"' });
    assert.throws(() => parseTimestamp('+infinity'), { code: '22007', message: 'invalid input syntax for type timestamp: "+infinity"' });
  });

  it('refuses the forms this decoder does not cover (month names, zone names and abbreviations) with 22007', () => {
    for (const text of ['Jan 2 2024', '2 January 2024', 'Tue 2024-01-02', '2024-01-02 03:04:05 EST', '2024-01-02 03:04:05 Europe/Paris']) {
      assert.throws(() => parseTimestamptz(text), { code: '22007' }, text);
    }
  });

  it('names the setting "datestyle" in the month/day hint', () => {
    assert.throws(() => parseDate('2024-13-01'), { code: '22008', extra: { hint: 'Perhaps you need a different "datestyle" setting.' } });
  });
});

describe("'now' and friends", () => {
  it('read the clock the caller passes, in the session zone', () => {
    const now = parseTimestamptz('2024-03-10 22:30:00.25+00');
    const utc = { timeZone: UTC, now };
    const tokyo = { timeZone: fixedOffsetTimeZone(9 * 3600), now };
    assert.equal(parseTimestamptz('now', -1, utc), now);
    assert.equal(formatTimestamptz(parseTimestamptz('today', -1, utc)), '2024-03-10 00:00:00+00');
    assert.equal(formatTimestamptz(parseTimestamptz('today', -1, tokyo), tokyo.timeZone), '2024-03-11 00:00:00+09');
    assert.equal(formatTimestamp(parseTimestamp('now', -1, tokyo)), '2024-03-11 07:30:00.25');
    assert.equal(formatDate(parseDate('tomorrow', utc)), '2024-03-11');
    assert.equal(formatDate(parseDate('yesterday', tokyo)), '2024-03-10');
    assert.throws(() => parseDate('now'), /needs DateTimeContext.now/);
  });
});
