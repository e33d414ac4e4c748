// int2, int4, int8 and oid: text input with PostgreSQL 15's rules and errors, and the
// arithmetic operators with their overflow checks. int2/int4 are JS numbers (always
// integral), int8 a bigint; every result is range-checked before it is returned.

import { SqlError } from '../../pgwire/session.js';

export type IntegerTypeName = 'int2' | 'int4' | 'int8';

interface IntegerRange {
  /** The word PostgreSQL's messages use. */
  word: 'smallint' | 'integer' | 'bigint';
  min: bigint;
  max: bigint;
}

export const INTEGER_RANGES: Readonly<Record<IntegerTypeName, IntegerRange>> = {
  int2: { word: 'smallint', min: -32768n, max: 32767n },
  int4: { word: 'integer', min: -2147483648n, max: 2147483647n },
  int8: { word: 'bigint', min: -9223372036854775808n, max: 9223372036854775807n },
};

const isCSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** 22003 'integer out of range' (or smallint/bigint). */
export function integerOutOfRange(type: IntegerTypeName): SqlError {
  return new SqlError('22003', `${INTEGER_RANGES[type].word} out of range`);
}

/**
 * pg_strtoint16/32/64 (PostgreSQL 15): spaces, a sign, decimal digits, spaces. Overflow is
 * reported as soon as the digits exceed the range, before any trailing junk is seen.
 */
export function parseIntegerText(text: string, type: IntegerTypeName): bigint {
  const range = INTEGER_RANGES[type];
  const invalid = (): SqlError => new SqlError('22P02', `invalid input syntax for type ${range.word}: "${text}"`);
  let position = 0;
  while (isCSpace(text[position])) position++;
  let negative = false;
  if (text[position] === '-' || text[position] === '+') {
    negative = text[position] === '-';
    position++;
  }
  if (!isDigit(text[position])) throw invalid();
  const limit = negative ? -range.min : range.max;
  let magnitude = 0n;
  while (isDigit(text[position])) {
    magnitude = magnitude * 10n + BigInt(text.charCodeAt(position) - 48);
    if (magnitude > limit) throw new SqlError('22003', `value "${text}" is out of range for type ${range.word}`);
    position++;
  }
  while (isCSpace(text[position])) position++;
  if (position !== text.length) throw invalid();
  return negative ? -magnitude : magnitude;
}

/** int2in/int4in as a number, int8in as a bigint. */
export function parseInt2(text: string): number {
  return Number(parseIntegerText(text, 'int2'));
}

export function parseInt4(text: string): number {
  return Number(parseIntegerText(text, 'int4'));
}

export function parseInt8(text: string): bigint {
  return parseIntegerText(text, 'int8');
}

const oidMax = 4294967295n;
const unsignedLongMax = 18446744073709551615n;

/**
 * oidin (PostgreSQL 15): strtoul, which negates a '-' input modulo 2^64, then accepted if the
 * result fits 32 bits unsigned or as a sign-extended 32-bit int. So '-1' and
 * '18446744073709551615' are both 4294967295, '-2147483649' is out of range.
 */
export function parseOid(text: string, typeWord = 'oid'): number {
  const invalid = (): SqlError => new SqlError('22P02', `invalid input syntax for type ${typeWord}: "${text}"`);
  const outOfRange = (): SqlError => new SqlError('22003', `value "${text}" is out of range for type ${typeWord}`);
  let position = 0;
  while (isCSpace(text[position])) position++;
  let negative = false;
  if (text[position] === '-' || text[position] === '+') {
    negative = text[position] === '-';
    position++;
  }
  const digitsStart = position;
  while (isDigit(text[position])) position++;
  if (position === digitsStart) throw invalid();
  const magnitude = BigInt(text.slice(digitsStart, position));
  while (isCSpace(text[position])) position++;
  if (magnitude > unsignedLongMax) throw outOfRange();
  if (position !== text.length) throw invalid();
  const converted = negative ? BigInt.asUintN(64, -magnitude) : magnitude;
  const signExtendedMin = unsignedLongMax + 1n - 2147483648n;
  if (converted > oidMax && converted < signExtendedMin) throw outOfRange();
  return Number(BigInt.asUintN(32, converted));
}

