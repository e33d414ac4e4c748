// date, timestamp and timestamptz: text input (a subset of PostgreSQL's DecodeDateTime,
// see decodeDateTime below), ISO DateStyle output, and the conversions between them.
//
// Representations are PostgreSQL's internal ones: a date is days since 2000-01-01 (±Infinity
// for ±infinity; the wire format uses INT32_MIN/MAX); a timestamp is a bigint of
// microseconds since 2000-01-01 00:00:00 (UTC for timestamptz), infinity being the int64
// extremes. The calendar is proleptic Gregorian with astronomical years (year 0 = 1 BC).
//
// Time zones are objects (TimeZone) so that a session can pass UTC, a fixed offset or,
// later, a rule-based zone; 'now'-like inputs need the transaction's clock (DateTimeContext).

import { SqlError } from '../../pgwire/session.js';
import { roundHalfEven } from './float.js';

export const MICROSECONDS_PER_SECOND = 1_000_000n;
export const MICROSECONDS_PER_DAY = 86_400_000_000n;

/** timestamp 'infinity' / '-infinity' (DT_NOEND, DT_NOBEGIN). */
export const TIMESTAMP_INFINITY = 9223372036854775807n;
export const TIMESTAMP_MINUS_INFINITY = -9223372036854775808n;
/** The wire form of date 'infinity' / '-infinity' (DATEVAL_NOEND, DATEVAL_NOBEGIN). */
export const DATE_INFINITY_INT32 = 2147483647;
export const DATE_MINUS_INFINITY_INT32 = -2147483648;

/** Julian day of 2000-01-01 (POSTGRES_EPOCH_JDATE). */
const epochJulianDay = 2451545;
/** Dates run from Julian day 0 (4714-11-24 BC) to before 5874898-01-01 (DATE_END_JULIAN). */
const dateDaysMin = -epochJulianDay;
const dateDaysEnd = 2147483494 - epochJulianDay;
/** Timestamps run from Julian day 0 to before 294277-01-01 (TIMESTAMP_END_JULIAN). */
const timestampDaysEnd = 109203528 - epochJulianDay;
const timestampMin = BigInt(dateDaysMin) * MICROSECONDS_PER_DAY;
const timestampEnd = BigInt(timestampDaysEnd) * MICROSECONDS_PER_DAY;
/** 1970-01-01 in days since 2000-01-01. */
const unixEpochDays = -10957;
/** Numeric zone offsets are limited to ±15:59:59 (MAX_TZDISP_HOUR). */
const zoneOffsetHoursMax = 15;
/** timestamp(p): p ≤ 6 (MAX_TIMESTAMP_PRECISION). */
export const TIMESTAMP_PRECISION_MAX = 6;

/** A session time zone: a name and its offset from UTC, east positive, in seconds. */
export interface TimeZone {
  readonly name: string;
  /** The offset in force at a UTC instant. */
  offsetSecondsAtUtc(utcMicroseconds: bigint): number;
  /** The offset that applies to a local wall-clock time (for a fixed zone, the same). */
  offsetSecondsAtLocal(localMicroseconds: bigint): number;
}

export function fixedOffsetTimeZone(offsetSecondsEast: number, name = formatZoneName(offsetSecondsEast)): TimeZone {
  if (!Number.isInteger(offsetSecondsEast)) throw new Error(`zone offset ${offsetSecondsEast}`);
  return { name, offsetSecondsAtUtc: () => offsetSecondsEast, offsetSecondsAtLocal: () => offsetSecondsEast };
}

function formatZoneName(offsetSecondsEast: number): string {
  return offsetSecondsEast === 0 ? 'UTC' : `<${formatZoneOffset(offsetSecondsEast)}>`;
}

export const UTC: TimeZone = fixedOffsetTimeZone(0, 'UTC');

/** What date/time input and conversions need from the session. */
export interface DateTimeContext {
  timeZone: TimeZone;
  /** The transaction's start time (microseconds since 2000-01-01 UTC), for 'now', 'today'... */
  now?: bigint;
}

const defaultContext: DateTimeContext = { timeZone: UTC };

// --- Calendar -------------------------------------------------------------------------

const floorDivide = (a: number, b: number): number => Math.floor(a / b);

