// The SQL layer's view of the type system: what the binder, the executor and the session
// need from types (parsing literals, casting, comparing, arithmetic, wire encodings,
// storage forms), in one place over the type modules in ./types.
//
// Value representation by type (see ./types/README.md): bool boolean; int2/int4 number;
// int8 bigint; float4/float8 number; numeric Numeric; text/varchar/bpchar/name string;
// bytea Uint8Array; date number (days since 2000-01-01); timestamp/timestamptz bigint
// (microseconds since 2000-01-01 UTC); oid/regclass number.
//
// Storage: the engine stores what its codec knows (numbers, bigints, strings, bytes,
// booleans); numeric is stored as its canonical text, so its index order is not numeric
// order and the planner does not use numeric index ranges.

import { SqlError } from '../pgwire/session.js';
import type { Value } from '../engine/codec.js';
import { Oid, type TypeOid } from './oid.js';
import type { Node } from './expr.js';
import { Numeric } from './types/numeric.js';
import * as Types from './types/types.js';
import * as Casts from './types/casts.js';
import * as Names from './types/type-names.js';
import * as Operators from './types/operators.js';

export { Numeric };
export type Datum = null | boolean | number | bigint | string | Uint8Array | Numeric | DatumArray;
/** A one-dimensional array value (lower bound 1). */
export type DatumArray = Datum[];

/** The element type of an array type; undefined for other types. */
export function arrayElement(type: TypeOid): TypeOid | undefined {
  return Types.arrayElement(type) ?? undefined;
}

/** The array type of an element type (42704 when it has none). */
export function arrayOf(type: TypeOid): TypeOid {
  const info = Types.findTypeInfo(type);
  if (info === undefined || info.arrayOid === 0) throw new SqlError('42704', `could not find array type for data type ${Names.typeDisplayName(type)}`);
  return info.arrayOid;
}

/** PostgreSQL's text form of a one-dimensional array: {a,"b c",NULL}. */
function arrayText(element: TypeOid, values: DatumArray): string {
  const items = values.map((value) => {
    if (value === null) return 'NULL';
    const text = textOut(element, value);
    const plain = text !== '' && !/[{},"\\\s]/.test(text) && text.toUpperCase() !== 'NULL';
    return plain ? text : `"${text.replace(/[\\"]/g, '\\$&')}"`;
  });
  return `{${items.join(',')}}`;
}

/** The type modules' functions under the names this layer uses. */
const T = {
  Numeric,
  typeDisplayName: Names.typeDisplayName,
  textIn: Types.textIn,
  textOut: Types.textOut,
  binaryIn: Types.binaryIn,
  binaryOut: Types.binaryOut,
  typeLength: Types.typeLength,
  cast: Casts.cast,
  assignmentCastable: Casts.assignmentCastable,
  compare: Types.compare,
  parseTypeText: Names.parseTypeText,
  resolveType: Names.resolveType,
  formatType: Names.formatType,
  typeCatalog: Types.typeCatalog,
  arithmetic: Operators.arithmetic,
  negate: Operators.negate,
};

export const typeName = (type: TypeOid): string => T.typeDisplayName(type);

export function isNumericType(type: TypeOid): boolean {
  return type === Oid.int2 || type === Oid.int4 || type === Oid.int8 || type === Oid.numeric || type === Oid.float4 || type === Oid.float8;
}

/** '{a,b,"c d",NULL}' as an array of `element` values (one dimension). */
function parseArrayText(text: string, element: TypeOid): DatumArray {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) throw new SqlError('22P02', `malformed array literal: "${text}"`, { detail: 'Array value must start with "{" or dimension information.' });
  const body = trimmed.slice(1, -1);
  const out: DatumArray = [];
  if (body.trim() === '') return out;
  let index = 0;
  while (index <= body.length) {
    let item = '';
    let quoted = false;
    while (index < body.length && /\s/.test(body[index]!)) index++;
    if (body[index] === '"') {
      quoted = true;
      index++;
      while (index < body.length && body[index] !== '"') {
        if (body[index] === '\\') index++;
        item += body[index++] ?? '';
      }
      index++;
    }
    while (index < body.length && body[index] !== ',') item += body[index++]!;
    if (!quoted) item = item.trim();
    out.push(!quoted && item.toUpperCase() === 'NULL' ? null : textIn(element, item, -1));
    index++;
  }
  return out;
}

/** A string literal read as a value of `type` (textIn). */
export function literalValue(text: string, type: TypeOid, typmod: number): Datum {
  return textIn(type, text, typmod);
}

