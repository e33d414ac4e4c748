// The type registry (PostgreSQL's OIDs, typname, typlen, typcategory, typispreferred, array
// types) and the per-type I/O: text input/output (PostgreSQL 15's *in/*out functions),
// binary input/output (the *recv/*send wire formats) and comparison (btree order, "C"
// collation for text). Casts live in casts.ts, type names in type-names.ts; index.ts is the
// folder's public face.

import { SqlError } from '../../pgwire/session.js';
import {
  checkTextValue,
  coerceBpchar,
  coerceVarchar,
  compareBpchar,
  compareBytes,
  compareCodePoints,
  decodeUtf8,
  formatBytea,
  NAME_BYTES_MAX,
  parseBytea,
  toName,
  utf8Encode,
} from './character.js';
import {
  adjustTimestampPrecision,
  dateFromInt32,
  dateToInt32,
  type DateTimeContext,
  formatDate,
  formatTimestamp,
  formatTimestamptz,
  isFiniteTimestamp,
  isValidTimestamp,
  parseDate,
  parseTimestamp,
  parseTimestamptz,
  UTC,
} from './datetime.js';
import { formatFloat4, formatFloat8, parseFloat4, parseFloat8 } from './float.js';
import { parseInt2, parseInt4, parseInt8, parseOid } from './integer.js';
import { incorrectBinaryFormat, insufficientData, Numeric } from './numeric.js';

/** PostgreSQL's OIDs of the supported types. */
export const TypeOids = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  regclass: 2205,
} as const;

export type TypeName = keyof typeof TypeOids;
/** A type's OID (a plain number, as the SQL layer and the wire use them). */
export type TypeOid = number;

/** A value of a supported type (README: the representation table). NULL is null. */
export type Value = null | boolean | number | bigint | string | Uint8Array | Numeric;

/** PostgreSQL's typcategory letters used here. */
export type TypeCategory = 'A' | 'B' | 'D' | 'N' | 'S' | 'U' | 'X';

export interface TypeInfo {
  oid: TypeOid;
  /** pg_type.typname. */
  name: string;
  /** typlen: bytes, -1 varlena, -2 C string. RowDescription's data type size. */
  length: number;
  category: TypeCategory;
  /** typispreferred: the preferred type of its category in operator resolution. */
  preferred: boolean;
  /** typarray: the array type of this type (0: none). */
  arrayOid: TypeOid;
  /** typelem: an array's element type; also 18 ("char") for name, as pg_type has it. */
  elementOid: TypeOid;
}

interface BaseTypeRow {
  name: TypeName;
  length: number;
  category: TypeCategory;
  preferred: boolean;
  arrayOid: number;
  elementOid?: number;
}

const baseTypeRows: readonly BaseTypeRow[] = [
  { name: 'bool', length: 1, category: 'B', preferred: true, arrayOid: 1000 },
  { name: 'bytea', length: -1, category: 'U', preferred: false, arrayOid: 1001 },
  { name: 'name', length: 64, category: 'S', preferred: false, arrayOid: 1003, elementOid: 18 },
  { name: 'int8', length: 8, category: 'N', preferred: false, arrayOid: 1016 },
  { name: 'int2', length: 2, category: 'N', preferred: false, arrayOid: 1005 },
  { name: 'int4', length: 4, category: 'N', preferred: false, arrayOid: 1007 },
  { name: 'text', length: -1, category: 'S', preferred: true, arrayOid: 1009 },
  { name: 'oid', length: 4, category: 'N', preferred: true, arrayOid: 1028 },
  { name: 'float4', length: 4, category: 'N', preferred: false, arrayOid: 1021 },
  { name: 'float8', length: 8, category: 'N', preferred: true, arrayOid: 1022 },
  { name: 'unknown', length: -2, category: 'X', preferred: false, arrayOid: 0 },
  { name: 'bpchar', length: -1, category: 'S', preferred: false, arrayOid: 1014 },
  { name: 'varchar', length: -1, category: 'S', preferred: false, arrayOid: 1015 },
  { name: 'date', length: 4, category: 'D', preferred: false, arrayOid: 1182 },
  { name: 'timestamp', length: 8, category: 'D', preferred: false, arrayOid: 1115 },
  { name: 'timestamptz', length: 8, category: 'D', preferred: true, arrayOid: 1185 },
  { name: 'numeric', length: -1, category: 'N', preferred: false, arrayOid: 1231 },
  { name: 'regclass', length: 4, category: 'N', preferred: false, arrayOid: 2210 },
];

