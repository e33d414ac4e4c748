// Turning a query's rows into sqllogictest's value list, and comparing it with the
// expected block. Pure. The rules are the C runner's (sqllogictest.c with its SQLite
// engine adapter), so that a value printed here is byte for byte what it prints:
//
// 1. Each value is formatted by its column's type letter. NULL is `NULL` in every column.
//    I: a 64-bit integer printed with %lld; a real is truncated toward zero, a text is
//       read for its leading number (SQLite's text-to-integer rule), else 0.
//    R: the value as a double printed with %.3f (round half to even on exact ties).
//    T: the text; the empty string is `(empty)`; every byte outside 0x20..0x7e becomes `@`.
// 2. Values are flattened row by row. `rowsort` sorts the rows, comparing column by
//    column with strcmp on the formatted values; `valuesort` sorts all values; `nosort`
//    keeps the server's order.
// 3. The hash is the MD5 of every value followed by "\n", printed as
//    "<N> values hashing to <md5 hex>".

import { createHash } from 'node:crypto';
import type { ColumnType, Expected, SortMode } from './parser.js';

const int64Max = 9223372036854775807n;
const int64Min = -9223372036854775808n;
const numericPrefixPattern = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;
const plainIntegerPattern = /^[+-]?\d+$/;
const plainDecimalPattern = /^[+-]?(\d*)\.\d*$/;
const printableAsciiPattern = /^[\x20-\x7e]*$/;

/** A server value in text form; null is SQL NULL. Booleans arrive as "1"/"0" (see connection.ts). */
export type RawValue = string | null;

export function formatValue(type: ColumnType, raw: RawValue): string {
  if (raw === null) return 'NULL';
  switch (type) {
    case 'I':
      return formatInteger(raw);
    case 'R':
      return formatReal(raw);
    case 'T':
      return formatText(raw);
    default: {
      const unreachable: never = type;
      throw new Error(`unknown column type ${String(unreachable)}`);
    }
  }
}

export function formatText(raw: string): string {
  if (raw === '') return '(empty)';
  if (printableAsciiPattern.test(raw)) return raw;
  // The C runner works on UTF-8 bytes: a two-byte character becomes "@@".
  let out = '';
  for (const byte of Buffer.from(raw, 'utf8')) out += byte >= 0x20 && byte <= 0x7e ? String.fromCharCode(byte) : '@';
  return out;
}

export function formatInteger(raw: string): string {
  const text = raw.trim();
  if (plainIntegerPattern.test(text)) return clampInt64(BigInt(text)).toString();
  // A decimal without exponent is truncated on its digits, so no precision is lost.
  const decimal = plainDecimalPattern.exec(text);
  if (decimal !== null) {
    const integerPart = BigInt(decimal[1] === '' ? '0' : decimal[1]!);
    return clampInt64(text.startsWith('-') ? -integerPart : integerPart).toString();
  }
  const number = parseLeadingNumber(text);
  if (Number.isNaN(number)) return '0';
  if (number === Number.POSITIVE_INFINITY) return int64Max.toString();
  if (number === Number.NEGATIVE_INFINITY) return int64Min.toString();
  return clampInt64(BigInt(Math.trunc(number))).toString();
}

function clampInt64(value: bigint): bigint {
  if (value > int64Max) return int64Max;
  if (value < int64Min) return int64Min;
  return value;
}

/** SQLite's text-to-number rule: the longest numeric prefix, else 0. Also PostgreSQL's float specials. */
function parseLeadingNumber(text: string): number {
  switch (text) {
    case 'Infinity':
      return Number.POSITIVE_INFINITY;
    case '-Infinity':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
      return Number.NaN;
  }
  const prefix = numericPrefixPattern.exec(text);
  return prefix === null ? 0 : Number(prefix[0]);
}

export function formatReal(raw: string): string {
  return printfFixed3(parseLeadingNumber(raw.trim()));
}