export function textIn(type: TypeOid, text: string, typmod: number): Datum {
  const element = arrayElement(type);
  if (element !== undefined) return parseArrayText(text, element);
  return T.textIn(type, text, typmod) as Datum;
}

export function textOut(type: TypeOid, value: Datum): string {
  if (Array.isArray(value)) return arrayText(arrayElement(type) ?? Oid.text, value);
  return T.textOut(type, value as never);
}

export function binaryIn(type: TypeOid, bytes: Uint8Array): Datum {
  return T.binaryIn(type, bytes) as Datum;
}

export function binaryOut(type: TypeOid, value: Datum): Uint8Array {
  if (Array.isArray(value)) throw new SqlError('0A000', 'binary output of arrays is not supported yet');
  return T.binaryOut(type, value as never);
}

export function typeSize(type: TypeOid): number {
  return T.typeLength(type);
}

export function numericLiteral(text: string): Numeric {
  return Numeric.parse(text);
}

export function numericFrom(value: number): Numeric {
  return Numeric.fromNumber(value);
}

export function numericToFloat(value: Datum): number {
  return value instanceof Numeric ? value.toNumber() : Number(value);
}

export function castValue(value: Datum, from: TypeOid, to: TypeOid, typmod: number, explicit: boolean): Datum {
  if (value === null) return null;
  const toElement = arrayElement(to);
  if (Array.isArray(value)) {
    if (to === Oid.text || to === Oid.varchar) return textOut(from, value);
    if (toElement === undefined) throw new SqlError('42846', `cannot cast type ${Names.typeDisplayName(from)} to ${Names.typeDisplayName(to)}`);
    const fromElement = arrayElement(from) ?? Oid.text;
    return value.map((item) => castValue(item, fromElement, toElement, -1, explicit));
  }
  if (toElement !== undefined) {
    if (typeof value !== 'string') throw new SqlError('42846', `cannot cast type ${Names.typeDisplayName(from)} to ${Names.typeDisplayName(to)}`);
    return parseArrayText(value, toElement);
  }
  return T.cast(value as never, from, to, typmod, explicit) as Datum;
}

/** Whether an assignment (INSERT/UPDATE) may convert `from` to `to` (PostgreSQL's assignment casts). */
export function assignmentCast(from: TypeOid, to: TypeOid): boolean {
  return T.assignmentCastable(from, to);
}

export function compareValues(type: TypeOid, a: Datum, b: Datum): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    const element = arrayElement(type) ?? Oid.text;
    for (let index = 0; index < Math.min(a.length, b.length); index++) {
      const x = a[index]!;
      const y = b[index]!;
      if (x === null || y === null) {
        if (x !== y) return x === null ? 1 : -1;
        continue;
      }
      const order = compareValues(element, x, y);
      if (order !== 0) return order;
    }
    return a.length - b.length;
  }
  return T.compare(type, a as never, b as never);
}

export function arithmetic(op: string, type: TypeOid, a: Datum, b: Datum): Datum {
  return T.arithmetic(op as never, type, a as never, b as never) as Datum;
}

/** x ^ y: float8 (pow), or numeric (exact for integral exponents, else through float8 with 16 digits). */
export function power(type: TypeOid, base: Datum, exponent: Datum): Datum {
  if (type === Oid.float8) {
    const x = base as number;
    const y = exponent as number;
    if (x === 0 && y < 0) throw new SqlError('2201F', 'zero raised to a negative power is undefined');
    if (x < 0 && !Number.isInteger(y)) throw new SqlError('2201F', 'a negative number raised to a non-integer power yields a complex result');
    return x ** y;
  }
  const x = base as Numeric;
  const y = exponent as Numeric;
  if (x.sign() === 0 && y.sign() < 0) throw new SqlError('2201F', 'zero raised to a negative power is undefined');
  const integral = y.trunc(0).compare(y) === 0 && Math.abs(y.toNumber()) <= 1000;
  if (x.sign() < 0 && !integral) throw new SqlError('2201F', 'a negative number raised to a non-integer power yields a complex result');
  const estimate = x.sign() === 0 ? 0 : y.toNumber() * Math.log10(Math.abs(x.toNumber()));
  // PostgreSQL's result scale: 16 significant digits, at least the inputs' scales.
  const scale = Math.min(1000, Math.max(16 - Math.floor(estimate), x.scale, y.scale, 0));
  if (integral && y.sign() >= 0) {
    let result = Numeric.fromInteger(1);
    for (let step = 0; step < y.toNumber(); step++) result = result.mul(x);
    return result.round(scale);
  }
  const value = x.toNumber() ** y.toNumber();
  if (!Number.isFinite(value)) throw new SqlError('2201F', 'invalid argument for power function');
  return Numeric.fromNumber(value, 17).round(scale);
}