function buildRegistry(): Map<TypeOid, TypeInfo> {
  const registry = new Map<TypeOid, TypeInfo>();
  for (const row of baseTypeRows) {
    const oid = TypeOids[row.name];
    registry.set(oid, { oid, name: row.name, length: row.length, category: row.category, preferred: row.preferred, arrayOid: row.arrayOid, elementOid: row.elementOid ?? 0 });
    if (row.arrayOid !== 0) {
      registry.set(row.arrayOid, { oid: row.arrayOid, name: `_${row.name}`, length: -1, category: 'A', preferred: false, arrayOid: 0, elementOid: oid });
    }
  }
  return registry;
}

const registry = buildRegistry();
const oidToName = new Map<TypeOid, TypeName>(Object.entries(TypeOids).map(([name, oid]) => [oid, name as TypeName]));

/** The registry entry of a type (base or array); an unknown OID is a programmer error. */
export function typeInfo(type: TypeOid): TypeInfo {
  const info = registry.get(type);
  if (info === undefined) throw new Error(`type OID ${type} is not in the registry`);
  return info;
}

export function findTypeInfo(type: TypeOid): TypeInfo | undefined {
  return registry.get(type);
}

/** The element type of an array type, or null for a base type. */
export function arrayElement(type: TypeOid): TypeOid | null {
  const info = registry.get(type);
  return info !== undefined && info.category === 'A' ? info.elementOid : null;
}

/** The supported base type's name; arrays and unknown OIDs are programmer errors here. */
export function baseTypeName(type: TypeOid): TypeName {
  const name = oidToName.get(type);
  if (name === undefined) throw new Error(`type OID ${type} has no value support`);
  return name;
}

export function typeLength(type: TypeOid): number {
  return typeInfo(type).length;
}

/** pg_type rows (base and array types). */
export function typeCatalog(): Array<{ oid: number; name: string; length: number; category: string; preferred: boolean; element: number; array: number }> {
  return [...registry.values()].map((info) => ({
    oid: info.oid,
    name: info.name,
    length: info.length,
    category: info.category,
    preferred: info.preferred,
    element: info.elementOid,
    array: info.arrayOid,
  }));
}

/** Session state that some types' I/O depends on. */
export interface TypeContext extends DateTimeContext {
  /**
   * regclass input by name: the OID of the relation named by a parsed, possibly
   * schema-qualified name (['public', 't'] or ['t']), or null (42P01). Without it, regclass
   * accepts only OIDs written in digits.
   */
  relationOid?: (qualifiedName: readonly string[]) => number | null;
  /** regclass output: the relation's name as regclassout prints it, or null to print the number. */
  relationName?: (oid: number) => string | null;
}

export const DEFAULT_TYPE_CONTEXT: TypeContext = { timeZone: UTC };

// --- Text I/O -------------------------------------------------------------------------

/** boolin / parse_bool_with_len: a case-insensitive prefix of true/false/yes/no, on/off, 1/0. */
export function parseBool(text: string): boolean {
  const trimmed = text.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '').toLowerCase();
  const isPrefixOf = (word: string, minimum = 1): boolean => trimmed.length >= minimum && word.startsWith(trimmed);
  switch (trimmed[0]) {
    case 't':
      if (isPrefixOf('true')) return true;
      break;
    case 'f':
      if (isPrefixOf('false')) return false;
      break;
    case 'y':
      if (isPrefixOf('yes')) return true;
      break;
    case 'n':
      if (isPrefixOf('no')) return false;
      break;
    case 'o':
      // 'o' alone is ambiguous: at least two letters.
      if (isPrefixOf('on', 2)) return true;
      if (isPrefixOf('off', 2)) return false;
      break;
    case '1':
      if (trimmed.length === 1) return true;
      break;
    case '0':
      if (trimmed.length === 1) return false;
      break;
  }
  throw new SqlError('22P02', `invalid input syntax for type boolean: "${text}"`);
}