/** Days since 2000-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const shiftedYear = month <= 2 ? year - 1 : year;
  const era = floorDivide(shiftedYear, 400);
  const yearOfEra = shiftedYear - era * 400;
  const dayOfYear = floorDivide(153 * (month + (month > 2 ? -3 : 9)) + 2, 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + floorDivide(yearOfEra, 4) - floorDivide(yearOfEra, 100) + dayOfYear;
  // 719468 days from 0000-03-01 to 1970-01-01; 10957 more to 2000-01-01.
  return era * 146097 + dayOfEra - 719468 - 10957;
}

/** The date of a day number (inverse of daysFromCivil). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const shifted = days + 10957 + 719468;
  const era = floorDivide(shifted, 146097);
  const dayOfEra = shifted - era * 146097;
  const yearOfEra = floorDivide(dayOfEra - floorDivide(dayOfEra, 1460) + floorDivide(dayOfEra, 36524) - floorDivide(dayOfEra, 146096), 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + floorDivide(yearOfEra, 4) - floorDivide(yearOfEra, 100));
  const monthIndex = floorDivide(5 * dayOfYear + 2, 153);
  const day = dayOfYear - floorDivide(153 * monthIndex + 2, 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

const isLeapYear = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** IS_VALID_JULIAN: a cheap bound on year/month before day arithmetic. */
function isValidJulian(year: number, month: number): boolean {
  const afterStart = year > -4713 || (year === -4713 && month >= 11);
  const beforeEnd = year < 5874898 || (year === 5874898 && month < 6);
  return afterStart && beforeEnd;
}

const isValidDateDays = (days: number): boolean => days >= dateDaysMin && days < dateDaysEnd;
export const isValidTimestamp = (micros: bigint): boolean => micros >= timestampMin && micros < timestampEnd;
export const isFiniteTimestamp = (micros: bigint): boolean => micros !== TIMESTAMP_INFINITY && micros !== TIMESTAMP_MINUS_INFINITY;

// --- Output ---------------------------------------------------------------------------

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