/** A value as the type's representation, or 22003 if it does not fit. */
export function checkInteger(type: 'int2' | 'int4', value: number | bigint): number;
export function checkInteger(type: 'int8', value: number | bigint): bigint;
export function checkInteger(type: IntegerTypeName, value: number | bigint): number | bigint;
export function checkInteger(type: IntegerTypeName, value: number | bigint): number | bigint {
  const range = INTEGER_RANGES[type];
  const big = typeof value === 'bigint' ? value : BigInt(value);
  if (big < range.min || big > range.max) throw integerOutOfRange(type);
  return type === 'int8' ? big : Number(big);
}

export type IntegerOperator = '+' | '-' | '*' | '/' | '%';

/** The operators of one integer type. */
export interface IntegerArithmetic<T extends number | bigint> {
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  /** Truncates toward zero; x / 0 is 22012. */
  div(a: T, b: T): T;
  /** Sign of the dividend; x % 0 is 22012; MIN % -1 is 0. */
  mod(a: T, b: T): T;
  neg(a: T): T;
  abs(a: T): T;
}

function divisionByZero(): SqlError {
  return new SqlError('22012', 'division by zero');
}

/**
 * int2/int4 on doubles: each exact result is below 2^62 in magnitude, so a double that is
 * inside the 32-bit range is the exact result, and one outside is certainly out of range.
 */
function smallIntegerArithmetic(type: 'int2' | 'int4'): IntegerArithmetic<number> {
  const min = Number(INTEGER_RANGES[type].min);
  const max = Number(INTEGER_RANGES[type].max);
  const check = (value: number): number => {
    if (value < min || value > max) throw integerOutOfRange(type);
    return value === 0 ? 0 : value; // never -0
  };
  return {
    add: (a, b) => check(a + b),
    sub: (a, b) => check(a - b),
    mul: (a, b) => check(a * b),
    div: (a, b) => {
      if (b === 0) throw divisionByZero();
      return check(Math.trunc(a / b));
    },
    mod: (a, b) => {
      if (b === 0) throw divisionByZero();
      return check(a % b);
    },
    neg: (a) => check(-a),
    abs: (a) => check(Math.abs(a)),
  };
}

function bigIntegerArithmetic(): IntegerArithmetic<bigint> {
  const check = (value: bigint): bigint => checkInteger('int8', value);
  return {
    add: (a, b) => check(a + b),
    sub: (a, b) => check(a - b),
    mul: (a, b) => check(a * b),
    div: (a, b) => {
      if (b === 0n) throw divisionByZero();
      return check(a / b);
    },
    mod: (a, b) => {
      if (b === 0n) throw divisionByZero();
      return a % b;
    },
    neg: (a) => check(-a),
    abs: (a) => check(a < 0n ? -a : a),
  };
}

export const int2Arithmetic: IntegerArithmetic<number> = smallIntegerArithmetic('int2');
export const int4Arithmetic: IntegerArithmetic<number> = smallIntegerArithmetic('int4');
export const int8Arithmetic: IntegerArithmetic<bigint> = bigIntegerArithmetic();

/** Applies an operator of one integer type. */
export function integerOperation(operator: IntegerOperator, type: 'int2' | 'int4', a: number, b: number): number;
export function integerOperation(operator: IntegerOperator, type: 'int8', a: bigint, b: bigint): bigint;
export function integerOperation(operator: IntegerOperator, type: IntegerTypeName, a: number | bigint, b: number | bigint): number | bigint;
export function integerOperation(operator: IntegerOperator, type: IntegerTypeName, a: number | bigint, b: number | bigint): number | bigint {
  if (type === 'int8') return applyOperator(int8Arithmetic, operator, BigInt(a), BigInt(b));
  return applyOperator(type === 'int2' ? int2Arithmetic : int4Arithmetic, operator, Number(a), Number(b));
}

function applyOperator<T extends number | bigint>(arithmetic: IntegerArithmetic<T>, operator: IntegerOperator, a: T, b: T): T {
  switch (operator) {
    case '+':
      return arithmetic.add(a, b);
    case '-':
      return arithmetic.sub(a, b);
    case '*':
      return arithmetic.mul(a, b);
    case '/':
      return arithmetic.div(a, b);
    case '%':
      return arithmetic.mod(a, b);
  }
}