/** regclassin: an OID in digits, '-' for none, or a relation name looked up through the context. */
function parseRegclass(text: string, context: TypeContext): number {
  if (text === '-') return 0; // InvalidOid, as regclassout prints it
  if (/^[0-9]+$/.test(text)) return parseOid(text, 'oid');
  return lookUpRelation(text, context);
}

/** A relation name (stringToQualifiedNameList) resolved through the context's catalog. */
export function lookUpRelation(text: string, context: TypeContext): number {
  const names = parseQualifiedName(text);
  if (context.relationOid === undefined) throw new SqlError('0A000', `regclass lookup by name needs the catalog: "${text}"`);
  const oid = context.relationOid(names);
  if (oid === null) throw new SqlError('42P01', `relation "${names.join('.')}" does not exist`);
  return oid;
}

/**
 * SplitIdentifierString on '.': unquoted names are trimmed and lower-cased (ASCII), quoted
 * ones keep their case with "" for a quote; 42602 'invalid name syntax' otherwise.
 */
export function parseQualifiedName(text: string): string[] {
  const invalid = (): SqlError => new SqlError('42602', 'invalid name syntax');
  const names: string[] = [];
  let position = 0;
  const skipSpaces = (): void => {
    while (/[ \t\n\r\f\v]/.test(text[position] ?? 'x')) position++;
  };
  skipSpaces();
  for (;;) {
    let name = '';
    if (text[position] === '"') {
      position++;
      for (;;) {
        const end = text.indexOf('"', position);
        if (end < 0) throw invalid();
        name += text.slice(position, end);
        position = end + 1;
        if (text[position] !== '"') break;
        name += '"';
        position++;
      }
    } else {
      const start = position;
      while (position < text.length && text[position] !== '.' && !/[ \t\n\r\f\v]/.test(text[position]!)) position++;
      if (position === start) throw invalid();
      name = text.slice(start, position).replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
    }
    names.push(toName(name));
    skipSpaces();
    if (position === text.length) return names;
    if (text[position] !== '.') throw invalid();
    position++;
    skipSpaces();
  }
}

/** The type's input function (PostgreSQL's *in) with the column's typmod (-1: none). */
export function textIn(type: TypeOid, text: string, typmod = -1, context: TypeContext = DEFAULT_TYPE_CONTEXT): Value {
  const name = baseTypeName(type);
  switch (name) {
    case 'bool':
      return parseBool(text);
    case 'int2':
      return parseInt2(text);
    case 'int4':
      return parseInt4(text);
    case 'int8':
      return parseInt8(text);
    case 'oid':
      return parseOid(text);
    case 'regclass':
      return parseRegclass(text, context);
    case 'float4':
      return parseFloat4(text);
    case 'float8':
      return parseFloat8(text);
    case 'numeric':
      return Numeric.parse(text, typmod);
    case 'text':
    case 'unknown':
      return checkTextValue(text);
    case 'varchar':
      return coerceVarchar(checkTextValue(text), typmod, false);
    case 'bpchar':
      return coerceBpchar(checkTextValue(text), typmod, false);
    case 'name':
      return toName(checkTextValue(text));
    case 'bytea':
      return parseBytea(text);
    case 'date':
      return parseDate(text, context);
    case 'timestamp':
      return parseTimestamp(text, typmod, context);
    case 'timestamptz':
      return parseTimestamptz(text, typmod, context);
  }
}

function expectNumber(value: Value, type: TypeName): number {
  if (typeof value !== 'number') throw new Error(`${type} value must be a number, got ${typeof value}`);
  return value;
}

