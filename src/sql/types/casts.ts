// Casts between the supported types: which exist and in which context (PostgreSQL 15's
// pg_cast rows among these types, plus the I/O conversions to and from string types), and
// what they compute: PostgreSQL's cast functions with their rounding and range errors,
// followed by the target's length coercion (typmod), as coerce_type + coerce_type_typmod.

import { SqlError } from '../../pgwire/session.js';
import { coerceBpchar, coerceVarchar, toName, trimBpchar } from './character.js';
import {
  adjustTimestampPrecision,
  dateToTimestamp,
  dateToTimestamptz,
  timestampToDate,
  timestampToTimestamptz,
  timestamptzToDate,
  timestamptzToTimestamp,
} from './datetime.js';
import { bigIntToFloat32, float8ToFloat4, parseFloat4, parseFloat8, roundHalfEven } from './float.js';
import { checkInteger, INTEGER_RANGES, integerOutOfRange, type IntegerTypeName } from './integer.js';
import { Numeric } from './numeric.js';
import { typeDisplayName } from './type-names.js';
import { baseTypeName, DEFAULT_TYPE_CONTEXT, lookUpRelation, textIn, textOut, type TypeContext, type TypeName, type TypeOid, TypeOids, type Value } from './types.js';

export type CastContext = 'implicit' | 'assignment' | 'explicit';

/** pg_cast among the supported types ('i', 'a', 'e'), keyed 'source>target'. */
const castTable: ReadonlyMap<string, CastContext> = new Map(
  (
    [
      ['bool', 'int4', 'e'],
      ['bool', 'text', 'a'],
      ['bool', 'bpchar', 'a'],
      ['bool', 'varchar', 'a'],
      ['name', 'text', 'i'],
      ['name', 'bpchar', 'a'],
      ['name', 'varchar', 'a'],
      ['int8', 'int2', 'a'],
      ['int8', 'int4', 'a'],
      ['int8', 'oid', 'i'],
      ['int8', 'float4', 'i'],
      ['int8', 'float8', 'i'],
      ['int8', 'numeric', 'i'],
      ['int8', 'regclass', 'i'],
      ['int2', 'int8', 'i'],
      ['int2', 'int4', 'i'],
      ['int2', 'oid', 'i'],
      ['int2', 'float4', 'i'],
      ['int2', 'float8', 'i'],
      ['int2', 'numeric', 'i'],
      ['int2', 'regclass', 'i'],
      ['int4', 'bool', 'e'],
      ['int4', 'int8', 'i'],
      ['int4', 'int2', 'a'],
      ['int4', 'oid', 'i'],
      ['int4', 'float4', 'i'],
      ['int4', 'float8', 'i'],
      ['int4', 'numeric', 'i'],
      ['int4', 'regclass', 'i'],
      ['text', 'name', 'i'],
      ['text', 'bpchar', 'i'],
      ['text', 'varchar', 'i'],
      ['text', 'regclass', 'i'],
      ['oid', 'int8', 'a'],
      ['oid', 'int4', 'a'],
      ['oid', 'regclass', 'i'],
      ['float4', 'int8', 'a'],
      ['float4', 'int2', 'a'],
      ['float4', 'int4', 'a'],
      ['float4', 'float8', 'i'],
      ['float4', 'numeric', 'a'],
      ['float8', 'int8', 'a'],
      ['float8', 'int2', 'a'],
      ['float8', 'int4', 'a'],
      ['float8', 'float4', 'a'],
      ['float8', 'numeric', 'a'],
      ['bpchar', 'name', 'i'],
      ['bpchar', 'text', 'i'],
      ['bpchar', 'varchar', 'i'],
      ['varchar', 'name', 'i'],
      ['varchar', 'text', 'i'],
      ['varchar', 'bpchar', 'i'],
      ['varchar', 'regclass', 'i'],
      ['date', 'timestamp', 'i'],
      ['date', 'timestamptz', 'i'],
      ['timestamp', 'date', 'a'],
      ['timestamp', 'timestamptz', 'i'],
      ['timestamptz', 'date', 'a'],
      ['timestamptz', 'timestamp', 'a'],
      ['numeric', 'int8', 'a'],
      ['numeric', 'int2', 'a'],
      ['numeric', 'int4', 'a'],
      ['numeric', 'float4', 'i'],
      ['numeric', 'float8', 'i'],
      ['regclass', 'int8', 'a'],
      ['regclass', 'int4', 'a'],
      ['regclass', 'oid', 'i'],
    ] as const
  ).map(([source, target, context]) => [`${source}>${target}`, ({ i: 'implicit', a: 'assignment', e: 'explicit' } as const)[context]]),
);