function formatYearMonthDay(year: number, month: number, day: number): string {
  // Year 0 is 1 BC; the era suffix is appended by the caller, at the very end.
  const shownYear = year > 0 ? year : 1 - year;
  return `${pad(shownYear, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** date_out in ISO DateStyle: '2024-01-02', '0001-01-01 BC', 'infinity'. */
export function formatDate(days: number): string {
  if (days === Infinity) return 'infinity';
  if (days === -Infinity) return '-infinity';
  const { year, month, day } = civilFromDays(days);
  return formatYearMonthDay(year, month, day) + (year <= 0 ? ' BC' : '');
}

/** timestamp_out: '2024-01-02 03:04:05.5', fraction trimmed, ' BC' last. */
export function formatTimestamp(micros: bigint): string {
  const special = formatInfinity(micros);
  if (special !== null) return special;
  return formatLocal(micros, null);
}

/** timestamptz_out in a zone: '2024-01-02 03:04:05.5+00', '…+05:30', '…+00 BC'. */
export function formatTimestamptz(micros: bigint, timeZone: TimeZone = UTC): string {
  const special = formatInfinity(micros);
  if (special !== null) return special;
  const offsetSeconds = timeZone.offsetSecondsAtUtc(micros);
  return formatLocal(micros + BigInt(offsetSeconds) * MICROSECONDS_PER_SECOND, offsetSeconds);
}

function formatInfinity(micros: bigint): string | null {
  if (micros === TIMESTAMP_INFINITY) return 'infinity';
  if (micros === TIMESTAMP_MINUS_INFINITY) return '-infinity';
  return null;
}

function formatLocal(localMicros: bigint, offsetSeconds: number | null): string {
  const days = localMicros / MICROSECONDS_PER_DAY - (localMicros % MICROSECONDS_PER_DAY < 0n ? 1n : 0n);
  const timeOfDay = Number(localMicros - days * MICROSECONDS_PER_DAY);
  const { year, month, day } = civilFromDays(Number(days));
  const seconds = Math.floor(timeOfDay / 1_000_000);
  const fraction = timeOfDay % 1_000_000;
  let text = `${formatYearMonthDay(year, month, day)} ${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  if (fraction !== 0) text += `.${pad(fraction, 6).replace(/0+$/, '')}`;
  if (offsetSeconds !== null) text += formatZoneOffset(offsetSeconds);
  return year <= 0 ? `${text} BC` : text;
}

/** EncodeTimezone: '+HH', '+HH:MM' or '+HH:MM:SS' (east positive). */
export function formatZoneOffset(offsetSecondsEast: number): string {
  const sign = offsetSecondsEast >= 0 ? '+' : '-';
  const total = Math.abs(offsetSecondsEast);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor(total / 60) % 60;
  const seconds = total % 60;
  if (seconds !== 0) return `${sign}${pad(hours, 2)}:${pad(minutes, 2)}:${pad(seconds, 2)}`;
  if (minutes !== 0) return `${sign}${pad(hours, 2)}:${pad(minutes, 2)}`;
  return `${sign}${pad(hours, 2)}`;
}

// --- Input ----------------------------------------------------------------------------

type DateTimeTypeWord = 'date' | 'timestamp' | 'timestamp with time zone';

/** What decodeDateTime recognized: a special word, or calendar fields. */
type Decoded =
  | { kind: 'special'; word: 'epoch' | 'infinity' | '-infinity' | 'now' | 'today' | 'tomorrow' | 'yesterday' }
  | {
      kind: 'fields';
      year: number;
      month: number;
      day: number;
      /** Microseconds since local midnight; may reach 24:00:00 or carry a leap second. */
      timeOfDayMicros: number;
      /** Seconds east of UTC, when the input named a zone. */
      offsetSeconds: number | null;
    };

class DecodeError {
  constructor(readonly kind: 'syntax' | 'field' | 'month-day' | 'zone') {}
}

function dateTimeError(error: DecodeError, text: string, typeWord: DateTimeTypeWord): SqlError {
  switch (error.kind) {
    case 'syntax':
      return new SqlError('22007', `invalid input syntax for type ${typeWord}: "${text}"`);
    case 'field':
      return new SqlError('22008', `date/time field value out of range: "${text}"`);
    case 'month-day':
      return new SqlError('22008', `date/time field value out of range: "${text}"`, {
        hint: 'Perhaps you need a different "datestyle" setting.',
      });
    case 'zone':
      return new SqlError('22009', `time zone displacement out of range: "${text}"`);
  }
}

function decode(text: string, typeWord: DateTimeTypeWord): Decoded {
  try {
    return decodeDateTime(text);
  } catch (error) {
    if (error instanceof DecodeError) throw dateTimeError(error, text, typeWord);
    throw error;
  }
}

/** date_in. */
export function parseDate(text: string, context: DateTimeContext = defaultContext): number {
  const decoded = decode(text, 'date');
  if (decoded.kind === 'special') {
    switch (decoded.word) {
      case 'infinity':
        return Infinity;
      case '-infinity':
        return -Infinity;
      case 'epoch':
        return unixEpochDays;
      default:
        return timestampToDate(localNow(decoded.word, context));
    }
  }
  const { year, month, day } = decoded;
  const outOfRange = (): SqlError => new SqlError('22008', `date out of range: "${text}"`);
  if (!isValidJulian(year, month)) throw outOfRange();
  const days = daysFromCivil(year, month, day);
  if (!isValidDateDays(days)) throw outOfRange();
  return days;
}

/** timestamp_in (a zone in the input is ignored), then timestamp(p) rounding. */
export function parseTimestamp(text: string, typmod = -1, context: DateTimeContext = defaultContext): bigint {
  const decoded = decode(text, 'timestamp');
  if (decoded.kind === 'special') {
    switch (decoded.word) {
      case 'infinity':
        return TIMESTAMP_INFINITY;
      case '-infinity':
        return TIMESTAMP_MINUS_INFINITY;
      case 'epoch':
        return BigInt(unixEpochDays) * MICROSECONDS_PER_DAY;
      default:
        return adjustTimestampPrecision(localNow(decoded.word, context), typmod);
    }
  }
  const local = fieldsToMicros(decoded, text);
  return adjustTimestampPrecision(local, typmod);
}

/** timestamptz_in: the input's zone, else the session's. */
export function parseTimestamptz(text: string, typmod = -1, context: DateTimeContext = defaultContext): bigint {
  const decoded = decode(text, 'timestamp with time zone');
  if (decoded.kind === 'special') {
    switch (decoded.word) {
      case 'infinity':
        return TIMESTAMP_INFINITY;
      case '-infinity':
        return TIMESTAMP_MINUS_INFINITY;
      case 'epoch':
        return BigInt(unixEpochDays) * MICROSECONDS_PER_DAY;
      case 'now':
        return adjustTimestampPrecision(requireNow(context), typmod);
      default:
        return adjustTimestampPrecision(localToUtc(localNow(decoded.word, context), context.timeZone, text), typmod);
    }
  }
  // Only the UTC instant must be in range: '4714-11-23 23:30-01 BC' is a valid timestamptz.
  const local = fieldsToMicros(decoded, text, false);
  const utc =
    decoded.offsetSeconds === null
      ? localToUtc(local, context.timeZone, text)
      : local - BigInt(decoded.offsetSeconds) * MICROSECONDS_PER_SECOND;
  if (!isValidTimestamp(utc)) throw new SqlError('22008', `timestamp out of range: "${text}"`);
  return adjustTimestampPrecision(utc, typmod);
}

function requireNow(context: DateTimeContext): bigint {
  // A programmer error: the session always knows its transaction's start time.
  if (context.now === undefined) throw new Error("date/time input 'now' needs DateTimeContext.now");
  return context.now;
}

/** 'now', 'today', 'tomorrow', 'yesterday' as a local (session zone) timestamp. */
function localNow(word: 'now' | 'today' | 'tomorrow' | 'yesterday', context: DateTimeContext): bigint {
  const now = requireNow(context);
  const local = now + BigInt(context.timeZone.offsetSecondsAtUtc(now)) * MICROSECONDS_PER_SECOND;
  if (word === 'now') return local;
  const midnight = floorDivideBig(local, MICROSECONDS_PER_DAY) * MICROSECONDS_PER_DAY;
  const shiftDays = word === 'tomorrow' ? 1n : word === 'yesterday' ? -1n : 0n;
  return midnight + shiftDays * MICROSECONDS_PER_DAY;
}

function localToUtc(local: bigint, timeZone: TimeZone, text: string): bigint {
  const utc = local - BigInt(timeZone.offsetSecondsAtLocal(local)) * MICROSECONDS_PER_SECOND;
  if (!isValidTimestamp(utc)) throw new SqlError('22008', `timestamp out of range: "${text}"`);
  return utc;
}

/** tm2timestamp: calendar fields to local microseconds, with PostgreSQL's range checks. */
function fieldsToMicros(fields: Extract<Decoded, { kind: 'fields' }>, text: string, checkRange = true): bigint {
  const outOfRange = (): SqlError => new SqlError('22008', `timestamp out of range: "${text}"`);
  if (!isValidJulian(fields.year, fields.month)) throw outOfRange();
  const days = daysFromCivil(fields.year, fields.month, fields.day);
  const micros = BigInt(days) * MICROSECONDS_PER_DAY + BigInt(fields.timeOfDayMicros);
  if (checkRange && !isValidTimestamp(micros)) throw outOfRange();
  return micros;
}

const floorDivideBig = (a: bigint, b: bigint): bigint => a / b - (a % b !== 0n && (a < 0n) !== (b < 0n) ? 1n : 0n);

/** The precision of a timestamp typmod (-1: none), with PostgreSQL's errors. */
export function timestampTypmod(precision: number, withTimeZone: boolean): number {
  if (precision < 0) {
    throw new SqlError('22023', `TIMESTAMP(${precision})${withTimeZone ? ' WITH TIME ZONE' : ''} precision must not be negative`);
  }
  // PostgreSQL warns and uses 6; there is no WARNING channel here, so it silently caps.
  return Math.min(precision, TIMESTAMP_PRECISION_MAX);
}

/** AdjustTimestampForTypmod: round to 10^-p seconds, half away from zero. */
export function adjustTimestampPrecision(micros: bigint, typmod: number): bigint {
  if (typmod < 0 || typmod >= TIMESTAMP_PRECISION_MAX || !isFiniteTimestamp(micros)) return micros;
  const scale = 10n ** BigInt(TIMESTAMP_PRECISION_MAX - typmod);
  const half = scale / 2n;
  if (micros >= 0n) return ((micros + half) / scale) * scale;
  return -(((-micros + half) / scale) * scale);
}

// --- Conversions ----------------------------------------------------------------------

/** date → timestamp (date2timestamp). */
export function dateToTimestamp(days: number): bigint {
  if (days === Infinity) return TIMESTAMP_INFINITY;
  if (days === -Infinity) return TIMESTAMP_MINUS_INFINITY;
  if (days >= timestampDaysEnd) throw new SqlError('22008', 'date out of range for timestamp');
  return BigInt(days) * MICROSECONDS_PER_DAY;
}

/** date → timestamptz: local midnight in the zone (date2timestamptz). */
export function dateToTimestamptz(days: number, timeZone: TimeZone = UTC): bigint {
  const local = dateToTimestamp(days);
  if (!isFiniteTimestamp(local)) return local;
  const utc = local - BigInt(timeZone.offsetSecondsAtLocal(local)) * MICROSECONDS_PER_SECOND;
  if (!isValidTimestamp(utc)) throw new SqlError('22008', 'date out of range for timestamp');
  return utc;
}

/** timestamp → date (timestamp_date): the day containing it. */
export function timestampToDate(micros: bigint): number {
  if (micros === TIMESTAMP_INFINITY) return Infinity;
  if (micros === TIMESTAMP_MINUS_INFINITY) return -Infinity;
  if (!isValidTimestamp(micros)) throw new SqlError('22008', 'timestamp out of range');
  return Number(floorDivideBig(micros, MICROSECONDS_PER_DAY));
}

/** timestamptz → date: the local day in the zone. */
export function timestamptzToDate(micros: bigint, timeZone: TimeZone = UTC): number {
  if (!isFiniteTimestamp(micros)) return timestampToDate(micros);
  return timestampToDate(timestamptzToTimestamp(micros, timeZone));
}

/** timestamp → timestamptz: the local time read in the zone. */
export function timestampToTimestamptz(micros: bigint, timeZone: TimeZone = UTC): bigint {
  if (!isFiniteTimestamp(micros)) return micros;
  const utc = micros - BigInt(timeZone.offsetSecondsAtLocal(micros)) * MICROSECONDS_PER_SECOND;
  if (!isValidTimestamp(utc)) throw new SqlError('22008', 'timestamp out of range');
  return utc;
}

/** timestamptz → timestamp: the zone's wall-clock time. */
export function timestamptzToTimestamp(micros: bigint, timeZone: TimeZone = UTC): bigint {
  if (!isFiniteTimestamp(micros)) return micros;
  const local = micros + BigInt(timeZone.offsetSecondsAtUtc(micros)) * MICROSECONDS_PER_SECOND;
  if (!isValidTimestamp(local)) throw new SqlError('22008', 'timestamp out of range');
  return local;
}

/** The binary form of a date: int32, infinities at the extremes. */
export function dateToInt32(days: number): number {
  if (days === Infinity) return DATE_INFINITY_INT32;
  if (days === -Infinity) return DATE_MINUS_INFINITY_INT32;
  return days;
}

export function dateFromInt32(value: number): number {
  if (value === DATE_INFINITY_INT32) return Infinity;
  if (value === DATE_MINUS_INFINITY_INT32) return -Infinity;
  return value;
}

// --- The decoder ----------------------------------------------------------------------
//
// A subset of PostgreSQL's ParseDateTime + DecodeDateTime (DateStyle ISO, MDY):
//   dates      numeric fields placed as DecodeNumber does: Y-M-D, Y/M/D, Y.M.D when the first
//              field has 3+ digits, otherwise M-D-Y; the same for fields separated by spaces;
//              2-digit years 70-99 → 19xx, 00-69 → 20xx; YYYYMMDD, YYMMDD; 'YYYY DDD' (day of
//              year); J<julian day>
//   times      H:M, H:M:S, H:M:S.fraction (rounded to microseconds), 'T' before the time (or
//              before HHMMSS/HHMM), AM/PM, 'allballs', 24:00:00 and leap seconds carried as
//              PostgreSQL does
//   zones      Z, UTC, GMT, UT, ZULU and numeric offsets ±H, ±HH, ±HHMM, ±HH:MM, ±HH:MM:SS
//   era        AD, BC
//   specials   epoch, infinity, -infinity, now, today, tomorrow, yesterday (alone)
// Not recognized (22007): month and day names, time zone names and abbreviations other than
// the above, MM:SS.fraction, ISO week dates, 'today 10:00' and other combinations PostgreSQL
// accepts.

type Token =
  | { kind: 'date'; text: string; delimiter: string }
  | { kind: 'number'; text: string }
  | { kind: 'time'; text: string }
  | { kind: 'zone'; text: string }
  | { kind: 'word'; text: string };

const isDigitCharacter = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlphaCharacter = (c: string | undefined): boolean => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
const isSpaceCharacter = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

/** ParseDateTime: split into fields; other punctuation between fields is skipped. */
function tokenize(input: string): Token[] {
  const text = input.toLowerCase();
  const tokens: Token[] = [];
  let position = 0;
  const readWhile = (predicate: (c: string) => boolean): string => {
    const start = position;
    while (position < text.length && predicate(text[position]!)) position++;
    return text.slice(start, position);
  };
  while (position < text.length) {
    const character = text[position]!;
    if (isSpaceCharacter(character)) {
      position++;
    } else if (isDigitCharacter(character)) {
      const field = readNumericField(text, position);
      tokens.push(field.token);
      position = field.end;
    } else if (character === '+' || character === '-') {
      position++;
      while (isSpaceCharacter(text[position])) position++;
      if (isDigitCharacter(text[position])) {
        tokens.push({ kind: 'zone', text: character + readWhile((c) => isDigitCharacter(c) || c === ':' || c === '.' || c === '-') });
      } else if (isAlphaCharacter(text[position])) {
        tokens.push({ kind: 'word', text: character + readWhile(isAlphaCharacter) });
      } else {
        throw new DecodeError('syntax');
      }
    } else if (isAlphaCharacter(character)) {
      tokens.push({ kind: 'word', text: readWhile(isAlphaCharacter) });
    } else if (/[!-/:-@[-`{-~]/.test(character)) {
      position++; // ASCII punctuation between fields is ignored, as PostgreSQL does
    } else {
      throw new DecodeError('syntax');
    }
  }
  return tokens;
}

/** A field starting with a digit: a time (has ':'), a delimited date, or a number. */
function readNumericField(text: string, start: number): { token: Token; end: number } {
  let position = start;
  while (isDigitCharacter(text[position])) position++;
  const next = text[position];
  if (next === ':') {
    while (isDigitCharacter(text[position]) || text[position] === ':' || text[position] === '.') position++;
    return { token: { kind: 'time', text: text.slice(start, position) }, end: position };
  }
  if ((next === '-' || next === '/' || next === '.') && isDigitCharacter(text[position + 1])) {
    const delimiter = next;
    position++;
    while (isDigitCharacter(text[position])) position++;
    if (text[position] === delimiter) {
      while (isDigitCharacter(text[position]) || text[position] === delimiter) position++;
      return { token: { kind: 'date', text: text.slice(start, position), delimiter }, end: position };
    }
    // Two fields: a number with a fraction ('12.5', refused later) or a two-part date.
    if (delimiter === '.') return { token: { kind: 'number', text: text.slice(start, position) }, end: position };
    throw new DecodeError('syntax');
  }
  return { token: { kind: 'number', text: text.slice(start, position) }, end: position };
}

const specialWords = new Set(['epoch', 'infinity', '-infinity', 'now', 'today', 'tomorrow', 'yesterday']);
const utcWords = new Set(['z', 'utc', 'gmt', 'ut', 'zulu']);
const int32Max = 2147483647;

/** strtoint on an all-digits field: 'field' error beyond int32, as PostgreSQL's ERANGE. */
function fieldInteger(digits: string): number {
  const value = Number(digits);
  if (!/^\d+$/.test(digits)) throw new DecodeError('syntax');
  if (value > int32Max) throw new DecodeError('field');
  return value;
}

/** The date fields found so far (PostgreSQL's fmask and tm), in the order DecodeNumber fills them. */
interface DateFields {
  year: number | null;
  month: number | null;
  day: number | null;
  dayOfYear: number | null;
  /** The year was written with 1 or 2 digits (1970-2069 rule). */
  twoDigitYear: boolean;
  /** From a Julian day number: the year is astronomical already, no era applies. */
  julian: boolean;
}

interface TimeFields {
  hour: number;
  minute: number;
  second: number;
  micros: number;
}

const hasFullDate = (date: DateFields): boolean => date.year !== null && date.month !== null && date.day !== null;
const hasAnyDateField = (date: DateFields): boolean => date.year !== null || date.month !== null || date.day !== null || date.dayOfYear !== null;

/**
 * DecodeNumber: one numeric date field, placed by what is already known (DateStyle MDY):
 * first a year if it has 3+ digits, else a month; then day, then year. A 3-digit number
 * right after a lone year is a day of the year.
 */
function decodeNumber(digits: string, date: DateFields): void {
  const value = fieldInteger(digits);
  const conflict = (): never => {
    throw new DecodeError('syntax');
  };
  const onlyYear = date.year !== null && date.month === null && date.day === null && date.dayOfYear === null;
  if (digits.length === 3 && onlyYear && value >= 1 && value <= 366) {
    date.dayOfYear = value;
    return;
  }
  if (date.dayOfYear !== null) conflict();
  if (date.year === null && date.month === null && date.day === null) {
    if (digits.length >= 3) setYear(date, value, digits.length);
    else date.month = value;
  } else if (date.month === null && date.day === null) {
    date.month = value; // after the year: YYYY-MM-DD
  } else if (date.year === null && date.day === null) {
    date.day = value; // after the month: MM-DD-YY
  } else if (date.day === null) {
    date.day = value; // third field of YY-MM-DD
  } else if (date.year === null) {
    setYear(date, value, digits.length); // third field of MM-DD-YY
  } else {
    conflict();
  }
}

function setYear(date: DateFields, value: number, length: number): void {
  date.year = value;
  date.twoDigitYear = length <= 2;
}

/**
 * DecodeNumberField: digits run together. Without a full date, 6+ digits are YYMMDD or
 * (Y...)YYYYMMDD, read from the right; otherwise HHMMSS or HHMM as the time.
 */
function decodeNumberField(digits: string, date: DateFields, time: TimeFields | null): TimeFields | null {
  if (!hasFullDate(date) && digits.length >= 6) {
    if (hasAnyDateField(date)) throw new DecodeError('syntax');
    date.day = Number(digits.slice(-2));
    date.month = Number(digits.slice(-4, -2));
    // atoi(): an oversized year wraps to 32 bits, as in C.
    date.year = Number(BigInt.asIntN(32, BigInt(digits.slice(0, -4))));
    date.twoDigitYear = digits.length - 4 === 2;
    return time;
  }
  if (time === null) return decodeRunTogetherTime(digits);
  throw new DecodeError('syntax');
}

function decodeRunTogetherTime(digits: string): TimeFields {
  if (digits.length !== 6 && digits.length !== 4) throw new DecodeError('syntax');
  const second = digits.length === 6 ? Number(digits.slice(4, 6)) : 0;
  return checkTime({ hour: Number(digits.slice(0, 2)), minute: Number(digits.slice(2, 4)), second, micros: 0 });
}

function decodeDateTime(input: string): Decoded {
  const tokens = tokenize(input);
  if (tokens.length === 1 && tokens[0]!.kind === 'word' && specialWords.has(tokens[0]!.text)) {
    return { kind: 'special', word: tokens[0]!.text as Extract<Decoded, { kind: 'special' }>['word'] };
  }
  const date: DateFields = { year: null, month: null, day: null, dayOfYear: null, twoDigitYear: false, julian: false };
  let time: TimeFields | null = null;
  let offsetSeconds: number | null = null;
  let era: 'ad' | 'bc' | null = null;
  let meridiem: 'am' | 'pm' | null = null;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    switch (token.kind) {
      case 'date':
        decodeDelimitedDate(token.text, token.delimiter, date);
        break;
      case 'number':
        // 6+ digits are run-together fields unless both a date field and the time are known.
        if (token.text.length >= 6 && (!hasAnyDateField(date) || time === null)) time = decodeNumberField(token.text, date, time);
        else if (hasFullDate(date)) time = decodeNumberField(token.text, date, time);
        else decodeNumber(token.text, date);
        break;
      case 'time':
        if (time !== null) throw new DecodeError('syntax');
        time = decodeTime(token.text);
        break;
      case 'zone':
        if (offsetSeconds !== null) throw new DecodeError('syntax');
        offsetSeconds = decodeZoneOffset(token.text);
        break;
      case 'word': {
        const word = token.text;
        if (word === 't') {
          // The ISO 8601 separator: a time must follow, possibly run together (HHMMSS, HHMM).
          const next = tokens[index + 1];
          if (next?.kind === 'number') {
            if (time !== null) throw new DecodeError('syntax');
            time = decodeRunTogetherTime(next.text);
            index++;
          } else if (next?.kind !== 'time') {
            throw new DecodeError('syntax');
          }
        } else if (word === 'j') {
          const next = tokens[index + 1];
          if (hasAnyDateField(date) || next?.kind !== 'number') throw new DecodeError('syntax');
          Object.assign(date, civilFromDays(fieldInteger(next.text) - epochJulianDay), { julian: true });
          index++;
        } else if (utcWords.has(word)) {
          if (offsetSeconds !== null) throw new DecodeError('syntax');
          offsetSeconds = 0;
        } else if (word === 'ad' || word === 'bc') {
          if (era !== null) throw new DecodeError('syntax');
          era = word;
        } else if (word === 'am' || word === 'pm') {
          if (meridiem !== null) throw new DecodeError('syntax');
          meridiem = word;
        } else if (word === 'allballs') {
          if (time !== null) throw new DecodeError('syntax');
          time = { hour: 0, minute: 0, second: 0, micros: 0 };
        } else {
          throw new DecodeError('syntax');
        }
        break;
      }
    }
  }
  const { year, month, day } = validateDate(date, era);
  const timeOfDayMicros = time === null ? 0 : timeOfDay(time, meridiem);
  if (time === null && meridiem !== null) throw new DecodeError('syntax');
  return { kind: 'fields', year, month, day, timeOfDayMicros, offsetSeconds };
}

/** DecodeDate: the fields of a delimited date, each placed by decodeNumber; it must complete the date. */
function decodeDelimitedDate(text: string, delimiter: string, date: DateFields): void {
  const fields = text.split(delimiter);
  if (fields.some((field) => field === '')) throw new DecodeError('syntax');
  for (const field of fields) {
    if (hasFullDate(date)) throw new DecodeError('syntax');
    decodeNumber(field, date);
  }
  if (!hasFullDate(date) && !(date.year !== null && date.dayOfYear !== null)) throw new DecodeError('syntax');
}

/**
 * ValidateDate: the era, two-digit years, the day of the year, month and day ranges (the
 * month/day errors carry the DateStyle hint); then DecodeDateTime's "is the date complete".
 */
function validateDate(date: DateFields, era: 'ad' | 'bc' | null): { year: number; month: number; day: number } {
  let year = date.year;
  if (year !== null) {
    if (date.julian) {
      if (era !== null) throw new DecodeError('syntax');
    } else if (era === 'bc') {
      if (year <= 0) throw new DecodeError('field');
      year = 1 - year; // 1 BC is year 0
    } else if (date.twoDigitYear) {
      if (year < 0) throw new DecodeError('field');
      year += year < 70 ? 2000 : year < 100 ? 1900 : 0;
    } else if (year <= 0) {
      throw new DecodeError('field');
    }
  }
  let { month, day } = date;
  if (date.dayOfYear !== null && year !== null) {
    // Day 366 of a common year is January 1st of the next, as j2date computes it.
    ({ year, month, day } = civilFromDays(daysFromCivil(year, 1, 1) + date.dayOfYear - 1));
  }
  if (month !== null && (month < 1 || month > 12)) throw new DecodeError('month-day');
  if (day !== null && (day < 1 || day > 31)) throw new DecodeError('month-day');
  if (year === null || month === null || day === null) throw new DecodeError('syntax');
  if (day > daysInMonth(year, month)) throw new DecodeError('field');
  return { year, month, day };
}

/** DecodeTime: H:M[:S[.fraction]]; the fraction is rounded as rint(fraction × 10^6). */
function decodeTime(text: string): TimeFields {
  const match = /^(\d+):(\d+)(?::(\d+)(?:\.(\d*))?)?$/.exec(text);
  if (match === null) throw new DecodeError('syntax');
  const hour = fieldInteger(match[1]!);
  const minute = fieldInteger(match[2]!);
  const second = match[3] === undefined ? 0 : fieldInteger(match[3]);
  const fraction = match[4] ?? '';
  const micros = fraction === '' ? 0 : roundHalfEven(Number(`0.${fraction}`) * 1_000_000);
  return checkTime({ hour, minute, second, micros });
}

function checkTime(time: TimeFields): TimeFields {
  if (time.minute > 59 || time.second > 60 || time.micros > 1_000_000) throw new DecodeError('field');
  return time;
}


function timeOfDay(time: TimeFields, meridiem: 'am' | 'pm' | null): number {
  let hour = time.hour;
  if (meridiem !== null) {
    if (hour > 12) throw new DecodeError('field');
    if (meridiem === 'am' && hour === 12) hour = 0;
    if (meridiem === 'pm' && hour !== 12) hour += 12;
  }
  const beyondMidnight = hour === 24 && (time.minute > 0 || time.second > 0 || time.micros > 0);
  if (hour > 24 || beyondMidnight) throw new DecodeError('field');
  return ((hour * 60 + time.minute) * 60 + time.second) * 1_000_000 + time.micros;
}

/** DecodeTimezone: ±H, ±HH, ±HHMM, ±H:MM, ±HH:MM:SS; 22009 beyond ±15:59:59. */
function decodeZoneOffset(text: string): number {
  const sign = text[0] === '-' ? -1 : 1;
  const body = text.slice(1);
  let hours: number;
  let minutes = 0;
  let seconds = 0;
  const parts = body.split(':');
  if (parts.length > 3 || parts.some((part) => !/^\d+$/.test(part))) throw new DecodeError('syntax');
  if (parts.length === 1 && body.length > 2) {
    const value = fieldInteger(body);
    hours = Math.floor(value / 100);
    minutes = value % 100;
  } else {
    hours = fieldInteger(parts[0]!);
    if (parts[1] !== undefined) minutes = fieldInteger(parts[1]);
    if (parts[2] !== undefined) seconds = fieldInteger(parts[2]);
  }
  if (hours > zoneOffsetHoursMax || minutes >= 60 || seconds >= 60) throw new DecodeError('zone');
  return sign * ((hours * 60 + minutes) * 60 + seconds);
}