function expectBigInt(value: Value, type: TypeName): bigint {
  if (typeof value !== 'bigint') throw new Error(`${type} value must be a bigint, got ${typeof value}`);
  return value;
}

function expectString(value: Value, type: TypeName): string {
  if (typeof value !== 'string') throw new Error(`${type} value must be a string, got ${typeof value}`);
  return value;
}

function expectNumeric(value: Value): Numeric {
  if (!(value instanceof Numeric)) throw new Error('numeric value must be a Numeric');
  return value;
}

function expectBytes(value: Value): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new Error('bytea value must be a Uint8Array');
  return value;
}

/** The type's output function (PostgreSQL 15's *out: ISO DateStyle, extra_float_digits 1, bytea hex). */
export function textOut(type: TypeOid, value: Value, context: TypeContext = DEFAULT_TYPE_CONTEXT): string {
  if (value === null) throw new Error('textOut(NULL): NULL has no text form');
  const name = baseTypeName(type);
  switch (name) {
    case 'bool':
      if (typeof value !== 'boolean') throw new Error('bool value must be a boolean');
      return value ? 't' : 'f';
    case 'int2':
    case 'int4':
    case 'oid':
      return String(expectNumber(value, name));
    case 'regclass': {
      const oid = expectNumber(value, name);
      if (oid === 0) return '-';
      return context.relationName?.(oid) ?? String(oid);
    }
    case 'int8':
      return expectBigInt(value, name).toString();
    case 'float4':
      return formatFloat4(expectNumber(value, name));
    case 'float8':
      return formatFloat8(expectNumber(value, name));
    case 'numeric':
      return expectNumeric(value).toString();
    case 'text':
    case 'unknown':
    case 'varchar':
    case 'bpchar':
    case 'name':
      return expectString(value, name);
    case 'bytea':
      return formatBytea(expectBytes(value));
    case 'date':
      return formatDate(expectNumber(value, name));
    case 'timestamp':
      return formatTimestamp(expectBigInt(value, name));
    case 'timestamptz':
      return formatTimestamptz(expectBigInt(value, name), context.timeZone);
  }
}

// --- Binary I/O -----------------------------------------------------------------------

