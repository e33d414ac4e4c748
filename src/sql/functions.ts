// Built-in scalar functions and aggregates. A scalar function binds to a closure over its
// compiled arguments; an aggregate is a state machine (init, step, final) run by the
// executor's Aggregate operator.

import { SqlError } from '../pgwire/session.js';
import { catalogFunction } from './catalog-functions.js';
import { Oid, type TypeOid } from './oid.js';
import { coerce, commonType, lift, strict, numericRank, type Compiled } from './expr.js';
import { arithmetic, arrayElement, arrayOf, castValue, compareValues, numericFrom, numericToFloat, roundValue, textOut, typeName, type Datum } from './typesys.js';

export const SERVER_VERSION = '15.8';
export const VERSION_STRING = `PostgreSQL ${SERVER_VERSION} (Boreal 0.1.0) on x86_64-pc-linux-gnu, compiled by TypeScript, 64-bit`;

const constant = (type: TypeOid, value: Datum): Compiled => ({ type, typmod: -1, fn: () => value, async: false, constant: { value } });

function noSuchFunction(name: string, args: Compiled[]): SqlError {
  return new SqlError('42883', `function ${name}(${args.map((arg) => typeName(arg.type)).join(', ')}) does not exist`, {
    hint: 'No function matches the given name and argument types. You might need to add explicit type casts.',
  });
}

function arity(name: string, args: Compiled[], min: number, max = min): void {
  if (args.length < min || args.length > max) throw noSuchFunction(name, args);
}

const textual = (arg: Compiled): Compiled => coerce(arg, Oid.text);

/** The longest text value (PostgreSQL's 1 GB varlena limit, in characters here). */
const TEXT_LENGTH_MAX = 1024 * 1024 * 1024 - 1;

/** lpad/rpad: to `length` characters, filling on the left or right; longer input is cut on the right. */
function pad(x: string, length: number, fill: string, left: boolean): string {
  if (length > TEXT_LENGTH_MAX) throw new SqlError('54000', 'requested length too large');
  const points = [...x];
  if (length <= 0) return '';
  if (points.length >= length || fill === '') return points.slice(0, length).join('');
  const fillPoints = [...fill];
  const need = length - points.length;
  const filler = Array.from({ length: need }, (_, index) => fillPoints[index % fillPoints.length]).join('');
  return left ? filler + points.join('') : points.join('') + filler;
}