/** Types of PostgreSQL's string category ('S'), the targets and sources of I/O conversion casts. */
const stringTypes: ReadonlySet<TypeName> = new Set(['text', 'varchar', 'bpchar', 'name']);
const isStringType = (name: TypeName): boolean => stringTypes.has(name);

/**
 * The context in which a cast from → to exists, or null (find_coercion_pathway): the same
 * type and unknown literals always; pg_cast's rows; otherwise I/O conversion, to a string
 * type in assignment, from a string type explicitly.
 */
export function castContext(from: TypeOid, to: TypeOid): CastContext | null {
  if (from === to) return 'implicit';
  const source = baseTypeName(from);
  const target = baseTypeName(to);
  if (source === 'unknown') return 'implicit';
  if (target === 'unknown') return null;
  const listed = castTable.get(`${source}>${target}`);
  if (listed !== undefined) return listed;
  if (isStringType(target)) return 'assignment';
  if (isStringType(source)) return 'explicit';
  return null;
}

/** Whether INSERT/UPDATE may store a `from` value in a `to` column. */
export function assignmentCastable(from: TypeOid, to: TypeOid): boolean {
  const context = castContext(from, to);
  return context === 'implicit' || context === 'assignment';
}

export function implicitlyCastable(from: TypeOid, to: TypeOid): boolean {
  return castContext(from, to) === 'implicit';
}

/**
 * A type's length coercion for a typmod (-1: none): numeric(p,s) rounds and range-checks,
 * varchar(n)/char(n) clip (only spaces unless explicit), timestamp(p) rounds.
 */
export function applyTypmod(type: TypeOid, value: Value, typmod: number, explicit: boolean): Value {
  if (value === null || typmod < 0) return value;
  switch (baseTypeName(type)) {
    case 'numeric':
      return (value as Numeric).applyTypmod(typmod);
    case 'varchar':
      return coerceVarchar(value as string, typmod, explicit);
    case 'bpchar':
      return coerceBpchar(value as string, typmod, explicit);
    case 'timestamp':
    case 'timestamptz':
      return adjustTimestampPrecision(value as bigint, typmod);
    default:
      return value;
  }
}

/**
 * Converts a value to another type and applies the target's typmod. It computes any cast
 * PostgreSQL has between the types, whatever its context: whether the cast is allowed
 * where it appears is the caller's question (castContext). `explicit` matters only to the
 * length coercion of varchar(n)/char(n).
 */
export function cast(value: Value, from: TypeOid, to: TypeOid, typmod = -1, explicit = true, context: TypeContext = DEFAULT_TYPE_CONTEXT): Value {
  if (value === null) return null;
  const converted = from === to ? value : convert(value, baseTypeName(from), baseTypeName(to), context);
  return applyTypmod(to, converted, typmod, explicit);
}

function convert(value: Exclude<Value, null>, source: TypeName, target: TypeName, context: TypeContext): Value {
  if (source === 'unknown' || isStringType(source)) return convertFromString(value as string, source, target, context);
  if (isStringType(target)) return convertToString(value, source, target, context);
  const numeric = convertNumber(value, source, target);
  if (numeric !== undefined) return numeric;
  const temporal = convertTemporal(value, source, target, context);
  if (temporal !== undefined) return temporal;
  if (source === 'bool' && target === 'int4') return value === true ? 1 : 0;
  if (source === 'int4' && target === 'bool') return value !== 0;
  throw new SqlError('42846', `cannot cast type ${typeDisplayName(typeIdOf(source))} to ${typeDisplayName(typeIdOf(target))}`);
}

/** From text-like types: to another string type directly, else through the input function. */
function convertFromString(text: string, source: TypeName | 'unknown', target: TypeName, context: TypeContext): Value {
  if (isStringType(target) || target === 'unknown') {
    // char(n) loses its padding when it becomes another string type (rtrim1, bpchar_name).
    const plain = source === 'bpchar' && target !== 'bpchar' ? trimBpchar(text) : text;
    return target === 'name' ? toName(plain) : plain;
  }
  // text → regclass (text_regclass) is a name lookup only: digits are a name there, unlike regclassin.
  if (target === 'regclass' && (source === 'text' || source === 'varchar')) return lookUpRelation(text, context);
  return textIn(typeIdOf(target), text, -1, context);
}