/**
 * C's printf("%.3f"). Number.prototype.toFixed rounds the exact binary value correctly
 * except on exact ties, where it rounds away from zero and glibc rounds half to even.
 * An exact tie at the fourth decimal is a double x with 16·x an odd integer (x·2000 must
 * be an odd integer and x a dyadic rational, and 2000 = 16·125).
 */
export function printfFixed3(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Number.POSITIVE_INFINITY) return 'inf';
  if (value === Number.NEGATIVE_INFINITY) return '-inf';
  const negative = value < 0 || Object.is(value, -0);
  const magnitude = Math.abs(value);
  // Above 2^53 every double is an integer; toFixed switches to exponent form at 1e21.
  if (magnitude >= 2 ** 53) return `${negative ? '-' : ''}${BigInt(magnitude).toString()}.000`;
  const sixteenths = magnitude * 16;
  if (Number.isInteger(sixteenths) && sixteenths % 2 === 1) {
    let thousandths = (BigInt(sixteenths) * 125n - 1n) / 2n;
    if (thousandths % 2n === 1n) thousandths += 1n;
    const fraction = (thousandths % 1000n).toString().padStart(3, '0');
    return `${negative ? '-' : ''}${thousandths / 1000n}.${fraction}`;
  }
  return `${negative ? '-' : ''}${magnitude.toFixed(3)}`;
}

/** Formats every row and flattens them, row by row, in the record's sort order. */
export function resultValues(types: readonly ColumnType[], rows: readonly (readonly RawValue[])[], sort: SortMode): string[] {
  const formatted = rows.map((row) => row.map((raw, column) => formatValue(types[column] ?? 'T', raw)));
  switch (sort) {
    case 'nosort':
      return formatted.flat();
    case 'rowsort':
      return formatted.sort(compareRows).flat();
    case 'valuesort':
      return formatted.flat().sort(compareStrings);
    default: {
      const unreachable: never = sort;
      throw new Error(`unknown sort mode ${String(unreachable)}`);
    }
  }
}

/** strcmp order: the formatted values are ASCII, where UTF-16 code unit order is byte order. */
export function compareStrings(left: string, right: string): number {
  if (left < right) return -1;
  if (left > right) return 1;
  return 0;
}

function compareRows(left: readonly string[], right: readonly string[]): number {
  const columns = Math.min(left.length, right.length);
  for (let column = 0; column < columns; column++) {
    const order = compareStrings(left[column]!, right[column]!);
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

export function hashValues(values: readonly string[]): string {
  const md5 = createHash('md5');
  for (const value of values) {
    md5.update(value, 'utf8');
    md5.update('\n');
  }
  return md5.digest('hex');
}

export function hashLine(values: readonly string[]): string {
  return `${values.length} values hashing to ${hashValues(values)}`;
}

export type Comparison = { matches: true } | { matches: false; expectedText: string; actualText: string };

const shownValuesMax = 40;

/**
 * Compares the actual values with the expected block. A hash block compares hashes; so
 * does a value list longer than the hash threshold (threshold 0 means never), as the C
 * runner does. Otherwise the lists are compared value by value.
 */
export function compareResult(expected: Expected, actual: readonly string[], hashThreshold: number): Comparison {
  const useHash = expected.kind === 'hash' || (hashThreshold > 0 && expected.values.length > hashThreshold);
  if (useHash) {
    const expectedLine = expected.kind === 'hash' ? `${expected.count} values hashing to ${expected.md5}` : hashLine(expected.values);
    const actualLine = hashLine(actual);
    if (expectedLine === actualLine) return { matches: true };
    return { matches: false, expectedText: expectedLine, actualText: `${actualLine}\n${showValues(actual)}` };
  }
  if (expected.values.length === actual.length && expected.values.every((value, index) => value === actual[index])) return { matches: true };
  return { matches: false, expectedText: showValues(expected.values), actualText: showValues(actual) };
}

function showValues(values: readonly string[]): string {
  const shown = values.slice(0, shownValuesMax).join('\n');
  return values.length > shownValuesMax ? `${shown}\n... (${values.length} values)` : shown;
}