/** A scalar function call, bound (42883 if unknown). */
export function callFunction(name: string, args: Compiled[], schema: string | undefined): Compiled {
  void schema;
  switch (name) {
    case 'abs': {
      arity(name, args, 1);
      const type = args[0]!.type === Oid.unknown ? Oid.float8 : args[0]!.type;
      if (numericRank(type) < 0) throw noSuchFunction(name, args);
      const zero = castValue(0, Oid.int4, type, -1, false);
      return strict([coerce(args[0]!, type)], type, (x) => (compareValues(type, x, zero) < 0 ? arithmetic('-', type, zero, x) : x));
    }
    case 'lower':
    case 'upper': {
      arity(name, args, 1);
      return strict([textual(args[0]!)], Oid.text, (x: string) => (name === 'lower' ? x.toLowerCase() : x.toUpperCase()));
    }
    case 'length':
    case 'char_length':
    case 'character_length': {
      arity(name, args, 1);
      if (args[0]!.type === Oid.bytea) return strict([args[0]!], Oid.int4, (x: Uint8Array) => x.length);
      return strict([textual(args[0]!)], Oid.int4, (x: string) => [...x].length);
    }
    case 'octet_length':
      arity(name, args, 1);
      return strict([args[0]!.type === Oid.bytea ? args[0]! : textual(args[0]!)], Oid.int4, (x: string | Uint8Array) => (typeof x === 'string' ? Buffer.byteLength(x) : x.length));
    case 'substr':
    case 'substring': {
      arity(name, args, 2, 3);
      const rest = args.slice(1).map((arg) => coerce(arg, Oid.int4));
      return strict([textual(args[0]!), ...rest], Oid.text, (x: string, start: number, count?: number) => substring(x, start, count));
    }
    case 'concat':
      return lift(args.map(textual), Oid.text, (...values) => values.filter((value) => value !== null).join(''));
    case 'repeat':
      arity(name, args, 2);
      return strict([textual(args[0]!), coerce(args[1]!, Oid.int4)], Oid.text, (x: string, count: number) => {
        if (count <= 0 || x === '') return '';
        if (x.length * count > TEXT_LENGTH_MAX) throw new SqlError('54000', 'requested length too large');
        return x.repeat(count);
      });
    case 'lpad':
    case 'rpad':
      arity(name, args, 2, 3);
      return strict([textual(args[0]!), coerce(args[1]!, Oid.int4), ...args.slice(2).map(textual)], Oid.text, (x: string, length: number, fill = ' ') => pad(x, length, fill, name === 'lpad'));
    case 'left':
    case 'right':
      arity(name, args, 2);
      return strict([textual(args[0]!), coerce(args[1]!, Oid.int4)], Oid.text, (x: string, count: number) => {
        const points = [...x];
        const keep = count >= 0 ? Math.min(count, points.length) : Math.max(0, points.length + count);
        return (name === 'left' ? points.slice(0, keep) : points.slice(points.length - keep)).join('');
      });
    case 'reverse':
      arity(name, args, 1);
      return strict([textual(args[0]!)], Oid.text, (x: string) => [...x].reverse().join(''));
    case 'strpos':
      arity(name, args, 2);
      return strict(args.map(textual), Oid.int4, (x: string, sub: string) => {
        const at = x.indexOf(sub);
        return at < 0 ? 0 : [...x.slice(0, at)].length + 1;
      });
    case 'replace':
      arity(name, args, 3);
      return strict(args.map(textual), Oid.text, (x: string, from: string, to: string) => (from === '' ? x : x.split(from).join(to)));
    case 'trim':
    case 'btrim':
    case 'ltrim':
    case 'rtrim': {
      arity(name, args, 1, 2);
      const mode = name === 'ltrim' ? 'l' : name === 'rtrim' ? 'r' : 'b';
      return strict(args.map(textual), Oid.text, (x: string, chars = ' ') => trim(x, chars, mode));
    }
    case 'round':
    case 'trunc': {
      arity(name, args, 1, 2);
      const type = args[0]!.type === Oid.float4 || args[0]!.type === Oid.float8 ? Oid.float8 : Oid.numeric;
      if (args.length === 2 && type === Oid.float8) throw noSuchFunction(name, args);
      const rest = args.slice(1).map((arg) => coerce(arg, Oid.int4));
      return strict([coerce(args[0]!, type), ...rest], type, (x: Datum, scale = 0) => roundValue(type, x, scale, name === 'trunc'));
    }
    case 'floor':
    case 'ceil':
    case 'ceiling': {
      arity(name, args, 1);
      const type = args[0]!.type === Oid.float4 || args[0]!.type === Oid.float8 ? Oid.float8 : Oid.numeric;
      const up = name !== 'floor';
      return strict([coerce(args[0]!, type)], type, (x: Datum) => {
        if (type === Oid.float8) return up ? Math.ceil(x as number) : Math.floor(x as number);
        const truncated = roundValue(type, x, 0, true);
        const order = compareValues(type, x, truncated);
        if (order === 0 || (up ? order < 0 : order > 0)) return truncated;
        return arithmetic(up ? '+' : '-', type, truncated, numericFrom(1));
      });
    }
    case 'sqrt':
    case 'exp':
    case 'ln': {
      arity(name, args, 1);
      const fn = name === 'sqrt' ? Math.sqrt : name === 'exp' ? Math.exp : Math.log;
      return strict([coerce(args[0]!, Oid.float8)], Oid.float8, (x: number) => {
        if (name === 'sqrt' && x < 0) throw new SqlError('2201F', 'cannot take square root of a negative number');
        if (name === 'ln' && x <= 0) throw new SqlError('2201E', x === 0 ? 'cannot take logarithm of zero' : 'cannot take logarithm of a negative number');
        return fn(x);
      });
    }
    case 'power':
    case 'pow':
      arity(name, args, 2);
      return strict([coerce(args[0]!, Oid.float8), coerce(args[1]!, Oid.float8)], Oid.float8, (x: number, y: number) => x ** y);
    case 'mod': {
      arity(name, args, 2);
      const type = commonType([args[0]!.type, args[1]!.type], 'mod');
      return strict([coerce(args[0]!, type), coerce(args[1]!, type)], type, (x, y) => arithmetic('%', type, x, y));
    }
    case 'random':
      arity(name, args, 0);
      return { type: Oid.float8, typmod: -1, fn: () => Math.random(), async: false };
    case 'version':
      arity(name, args, 0);
      return constant(Oid.text, VERSION_STRING);
    case 'current_database':
    case 'current_catalog':
      return constant(Oid.name, 'postgres');
    case 'current_schema':
      return constant(Oid.name, 'public');
    case 'current_user':
    case 'session_user':
      return constant(Oid.name, 'postgres');
    case 'now':
    case 'transaction_timestamp':
    case 'statement_timestamp':
    case 'clock_timestamp':
      arity(name, args, 0);
      return { type: Oid.timestamptz, typmod: -1, fn: (_row, env) => env.now, async: false };
    case 'pg_backend_pid':
      return { type: Oid.int4, typmod: -1, fn: (_row, env) => env.processId ?? process.pid, async: false };
    case 'current_schemas':
      arity(name, args, 1);
      return lift([coerce(args[0]!, Oid.bool)], arrayOf(Oid.name), (implicit) => (implicit === true ? ['pg_catalog', 'public'] : ['public']));
    case 'array_position': {
      arity(name, args, 2, 3);
      const element = arrayElement(args[0]!.type);
      if (element === undefined) throw noSuchFunction(name, args);
      return lift([args[0]!, coerce(args[1]!, element)], Oid.int4, (list, wanted) => {
        if (list === null) return null;
        const index = (list as Datum[]).findIndex((item) => (item === null ? wanted === null : wanted !== null && compareValues(element, item, wanted) === 0));
        return index < 0 ? null : index + 1;
      });
    }
    case 'array_length':
      arity(name, args, 2);
      if (arrayElement(args[0]!.type) === undefined) throw noSuchFunction(name, args);
      return strict([args[0]!, coerce(args[1]!, Oid.int4)], Oid.int4, (list: Datum[], dimension: number) => (dimension === 1 && list.length > 0 ? list.length : null));
    case 'cardinality':
      arity(name, args, 1);
      if (arrayElement(args[0]!.type) === undefined) throw noSuchFunction(name, args);
      return strict([args[0]!], Oid.int4, (list: Datum[]) => list.length);
    case 'pg_get_userbyid':
      arity(name, args, 1);
      return strict([coerce(args[0]!, Oid.oid)], Oid.name, (id: number) => (id === 10 ? 'postgres' : `unknown (OID=${id})`));
    case 'pg_table_is_visible':
      arity(name, args, 1);
      return strict([coerce(args[0]!, Oid.oid)], Oid.bool, () => true);
    case 'pg_encoding_to_char':
      arity(name, args, 1);
      return strict([coerce(args[0]!, Oid.int4)], Oid.name, (encoding: number) => (encoding === 6 ? 'UTF8' : encoding === 0 ? 'SQL_ASCII' : ''));
    case 'array_to_string': {
      arity(name, args, 2, 3);
      const element = arrayElement(args[0]!.type);
      if (element === undefined) throw noSuchFunction(name, args);
      const rest = args.slice(1).map((arg) => coerce(arg, Oid.text));
      return lift([args[0]!, ...rest], Oid.text, (list, separator, nullText) => {
        if (list === null || separator === null) return null;
        const parts: string[] = [];
        for (const item of list as Datum[]) {
          if (item === null) {
            if (nullText !== undefined && nullText !== null) parts.push(nullText as string);
          } else parts.push(textOut(element, item));
        }
        return parts.join(separator as string);
      });
    }
    case 'pg_sleep':
      throw new SqlError('0A000', 'pg_sleep is not supported yet');
    case 'array_upper':
    case 'array_lower': {
      arity(name, args, 2);
      if (arrayElement(args[0]!.type) === undefined) throw noSuchFunction(name, args);
      return strict([args[0]!, coerce(args[1]!, Oid.int4)], Oid.int4, (list: Datum[], dimension: number) => (dimension === 1 && list.length > 0 ? (name === 'array_upper' ? list.length : 1) : null));
    }
    default: {
      const described = catalogFunction(name, args);
      if (described !== undefined) return described;
      throw noSuchFunction(name, args);
    }
  }
}