/** To text-like types: bool is 'true'/'false' (booltext) except to name; others use the output function. */
function convertToString(value: Exclude<Value, null>, source: TypeName, target: TypeName, context: TypeContext): string {
  const text = source === 'bool' && target !== 'name' ? (value === true ? 'true' : 'false') : textOut(typeIdOf(source), value, context);
  return target === 'name' ? toName(text) : text;
}

const integerTypes: ReadonlySet<TypeName> = new Set(['int2', 'int4', 'int8']);
const oidTypes: ReadonlySet<TypeName> = new Set(['oid', 'regclass']);

/** Casts among int2/int4/int8/float4/float8/numeric/oid/regclass; undefined if not numeric. */
function convertNumber(value: Exclude<Value, null>, source: TypeName, target: TypeName): Value | undefined {
  if (integerTypes.has(source)) {
    const integer = typeof value === 'bigint' ? value : BigInt(value as number);
    if (integerTypes.has(target)) return checkInteger(target as IntegerTypeName, integer);
    if (target === 'float4') return typeof value === 'bigint' ? bigIntToFloat32(value) : Math.fround(value as number);
    if (target === 'float8') return Number(integer);
    if (target === 'numeric') return Numeric.fromBigInt(integer);
    if (oidTypes.has(target)) return integerToOid(integer, source);
    return undefined;
  }
  if (source === 'float4' || source === 'float8') {
    const float = value as number;
    if (integerTypes.has(target)) return floatToInteger(float, target as IntegerTypeName);
    if (target === 'float8') return float;
    if (target === 'float4') return float8ToFloat4(float);
    if (target === 'numeric') return Numeric.fromNumber(float, source === 'float4' ? 6 : 15);
    return undefined;
  }
  if (source === 'numeric') {
    const numeric = value as Numeric;
    if (integerTypes.has(target)) {
      const type = target as IntegerTypeName;
      return checkInteger(type, numeric.toBigInt(INTEGER_RANGES[type].word));
    }
    // numeric_float8/numeric_float4 go through the float input function, with its range errors.
    if (target === 'float8') return numeric.isFinite() ? parseFloat8(numeric.toString()) : numeric.toNumber();
    if (target === 'float4') return numeric.isFinite() ? parseFloat4(numeric.toString()) : numeric.toNumber();
    return undefined;
  }
  if (oidTypes.has(source)) {
    const oid = value as number;
    if (oidTypes.has(target)) return oid;
    if (target === 'int8') return BigInt(oid);
    if (target === 'int4') return oid | 0; // binary coercion: the same 32 bits, signed
    return undefined;
  }
  return undefined;
}

/** int4 → oid reinterprets the bits (binary coercible); int8 → oid checks the range. */
function integerToOid(value: bigint, source: TypeName): number {
  if (source === 'int8') {
    if (value < 0n || value > 4294967295n) throw new SqlError('22003', 'OID out of range');
    return Number(value);
  }
  return Number(BigInt.asUintN(32, value));
}

/** dtoi2/dtoi4/dtoi8 (and ftoi*): rint, then the range check; NaN is out of range. */
function floatToInteger(value: number, target: IntegerTypeName): number | bigint {
  const rounded = roundHalfEven(value);
  const range = INTEGER_RANGES[target];
  // The bounds as doubles: min is exact, max + 1 is the exclusive upper bound (2^15, 2^31, 2^63).
  if (Number.isNaN(rounded) || rounded < Number(range.min) || rounded >= -Number(range.min)) throw integerOutOfRange(target);
  return target === 'int8' ? BigInt(rounded) : rounded === 0 ? 0 : rounded;
}

function convertTemporal(value: Exclude<Value, null>, source: TypeName, target: TypeName, context: TypeContext): Value | undefined {
  const zone = context.timeZone;
  switch (`${source}>${target}`) {
    case 'date>timestamp':
      return dateToTimestamp(value as number);
    case 'date>timestamptz':
      return dateToTimestamptz(value as number, zone);
    case 'timestamp>date':
      return timestampToDate(value as bigint);
    case 'timestamp>timestamptz':
      return timestampToTimestamptz(value as bigint, zone);
    case 'timestamptz>date':
      return timestamptzToDate(value as bigint, zone);
    case 'timestamptz>timestamp':
      return timestamptzToTimestamp(value as bigint, zone);
    default:
      return undefined;
  }
}

const typeIdOf = (name: TypeName): TypeOid => TypeOids[name];