function fixedView(bytes: Uint8Array, length: number): DataView {
  if (bytes.length < length) throw insufficientData();
  if (bytes.length > length) throw incorrectBinaryFormat();
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function fixedBytes(length: number, write: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(length);
  write(new DataView(bytes.buffer));
  return bytes;
}

/** The type's send function: PostgreSQL's binary wire format. */
export function binaryOut(type: TypeOid, value: Value): Uint8Array {
  if (value === null) throw new Error('binaryOut(NULL): NULL has no binary form');
  const name = baseTypeName(type);
  switch (name) {
    case 'bool':
      return Uint8Array.of(value === true ? 1 : 0);
    case 'int2':
      return fixedBytes(2, (view) => view.setInt16(0, expectNumber(value, name)));
    case 'int4':
      return fixedBytes(4, (view) => view.setInt32(0, expectNumber(value, name)));
    case 'oid':
    case 'regclass':
      return fixedBytes(4, (view) => view.setUint32(0, expectNumber(value, name)));
    case 'int8':
      return fixedBytes(8, (view) => view.setBigInt64(0, expectBigInt(value, name)));
    case 'float4':
      return fixedBytes(4, (view) => view.setFloat32(0, expectNumber(value, name)));
    case 'float8':
      return fixedBytes(8, (view) => view.setFloat64(0, expectNumber(value, name)));
    case 'numeric':
      return expectNumeric(value).toBinary();
    case 'text':
    case 'unknown':
    case 'varchar':
    case 'bpchar':
    case 'name':
      return utf8Encode(expectString(value, name));
    case 'bytea':
      return expectBytes(value).slice();
    case 'date':
      return fixedBytes(4, (view) => view.setInt32(0, dateToInt32(expectNumber(value, name))));
    case 'timestamp':
    case 'timestamptz':
      return fixedBytes(8, (view) => view.setBigInt64(0, expectBigInt(value, name)));
  }
}

/** The type's receive function, with the typmod where PostgreSQL applies it. */
export function binaryIn(type: TypeOid, bytes: Uint8Array, typmod = -1): Value {
  const name = baseTypeName(type);
  switch (name) {
    case 'bool':
      return fixedView(bytes, 1).getUint8(0) !== 0;
    case 'int2':
      return fixedView(bytes, 2).getInt16(0);
    case 'int4':
      return fixedView(bytes, 4).getInt32(0);
    case 'oid':
    case 'regclass':
      return fixedView(bytes, 4).getUint32(0);
    case 'int8':
      return fixedView(bytes, 8).getBigInt64(0);
    case 'float4':
      return fixedView(bytes, 4).getFloat32(0);
    case 'float8':
      return fixedView(bytes, 8).getFloat64(0);
    case 'numeric':
      return Numeric.fromBinary(bytes, typmod);
    case 'text':
    case 'unknown':
      return decodeUtf8(bytes);
    case 'varchar':
      return coerceVarchar(decodeUtf8(bytes), typmod, false);
    case 'bpchar':
      return coerceBpchar(decodeUtf8(bytes), typmod, false);
    case 'name':
      return receiveName(bytes);
    case 'bytea':
      return bytes.slice();
    case 'date':
      return receiveDate(fixedView(bytes, 4).getInt32(0));
    case 'timestamp':
    case 'timestamptz':
      return receiveTimestamp(fixedView(bytes, 8).getBigInt64(0), typmod);
  }
}

function receiveName(bytes: Uint8Array): string {
  if (bytes.length > NAME_BYTES_MAX) {
    throw new SqlError('42622', 'identifier too long', { detail: `Identifier must be less than ${NAME_BYTES_MAX + 1} characters.` });
  }
  return decodeUtf8(bytes);
}

/** date_recv: the range date_in accepts, plus the infinities. */
function receiveDate(raw: number): number {
  const days = dateFromInt32(raw);
  if (Number.isFinite(days) && (days < -2451545 || days >= 2147483494 - 2451545)) throw new SqlError('22008', 'date out of range');
  return days;
}

/** timestamp_recv: range-checked, then timestamp(p) rounding. */
function receiveTimestamp(micros: bigint, typmod: number): bigint {
  if (!isFiniteTimestamp(micros)) return micros;
  if (!isValidTimestamp(micros)) throw new SqlError('22008', 'timestamp out of range');
  return adjustTimestampPrecision(micros, typmod);
}

// --- Comparison -----------------------------------------------------------------------

/** float8_cmp_internal: NaN equals NaN and sorts above everything; -0 = 0. */
export function compareFloats(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const compareOrdered = <T extends number | bigint>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);

/** The btree comparison of two non-null values of one type: -1, 0 or 1. */
export function compare(type: TypeOid, a: Value, b: Value): number {
  if (a === null || b === null) throw new Error('compare(NULL): NULLs are ordered by the caller');
  const name = baseTypeName(type);
  switch (name) {
    case 'bool':
      return compareOrdered(Number(a), Number(b));
    case 'int2':
    case 'int4':
    case 'oid':
    case 'regclass':
    case 'date':
      return compareOrdered(expectNumber(a, name), expectNumber(b, name));
    case 'int8':
    case 'timestamp':
    case 'timestamptz':
      return compareOrdered(expectBigInt(a, name), expectBigInt(b, name));
    case 'float4':
    case 'float8':
      return compareFloats(expectNumber(a, name), expectNumber(b, name));
    case 'numeric':
      return expectNumeric(a).compare(expectNumeric(b));
    case 'text':
    case 'unknown':
    case 'varchar':
    case 'name':
      return compareCodePoints(expectString(a, name), expectString(b, name));
    case 'bpchar':
      return compareBpchar(expectString(a, name), expectString(b, name));
    case 'bytea':
      return compareBytes(expectBytes(a), expectBytes(b));
  }
}