function substring(text: string, start: number, count?: number): string {
  const chars = [...text];
  if (count !== undefined && count < 0) throw new SqlError('22011', 'negative substring length not allowed');
  const from = start - 1;
  const to = count === undefined ? chars.length : from + count;
  return chars.slice(Math.max(0, from), Math.max(0, to)).join('');
}

function trim(text: string, chars: string, mode: 'l' | 'r' | 'b'): string {
  const set = new Set([...chars]);
  const list = [...text];
  let start = 0;
  let end = list.length;
  if (mode !== 'r') while (start < end && set.has(list[start]!)) start++;
  if (mode !== 'l') while (end > start && set.has(list[end - 1]!)) end--;
  return list.slice(start, end).join('');
}

// ---------------------------------------------------------------- aggregates

const AGGREGATES = new Set(['count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'string_agg', 'total', 'group_concat']);

export function isAggregateName(name: string): boolean {
  return AGGREGATES.has(name);
}

/** One aggregate call's state machine. */
export interface AggregateSpec {
  type: TypeOid;
  init: () => unknown;
  /** Folds one input (already evaluated arguments); returns the new state. NULL inputs are skipped before (strict). */
  step: (state: unknown, values: Datum[]) => unknown;
  final: (state: unknown) => Datum;
  /** Whether NULL arguments are passed to step (count(*) has none). */
  strict: boolean;
}

/** Binds an aggregate by name to its argument types; the arguments are coerced by the caller to `argTypes`. */
export function aggregate(name: string, args: Compiled[], star: boolean): { spec: AggregateSpec; argTypes: TypeOid[] } {
  if (name === 'count') {
    if (star || args.length === 0) return { spec: { type: Oid.int8, init: () => 0n, step: (state) => (state as bigint) + 1n, final: (state) => state as bigint, strict: true }, argTypes: [] };
    arity(name, args, 1);
    return { spec: { type: Oid.int8, init: () => 0n, step: (state) => (state as bigint) + 1n, final: (state) => state as bigint, strict: true }, argTypes: [args[0]!.type === Oid.unknown ? Oid.text : args[0]!.type] };
  }
  arity(name, args, name === 'string_agg' ? 2 : 1);
  const input = args[0]!.type === Oid.unknown ? Oid.text : args[0]!.type;
  switch (name) {
    case 'sum': {
      const rank = numericRank(input);
      if (rank < 0) throw noSuchFunction(name, args);
      // int2/int4 sum to int8, int8 and numeric to numeric, floats to themselves (PostgreSQL's rules).
      const type = rank <= 1 ? Oid.int8 : rank <= 3 ? Oid.numeric : input;
      return {
        spec: { type, init: () => null, step: (state, [value]) => (state === null ? castValue(value!, input, type, -1, false) : arithmetic('+', type, state as Datum, castValue(value!, input, type, -1, false))), final: (state) => state as Datum, strict: true },
        argTypes: [input],
      };
    }
    case 'total': {
      return { spec: { type: Oid.float8, init: () => 0, step: (state, [value]) => (state as number) + numericToFloat(castValue(value!, input, Oid.float8, -1, false)), final: (state) => state as number, strict: true }, argTypes: [input] };
    }
    case 'avg': {
      const rank = numericRank(input);
      if (rank < 0) throw noSuchFunction(name, args);
      const type = rank <= 3 ? Oid.numeric : Oid.float8;
      return {
        spec: {
          type,
          init: () => ({ sum: null as Datum, count: 0 }),
          step: (state, [value]) => {
            const s = state as { sum: Datum; count: number };
            const converted = castValue(value!, input, type, -1, false);
            s.sum = s.sum === null ? converted : arithmetic('+', type, s.sum, converted);
            s.count++;
            return s;
          },
          final: (state) => {
            const s = state as { sum: Datum; count: number };
            return s.count === 0 ? null : arithmetic('/', type, s.sum, castValue(s.count, Oid.int4, type, -1, false));
          },
          strict: true,
        },
        argTypes: [input],
      };
    }
    case 'min':
    case 'max': {
      const sign = name === 'min' ? -1 : 1;
      return {
        spec: { type: input, init: () => null, step: (state, [value]) => (state === null || Math.sign(compareValues(input, value!, state as Datum)) === sign ? value : state), final: (state) => state as Datum, strict: true },
        argTypes: [input],
      };
    }
    case 'bool_and':
    case 'every':
    case 'bool_or': {
      const isAnd = name !== 'bool_or';
      return { spec: { type: Oid.bool, init: () => null, step: (state, [value]) => (state === null ? value : isAnd ? (state as boolean) && (value as boolean) : (state as boolean) || (value as boolean)), final: (state) => state as Datum, strict: true }, argTypes: [Oid.bool] };
    }
    case 'string_agg':
    case 'group_concat': {
      return {
        spec: {
          type: Oid.text,
          init: () => null,
          step: (state, [value, separator]) => (value === null ? state : state === null ? (value as string) : `${state as string}${(separator as string | null) ?? ''}${value as string}`),
          final: (state) => state as Datum,
          strict: false,
        },
        argTypes: [Oid.text, Oid.text],
      };
    }
    default:
      throw noSuchFunction(name, args);
  }
}