export function negate(type: TypeOid, value: Datum): Datum {
  return T.negate(type, value as never) as Datum;
}

export function roundValue(type: TypeOid, value: Datum, scale: number, truncate: boolean): Datum {
  if (type === Oid.float8) {
    const x = value as number;
    if (truncate) return Math.trunc(x);
    // PostgreSQL rounds float8 half to even (rint).
    const floor = Math.floor(x);
    const diff = x - floor;
    if (diff > 0.5) return floor + 1;
    if (diff < 0.5) return floor;
    return floor % 2 === 0 ? floor : floor + 1;
  }
  const numeric = value as Numeric;
  return truncate ? numeric.trunc(scale) : numeric.round(scale);
}

/** A string that is equal for equal values (hash joins, DISTINCT, GROUP BY). */
export function hashKey(type: TypeOid, value: Datum): string {
  if (Array.isArray(value)) return `a[${value.map((item) => (item === null ? 'N' : hashKey(arrayElement(type) ?? Oid.text, item))).join(',')}]`;
  if (value instanceof Numeric) return `n${value.normalizedKey()}`;
  if (value instanceof Uint8Array) return `x${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'number') {
    if (type === Oid.float4 || type === Oid.float8) return Number.isNaN(value) ? 'fNaN' : `f${value === 0 ? 0 : value}`;
    return `i${value}`;
  }
  if (typeof value === 'bigint') return `i${value}`;
  if (typeof value === 'string' && type === Oid.bpchar) return `s${value.replace(/ +$/, '')}`;
  return `s${String(value)}`;
}

/** The engine form of a value (what its codec stores). */
export function toStorage(type: TypeOid, value: Datum): Value {
  if (value === null) return null;
  if (value instanceof Numeric) return value.toString();
  if (type === Oid.int8 && typeof value === 'number') return BigInt(value);
  return value as Value;
}

export function fromStorage(type: TypeOid, value: Value): Datum {
  if (value === null) return null;
  switch (type) {
    case Oid.numeric:
      return Numeric.parse(String(value));
    case Oid.int8:
      return typeof value === 'bigint' ? value : BigInt(value as number);
    case Oid.int2:
    case Oid.int4:
    case Oid.oid:
    case Oid.regclass:
    case Oid.date:
      return typeof value === 'bigint' ? Number(value) : value;
    case Oid.timestamp:
    case Oid.timestamptz:
      return typeof value === 'number' ? BigInt(value) : value;
    default:
      return value;
  }
}

/** A column's stored type text (format_type form) to its OID and typmod. */
const COLUMN_TYPES = new Map<string, { type: TypeOid; typmod: number }>();

export function columnType(text: string): { type: TypeOid; typmod: number } {
  // Catalog type texts repeat on every statement: parse each once.
  let resolved = COLUMN_TYPES.get(text);
  if (resolved === undefined) {
    const parsed = T.parseTypeText(text);
    resolved = { type: parsed.type, typmod: parsed.typmod };
    if (COLUMN_TYPES.size < 10_000) COLUMN_TYPES.set(text, resolved);
  }
  return resolved;
}

/** A TypeName parse-tree node to its OID and typmod (42704 for an unknown type). */
export function resolveTypeName(node: Node): { type: TypeOid; typmod: number } {
  const names = (node.names as Node[]).map((part) => part.String.sval as string);
  const name = names[names.length - 1]!;
  const modifiers = ((node.typmods ?? []) as Node[]).map((mod) => {
    const value = mod.A_Const?.ival?.ival;
    if (value === undefined && mod.A_Const?.ival === undefined) throw new SqlError('22023', 'type modifiers must be simple constants');
    return (value ?? 0) as number;
  });
  const resolved = T.resolveType(name, modifiers);
  if (node.arrayBounds !== undefined) return { type: arrayOf(resolved.type), typmod: -1 };
  return resolved;
}

export function formatType(type: TypeOid, typmod: number): string {
  return T.formatType(type, typmod);
}

/** Rows for pg_type. */
export function typeCatalog(): Array<{ oid: number; name: string; length: number; category: string; element: number; array: number }> {
  return T.typeCatalog();
}
