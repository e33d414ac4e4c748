// Expressions: a parse-tree node is bound against a scope (resolving columns, types,
// operators and functions) and compiled, in the same pass, into a JavaScript closure.
//
// A closure takes the current row and the environment (parameters, outer rows for
// correlated subqueries). Expressions are synchronous unless they contain a subquery that
// must run per row; those compile to closures that return promises (`async: true`), and
// the operators that evaluate them await only then, so the common case pays nothing.
//
// Invariants:
//  E1. NULL propagates through strict operators and functions; AND/OR follow three-valued
//      logic (false AND NULL = false, true OR NULL = true).
//  E2. Every compiled expression has a static type; values at run time are that type's
//      representation (src/sql/types/README.md), so operators need no run-time dispatch.
//  E3. An untyped literal or parameter takes the type its context asks for (the other
//      operand, the target column), as PostgreSQL's unknown-type resolution does.

import { regCast, type CatalogLookup } from './catalog-functions.js';
import { SqlError } from '../pgwire/session.js';
import { Oid, type TypeOid } from './oid.js';
import { arithmetic, arrayElement, arrayOf, castValue, compareValues, isNumericType, literalValue, negate, numericLiteral, power, resolveTypeName, typeName, type Datum } from './typesys.js';
import { callFunction, isAggregateName } from './functions.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- parse-tree nodes are walked structurally */
export type Node = any;

export interface Env {
  params: Datum[];
  /** Rows of enclosing queries, innermost last (for correlated references). */
  outer: Datum[][];
  /** Runs a subquery plan to completion or to its first rows; provided by the executor. */
  runSubquery: (plan: unknown, env: Env, limit: number) => Promise<Datum[][]>;
  now: bigint;
  /** The session's backend process id (pg_backend_pid()). */
  processId?: number;
  /** nextval() of a sequence, in the statement's transaction. */
  nextval?: (name: string, schema: string | undefined) => Promise<bigint>;
  /** Catalog descriptions (pg_get_indexdef and friends), in the statement's transaction. */
  catalog?: CatalogLookup;
}

export type Fn = (row: Datum[], env: Env) => any;

export interface Compiled {
  type: TypeOid;
  typmod: number;
  fn: Fn;
  /** fn returns a promise (the expression holds a per-row subquery). */
  async: boolean;
  /** A constant (no column, parameter or volatile call): its value, for folding and index bounds. */
  constant?: { value: Datum };
  /** A parameter reference: its number (for index bounds resolved at execution). */
  param?: number;
  /** A plain column of the current scope: its position. */
  column?: number;
}

export interface ScopeColumn {
  /** The table alias (or name) the column belongs to; undefined for computed columns. */
  qualifier: string | undefined;
  name: string;
  type: TypeOid;
  typmod: number;
  index: number;
  /** Not visible to * and to unqualified names (a hidden row key, a sort key). */
  hidden?: boolean;
}

export class Scope {
  /** References into this scope from nested queries (a subquery is correlated if it adds to them). */
  outerHits = 0;

  constructor(
    readonly columns: ScopeColumn[],
    readonly parent: Scope | undefined = undefined,
  ) {}

  /** outerHits summed over this scope and its ancestors. */
  hitsUpward(): number {
    let total = 0;
    for (let current: Scope | undefined = this; current !== undefined; current = current.parent) total += current.outerHits;
    return total;
  }

  get width(): number {
    return this.columns.length;
  }
}

/** Parameter types of a statement, filled in as they are first used (E3). */
export class Params {
  constructor(readonly types: TypeOid[]) {}

  typeOf(number: number, hint: TypeOid | undefined): TypeOid {
    const at = number - 1;
    if (at < 0 || at >= 65535) throw new SqlError('42P02', `there is no parameter $${number}`);
    while (this.types.length <= at) this.types.push(0);
    if (this.types[at] === 0 || this.types[at] === Oid.unknown) this.types[at] = hint !== undefined && hint !== Oid.unknown ? hint : Oid.text;
    return this.types[at]!;
  }
}

/** What binding needs besides the scope. */
export interface BindContext {
  params: Params;
  /** Binds a subquery (the planner): returns a plan and its output columns. */
  subquery: (node: Node, outer: Scope) => { plan: unknown; columns: Array<{ type: TypeOid; typmod: number }>; correlated: boolean };
  /** During aggregate binding: a hook that sees each node first (group keys, aggregate calls). */
  intercept?: (node: Node, scope: Scope) => Compiled | undefined;
  /** Where aggregate calls are not allowed, the clause name for the error. */
  noAggregates?: string;
}

const constant = (type: TypeOid, value: Datum, typmod = -1): Compiled => ({ type, typmod, fn: () => value, async: false, constant: { value } });

function locationOf(node: Node): number | undefined {
  const inner = node !== null && typeof node === 'object' ? (Object.values(node)[0] as Node) : undefined;
  return typeof inner?.location === 'number' ? inner.location : undefined;
}

export function positioned(error: SqlError, node: Node): SqlError {
  const location = locationOf(node);
  if (location !== undefined && error.extra.position === undefined) return new SqlError(error.code, error.message, { ...error.extra, position: location + 1 });
  return error;
}

/** Combines argument closures with a pure function; async only if an argument is. */
export function lift(args: Compiled[], type: TypeOid, op: (...values: Datum[]) => Datum, typmod = -1): Compiled {
  const async = args.some((arg) => arg.async);
  const folded = args.every((arg) => arg.constant !== undefined);
  let fn: Fn;
  if (async) {
    fn = async (row, env) => {
      const values: Datum[] = [];
      for (const arg of args) values.push(await arg.fn(row, env));
      return op(...values);
    };
  } else if (args.length === 1) {
    const [a] = args as [Compiled];
    fn = (row, env) => op(a.fn(row, env));
  } else if (args.length === 2) {
    const [a, b] = args as [Compiled, Compiled];
    fn = (row, env) => op(a.fn(row, env), b.fn(row, env));
  } else {
    fn = (row, env) => op(...args.map((arg) => arg.fn(row, env) as Datum));
  }
  if (folded) {
    const value = fn([], undefined as unknown as Env) as Datum;
    return constant(type, value, typmod);
  }
  return { type, typmod, fn, async };
}

/** Same as lift, for operators that return NULL when any argument is NULL (E1). */
export function strict(args: Compiled[], type: TypeOid, op: (...values: any[]) => Datum, typmod = -1): Compiled {
  return lift(args, type, (...values) => (values.some((value) => value === null) ? null : op(...values)), typmod);
}

// ---------------------------------------------------------------- coercion

/** The cast of an expression to a type (implicit or explicit); a no-op when types agree. */
export function coerce(expr: Compiled, to: TypeOid, typmod = -1, explicit = false): Compiled {
  if (expr.type === to && (typmod < 0 || typmod === expr.typmod)) return expr;
  const from = expr.type;
  return lift([expr], to, (value) => (value === null ? null : castValue(value, from, to, typmod, explicit)), typmod);
}

/** Whether a value of `from` may be implicitly converted to `to` (PostgreSQL's implicit casts, simplified). */
export function implicitlyCastable(from: TypeOid, to: TypeOid): boolean {
  if (from === to || from === Oid.unknown) return true;
  const rank = numericRank(from);
  const target = numericRank(to);
  if (rank >= 0 && target >= 0) return rank <= target;
  const stringy = (type: TypeOid): boolean => type === Oid.text || type === Oid.varchar || type === Oid.bpchar || type === Oid.name;
  if (stringy(from) && stringy(to)) return true;
  if (from === Oid.date && (to === Oid.timestamp || to === Oid.timestamptz)) return true;
  if (from === Oid.timestamp && to === Oid.timestamptz) return true;
  if ((from === Oid.int4 || from === Oid.int8 || from === Oid.int2) && (to === Oid.oid || to === Oid.regclass)) return true;
  return false;
}

/** int2 < int4 < int8 < numeric < float4 < float8; -1 for other types. */
export function numericRank(type: TypeOid): number {
  switch (type) {
    case Oid.int2:
      return 0;
    case Oid.int4:
      return 1;
    case Oid.int8:
      return 2;
    case Oid.numeric:
      return 3;
    case Oid.float4:
      return 4;
    case Oid.float8:
      return 5;
    default:
      return -1;
  }
}

/** The common type of several expressions (UNION, CASE, COALESCE, IN lists): PostgreSQL's rule, simplified. */
export function commonType(types: TypeOid[], context: string): TypeOid {
  const known = types.filter((type) => type !== Oid.unknown);
  if (known.length === 0) return Oid.text;
  let best = known[0]!;
  for (const type of known.slice(1)) {
    if (type === best) continue;
    if (implicitlyCastable(best, type)) best = type;
    else if (!implicitlyCastable(type, best)) throw new SqlError('42804', `${context} types ${typeName(best)} and ${typeName(type)} cannot be matched`);
  }
  // Strings of different kinds resolve to text, as PostgreSQL's preferred string type.
  if (known.some((type) => type !== best && (type === Oid.text || type === Oid.varchar || type === Oid.bpchar))) return Oid.text;
  return best;
}

// ---------------------------------------------------------------- binding

/** Binds and compiles an expression. `hint`: the type the context expects (E3). */
export function compileExpr(node: Node, scope: Scope, ctx: BindContext, hint?: TypeOid): Compiled {
  if (ctx.intercept !== undefined) {
    const intercepted = ctx.intercept(node, scope);
    if (intercepted !== undefined) return intercepted;
  }
  try {
    return compileNode(node, scope, ctx, hint);
  } catch (error) {
    if (error instanceof SqlError) throw positioned(error, node);
    throw error;
  }
}

function compileNode(node: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  const [kind] = Object.keys(node) as [string];
  const body = node[kind];
  switch (kind) {
    case 'A_Const':
      return compileConstant(body, hint);
    case 'ColumnRef':
      return compileColumn(body, scope);
    case 'ParamRef': {
      const number = body.number as number;
      const type = ctx.params.typeOf(number, hint);
      return { type, typmod: -1, fn: (_row, env) => env.params[number - 1] ?? null, async: false, param: number };
    }
    case 'TypeCast':
      return compileCast(body, scope, ctx);
    case 'A_Expr':
      return compileAExpr(body, scope, ctx, hint);
    case 'BoolExpr':
      return compileBool(body, scope, ctx);
    case 'NullTest': {
      const arg = compileExpr(body.arg, scope, ctx);
      const isNull = body.nulltesttype === 'IS_NULL';
      return lift([arg], Oid.bool, (value) => (value === null) === isNull);
    }
    case 'BooleanTest':
      return compileBooleanTest(body, scope, ctx);
    case 'CaseExpr':
      return compileCase(body, scope, ctx, hint);
    case 'CoalesceExpr':
      return compileCoalesce(body, scope, ctx, hint);
    case 'MinMaxExpr':
      return compileMinMax(body, scope, ctx, hint);
    case 'FuncCall':
      return compileFuncCall(body, scope, ctx, hint);
    case 'SubLink':
      return compileSubLink(body, scope, ctx);
    case 'SQLValueFunction':
      return compileSqlValueFunction(body);
    case 'NamedArgExpr':
      throw new SqlError('0A000', 'named arguments are not supported');
    case 'A_ArrayExpr': {
      const elements = ((body.elements ?? []) as Node[]).map((element) => compileExpr(element, scope, ctx, hint !== undefined ? arrayElement(hint) : undefined));
      const element = commonType(elements.map((each) => each.type), 'ARRAY');
      return lift(elements.map((each) => coerce(each, element)), arrayOf(element), (...values) => values);
    }
    case 'A_Indirection':
      return compileSubscript(body, scope, ctx);
    case 'CollateClause':
      return compileExpr(body.arg, scope, ctx, hint);
    case 'RowExpr':
      throw new SqlError('0A000', 'row constructors are not supported yet');
    default:
      throw new SqlError('0A000', `expression ${kind} is not supported yet`);
  }
}

function compileConstant(body: Node, hint: TypeOid | undefined): Compiled {
  if (body.isnull) return constant(hint !== undefined && hint !== Oid.unknown ? hint : Oid.unknown, null);
  if (body.ival !== undefined) {
    const value = body.ival.ival ?? 0;
    return constant(Oid.int4, value);
  }
  if (body.fval !== undefined) {
    // A decimal literal is numeric; an integer too large for int4 is int8 or numeric.
    const text = body.fval.fval as string;
    if (/^-?\d+$/.test(text)) {
      const big = BigInt(text);
      if (big >= -(1n << 63n) && big < 1n << 63n) return constant(Oid.int8, big);
    }
    return constant(Oid.numeric, numericLiteral(text));
  }
  if (body.boolval !== undefined) return constant(Oid.bool, body.boolval.boolval ?? false);
  if (body.sval !== undefined) {
    const text = body.sval.sval ?? '';
    if (hint !== undefined && hint !== Oid.unknown) return constant(hint, literalValue(text, hint, -1));
    return constant(Oid.unknown, text);
  }
  if (body.bsval !== undefined) {
    // B'0101' / X'1F' bit strings: not supported yet.
    throw new SqlError('0A000', 'bit-string constants are not supported');
  }
  throw new SqlError('0A000', 'constant kind is not supported');
}

function compileColumn(body: Node, scope: Scope): Compiled {
  const fields = body.fields as Node[];
  if (fields.some((field) => field.A_Star !== undefined)) throw new SqlError('42601', '* is not allowed here');
  const names = fields.map((field) => field.String.sval as string);
  const name = names[names.length - 1]!;
  const qualifier = names.length >= 2 ? names[names.length - 2] : undefined;
  let depth = 0;
  for (let current: Scope | undefined = scope; current !== undefined; current = current.parent, depth++) {
    const matches = current.columns.filter((column) => column.name === name && (qualifier === undefined ? !column.hidden : column.qualifier === qualifier));
    if (matches.length > 1) {
      const distinct = new Set(matches.map((column) => column.index));
      if (distinct.size > 1) throw new SqlError('42702', `column reference "${names.join('.')}" is ambiguous`);
    }
    const match = matches[0];
    if (match === undefined) continue;
    const index = match.index;
    if (depth === 0) return { type: match.type, typmod: match.typmod, fn: (row) => row[index] ?? null, async: false, column: index };
    const level = depth;
    current.outerHits++;
    return { type: match.type, typmod: match.typmod, fn: (_row, env) => env.outer[env.outer.length - level]![index] ?? null, async: false };
  }
  if (qualifier !== undefined) {
    let known = false;
    for (let current: Scope | undefined = scope; current !== undefined; current = current.parent) if (current.columns.some((column) => column.qualifier === qualifier)) known = true;
    if (!known) throw new SqlError('42P01', `missing FROM-clause entry for table "${qualifier}"`);
  }
  throw new SqlError('42703', qualifier === undefined ? `column "${name}" does not exist` : `column ${names.join('.')} does not exist`);
}

/** array[i] and array[lo:hi] on one-dimensional arrays (lower bound 1); NULL outside the bounds. */
function compileSubscript(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const array = compileExpr(body.arg, scope, ctx);
  const steps = body.indirection as Node[];
  if (steps.some((step) => step.A_Indices === undefined)) throw new SqlError('0A000', 'field selection and * on expressions are not supported yet');
  const element = arrayElement(array.type);
  if (element === undefined) throw new SqlError('42804', `cannot subscript type ${typeName(array.type)} because it does not support subscripting`);
  if (steps.length > 1) throw new SqlError('0A000', 'multidimensional subscripts are not supported yet');
  const indices = steps[0]!.A_Indices;
  const bound = (node: Node | undefined): Compiled | undefined => (node === undefined ? undefined : coerce(compileExpr(node, scope, ctx, Oid.int4), Oid.int4));
  if (!indices.is_slice) {
    return strict([array, bound(indices.uidx)!], element, (list: Datum[], at: number) => list[at - 1] ?? null);
  }
  const lower = bound(indices.lidx);
  const upper = bound(indices.uidx);
  const args = [array, ...(lower === undefined ? [] : [lower]), ...(upper === undefined ? [] : [upper])];
  return strict(args, array.type, (list: Datum[], ...rest: number[]) => {
    const from = lower === undefined ? 1 : rest[0]!;
    const to = upper === undefined ? list.length : rest[rest.length - 1]!;
    return list.slice(Math.max(from, 1) - 1, Math.max(Math.min(to, list.length), 0));
  });
}

function compileCast(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const names = (body.typeName?.names as Node[] | undefined)?.map((name) => name.String?.sval as string) ?? [];
  const last = names[names.length - 1];
  if ((last === 'regtype' || last === 'regnamespace') && body.typeName.arrayBounds === undefined) {
    const cast = regCast(last, compileExpr(body.arg, scope, ctx));
    if (cast !== undefined) return cast;
  }
  const { type, typmod } = resolveTypeName(body.typeName);
  const arg = compileExpr(body.arg, scope, ctx, type);
  if (arg.type === Oid.unknown && arg.constant !== undefined) {
    const text = arg.constant.value;
    return constant(type, text === null ? null : literalValue(text as string, type, typmod), typmod);
  }
  return coerce(arg, type, typmod, true);
}


const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);

/** Binds the two sides of a binary operator, giving an untyped side the other's type (E3). */
function bindPair(left: Node, right: Node, scope: Scope, ctx: BindContext, hint?: TypeOid): [Compiled, Compiled] {
  const leftUnknown = isUntyped(left);
  if (leftUnknown && !isUntyped(right)) {
    const b = compileExpr(right, scope, ctx, hint);
    const a = compileExpr(left, scope, ctx, b.type);
    return [a, b];
  }
  const a = compileExpr(left, scope, ctx, hint);
  const b = compileExpr(right, scope, ctx, a.type === Oid.unknown ? hint : a.type);
  if (a.type === Oid.unknown && b.type !== Oid.unknown) return [compileExpr(left, scope, ctx, b.type), b];
  return [a, b];
}

function isUntyped(node: Node): boolean {
  return (node?.A_Const !== undefined && (node.A_Const.sval !== undefined || node.A_Const.isnull)) || node?.ParamRef !== undefined;
}

export function compileComparison(op: string, a: Compiled, b: Compiled): Compiled {
  const type = comparisonType(a.type, b.type, op);
  const left = coerce(a, type);
  const right = coerce(b, type);
  const test = comparator(op);
  return strict([left, right], Oid.bool, (x, y) => test(compareValues(type, x, y)));
}

export function comparator(op: string): (order: number) => boolean {
  switch (op) {
    case '=':
      return (order) => order === 0;
    case '<>':
    case '!=':
      return (order) => order !== 0;
    case '<':
      return (order) => order < 0;
    case '<=':
      return (order) => order <= 0;
    case '>':
      return (order) => order > 0;
    case '>=':
      return (order) => order >= 0;
    default:
      throw new SqlError('42883', `operator does not exist: ${op}`);
  }
}

/** The type both sides of a comparison are converted to; 42883 if there is no such operator. */
export function comparisonType(a: TypeOid, b: TypeOid, op: string): TypeOid {
  if (a === b) return a === Oid.unknown ? Oid.text : a;
  if (a === Oid.unknown) return b;
  if (b === Oid.unknown) return a;
  if (implicitlyCastable(a, b)) return b;
  if (implicitlyCastable(b, a)) return a;
  throw new SqlError('42883', `operator does not exist: ${typeName(a)} ${op} ${typeName(b)}`, { hint: 'No operator matches the given name and argument types. You might need to add explicit type casts.' });
}

function arithmeticType(a: TypeOid, b: TypeOid, op: string): TypeOid {
  if (a === Oid.unknown && b === Oid.unknown) throw new SqlError('42725', `operator is not unique: unknown ${op} unknown`);
  const left = a === Oid.unknown ? b : a;
  const right = b === Oid.unknown ? a : b;
  const leftRank = numericRank(left);
  const rightRank = numericRank(right);
  if (leftRank >= 0 && rightRank >= 0) {
    // float4 with an integer or numeric operand computes in float8, as PostgreSQL's operators do.
    const rank = Math.max(leftRank, rightRank);
    if (rank === 4 && (leftRank !== 4 || rightRank !== 4)) return Oid.float8;
    return [Oid.int2, Oid.int4, Oid.int8, Oid.numeric, Oid.float4, Oid.float8][rank]!;
  }
  if ((left === Oid.date || left === Oid.timestamp || left === Oid.timestamptz) && numericRank(right) >= 0 && numericRank(right) <= 2 && (op === '+' || op === '-') && left === Oid.date) return Oid.date;
  throw new SqlError('42883', `operator does not exist: ${typeName(a)} ${op} ${typeName(b)}`, { hint: 'No operator matches the given name and argument types. You might need to add explicit type casts.' });
}

function compileAExpr(body: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  const op = body.name?.[body.name.length - 1]?.String?.sval as string;
  switch (body.kind as string) {
    case 'AEXPR_OP': {
      if (body.lexpr === undefined) return compilePrefix(op, body.rexpr, scope, ctx, hint);
      return compileBinary(op, body.lexpr, body.rexpr, scope, ctx, hint);
    }
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT': {
      const [a, b] = bindPair(body.lexpr, body.rexpr, scope, ctx);
      const type = comparisonType(a.type, b.type, '=');
      const distinct = body.kind === 'AEXPR_DISTINCT';
      return lift([coerce(a, type), coerce(b, type)], Oid.bool, (x, y) => {
        const same = x === null || y === null ? x === y : compareValues(type, x, y) === 0;
        return distinct ? !same : same;
      });
    }
    case 'AEXPR_NULLIF': {
      const [a, b] = bindPair(body.lexpr, body.rexpr, scope, ctx);
      const type = comparisonType(a.type, b.type, '=');
      // The result has the comparison's type; varchar compares as text (it has no = of its own).
      const resultType = a.type === Oid.unknown || a.type === Oid.varchar ? Oid.text : a.type;
      const value = coerce(a, resultType);
      return lift([value, coerce(a, type), coerce(b, type)], resultType, (result, x, y) => (x !== null && y !== null && compareValues(type, x, y) === 0 ? null : result), a.typmod);
    }
    case 'AEXPR_IN':
      return compileInList(op, body.lexpr, body.rexpr.List.items, scope, ctx);
    case 'AEXPR_LIKE':
    case 'AEXPR_ILIKE': {
      const [a, b] = bindPair(body.lexpr, body.rexpr, scope, ctx, Oid.text);
      const negated = op.startsWith('!');
      const insensitive = body.kind === 'AEXPR_ILIKE';
      return strict([coerce(a, Oid.text), coerce(b, Oid.text)], Oid.bool, (text: string, pattern: string) => likeMatch(text, pattern, insensitive) !== negated);
    }
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN':
    case 'AEXPR_BETWEEN_SYM':
    case 'AEXPR_NOT_BETWEEN_SYM':
      return compileBetween(body, scope, ctx);
    case 'AEXPR_OP_ANY':
    case 'AEXPR_OP_ALL':
      return compileArrayComparison(op, body.kind === 'AEXPR_OP_ALL', body.lexpr, body.rexpr, scope, ctx);
    default:
      throw new SqlError('0A000', `operator kind ${body.kind} is not supported yet`);
  }
}

/** x op ANY (array) / x op ALL (array), with SQL's NULL rules. */
function compileArrayComparison(op: string, all: boolean, leftNode: Node, rightNode: Node, scope: Scope, ctx: BindContext): Compiled {
  const left = compileExpr(leftNode, scope, ctx);
  const right = compileExpr(rightNode, scope, ctx, left.type !== Oid.unknown ? arrayOf(left.type) : undefined);
  const element = arrayElement(right.type);
  if (element === undefined) throw new SqlError('42809', `op ANY/ALL (array) requires array on right side`);
  const type = comparisonType(left.type, element, op);
  const test = comparator(op);
  return strict([coerce(left, type), right], Oid.bool, (x: Datum, list: Datum[]) => {
    let sawNull = false;
    for (const item of list) {
      if (item === null) {
        sawNull = true;
        continue;
      }
      const hit = test(compareValues(type, x, element === type ? item : castValue(item, element, type, -1, false)));
      if (all && !hit) return false;
      if (!all && hit) return true;
    }
    return sawNull ? null : all;
  });
}

function compilePrefix(op: string, operand: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  // A negative numeric literal folds before typing, so -2147483648 is an int4 as in PostgreSQL.
  if (op === '-' && operand.A_Const?.ival !== undefined) return constant(Oid.int4, -(operand.A_Const.ival.ival ?? 0) || 0);
  const arg = compileExpr(operand, scope, ctx, hint);
  const type = arg.type === Oid.unknown ? Oid.numeric : arg.type;
  if (numericRank(type) < 0) throw new SqlError('42883', `operator does not exist: ${op} ${typeName(arg.type)}`, { hint: 'No operator matches the given name and argument types. You might need to add explicit type casts.' });
  const value = coerce(arg, type);
  if (op === '+') return value;
  if (op === '-') return strict([value], type, (x) => negate(type, x));
  if (op === '@') return strict([value], type, (x) => (compareValues(type, x, castValue(0, Oid.int4, type, -1, false)) < 0 ? negate(type, x) : x));
  throw new SqlError('42883', `operator does not exist: ${op} ${typeName(type)}`);
}

function compileBinary(op: string, leftNode: Node, rightNode: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  if (op === '^') {
    const [x, y] = bindPair(leftNode, rightNode, scope, ctx);
    const numeric = x.type === Oid.numeric || y.type === Oid.numeric;
    const type = numeric && numericRank(x.type) <= 3 && numericRank(y.type) <= 3 ? Oid.numeric : Oid.float8;
    return strict([coerce(x, type), coerce(y, type)], type, (base, exponent) => power(type, base, exponent));
  }
  if (op === '||') {
    const a = compileExpr(leftNode, scope, ctx);
    const b = compileExpr(rightNode, scope, ctx);
    if (a.type === Oid.bytea && b.type === Oid.bytea) return strict([a, b], Oid.bytea, (x: Uint8Array, y: Uint8Array) => Buffer.concat([x, y]));
    return strict([coerce(a, Oid.text), coerce(b, Oid.text)], Oid.text, (x: string, y: string) => x + y);
  }
  const [a, b] = bindPair(leftNode, rightNode, scope, ctx, COMPARISONS.has(op) ? undefined : hint);
  if (COMPARISONS.has(op)) return compileComparison(op, a, b);
  if (op === '||') {
    if (a.type === Oid.bytea && b.type === Oid.bytea) return strict([a, b], Oid.bytea, (x: Uint8Array, y: Uint8Array) => Buffer.concat([x, y]));
    return strict([coerce(a, Oid.text), coerce(b, Oid.text)], Oid.text, (x: string, y: string) => x + y);
  }
  if (op === '+' || op === '-' || op === '*' || op === '/' || op === '%') {
    const type = arithmeticType(a.type, b.type, op);
    if (type === Oid.date) {
      const days = coerce(b, Oid.int4);
      return strict([coerce(a, Oid.date), days], Oid.date, (date: number, count: number) => (op === '+' ? date + count : date - count));
    }
    return strict([coerce(a, type), coerce(b, type)], type, (x, y) => arithmetic(op, type, x, y));
  }
  if (op === '~' || op === '!~' || op === '~*' || op === '!~*') {
    const insensitive = op.endsWith('*');
    const negated = op.startsWith('!');
    return strict([coerce(a, Oid.text), coerce(b, Oid.text)], Oid.bool, (text: string, pattern: string) => new RegExp(pattern, insensitive ? 'i' : '').test(text) !== negated);
  }
  throw new SqlError('42883', `operator does not exist: ${typeName(a.type)} ${op} ${typeName(b.type)}`, { hint: 'No operator matches the given name and argument types. You might need to add explicit type casts.' });
}

function compileInList(op: string, leftNode: Node, items: Node[], scope: Scope, ctx: BindContext): Compiled {
  const negated = op === '<>';
  const left = compileExpr(leftNode, scope, ctx);
  const values = items.map((item) => compileExpr(item, scope, ctx, left.type === Oid.unknown ? undefined : left.type));
  const type = commonType([left.type, ...values.map((value) => value.type)], 'IN');
  const target = coerce(left, type);
  const candidates = values.map((value) => coerce(value, type));
  // x IN (a, b) = (x = a) OR (x = b), with SQL's NULL rules (E1).
  return lift([target, ...candidates], Oid.bool, (x, ...list) => {
    if (x === null) return null;
    let sawNull = false;
    for (const candidate of list) {
      if (candidate === null) sawNull = true;
      else if (compareValues(type, x, candidate) === 0) return !negated;
    }
    return sawNull ? null : negated;
  });
}

function compileBetween(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const [lowNode, highNode] = body.rexpr.List.items as [Node, Node];
  const value = compileExpr(body.lexpr, scope, ctx);
  const low = compileExpr(lowNode, scope, ctx, value.type);
  const high = compileExpr(highNode, scope, ctx, value.type);
  const type = commonType([value.type, low.type, high.type], 'BETWEEN');
  const negated = body.kind === 'AEXPR_NOT_BETWEEN' || body.kind === 'AEXPR_NOT_BETWEEN_SYM';
  const symmetric = body.kind === 'AEXPR_BETWEEN_SYM' || body.kind === 'AEXPR_NOT_BETWEEN_SYM';
  const and = (p: boolean | null, q: boolean | null): boolean | null => (p === false || q === false ? false : p === null || q === null ? null : true);
  const within = (x: Datum, lo: Datum, hi: Datum): boolean | null => and(lo === null || x === null ? null : compareValues(type, x, lo) >= 0, hi === null || x === null ? null : compareValues(type, x, hi) <= 0);
  return lift([coerce(value, type), coerce(low, type), coerce(high, type)], Oid.bool, (x, lo, hi) => {
    let result = within(x, lo, hi);
    if (symmetric) {
      const swapped = within(x, hi, lo);
      result = result === true || swapped === true ? true : result === null || swapped === null ? null : false;
    }
    return result === null ? null : result !== negated;
  });
}

function compileBool(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const args = (body.args as Node[]).map((arg) => coerce(compileExpr(arg, scope, ctx, Oid.bool), Oid.bool));
  for (const arg of args) if (arg.type !== Oid.bool) throw new SqlError('42804', `argument of ${body.boolop.replace('_EXPR', '')} must be type boolean, not type ${typeName(arg.type)}`);
  if (body.boolop === 'NOT_EXPR') return lift(args, Oid.bool, (value) => (value === null ? null : !value));
  return combineBool(args, body.boolop === 'AND_EXPR');
}

/**
 * AND (or OR) of boolean expressions with short-circuit and three-valued logic (E1): AND
 * stops at false, OR at true; otherwise NULL wins over the neutral value.
 */
export function combineBool(args: Compiled[], isAnd: boolean): Compiled {
  const fold = (values: Iterable<Datum>): Datum => {
    let sawNull = false;
    for (const value of values) {
      if (value === null) sawNull = true;
      else if (value === !isAnd) return !isAnd;
    }
    return sawNull ? null : isAnd;
  };
  if (args.every((arg) => arg.constant !== undefined)) return constant(Oid.bool, fold(args.map((arg) => arg.constant!.value)));
  if (args.some((arg) => arg.async)) {
    return {
      type: Oid.bool,
      typmod: -1,
      async: true,
      fn: async (row, env) => {
        let sawNull = false;
        for (const arg of args) {
          const value = await arg.fn(row, env);
          if (value === null) sawNull = true;
          else if (value === !isAnd) return !isAnd;
        }
        return sawNull ? null : isAnd;
      },
    };
  }
  const fns = args.map((arg) => arg.fn);
  return {
    type: Oid.bool,
    typmod: -1,
    async: false,
    fn: (row, env) => {
      let sawNull = false;
      for (const fn of fns) {
        const value = fn(row, env);
        if (value === null) sawNull = true;
        else if (value === !isAnd) return !isAnd;
      }
      return sawNull ? null : isAnd;
    },
  };
}

function compileBooleanTest(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const arg = coerce(compileExpr(body.arg, scope, ctx, Oid.bool), Oid.bool);
  const test: Record<string, (value: Datum) => boolean> = {
    IS_TRUE: (value) => value === true,
    IS_NOT_TRUE: (value) => value !== true,
    IS_FALSE: (value) => value === false,
    IS_NOT_FALSE: (value) => value !== false,
    IS_UNKNOWN: (value) => value === null,
    IS_NOT_UNKNOWN: (value) => value !== null,
  };
  const check = test[body.booltesttype as string]!;
  return lift([arg], Oid.bool, check);
}

function compileCase(body: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  const subject = body.arg !== undefined ? compileExpr(body.arg, scope, ctx) : undefined;
  const whens = (body.args as Node[]).map((when) => when.CaseWhen);
  const conditions = whens.map((when) => (subject === undefined ? coerce(compileExpr(when.expr, scope, ctx, Oid.bool), Oid.bool) : compileExpr(when.expr, scope, ctx, subject.type)));
  const resultsRaw = whens.map((when) => compileExpr(when.result, scope, ctx, hint));
  const elseRaw = body.defresult !== undefined ? compileExpr(body.defresult, scope, ctx, hint) : constant(Oid.unknown, null);
  const type = commonType([...resultsRaw.map((result) => result.type), elseRaw.type], 'CASE');
  const results = resultsRaw.map((result) => coerce(result, type));
  const otherwise = coerce(elseRaw, type);
  let tests: Compiled[] = conditions;
  if (subject !== undefined) tests = conditions.map((condition) => compileComparison('=', subject, condition));
  const async = [...tests, ...results, otherwise].some((part) => part.async);
  if (async) {
    return {
      type,
      typmod: -1,
      async: true,
      fn: async (row, env) => {
        for (let index = 0; index < tests.length; index++) if ((await tests[index]!.fn(row, env)) === true) return results[index]!.fn(row, env);
        return otherwise.fn(row, env);
      },
    };
  }
  const testFns = tests.map((test) => test.fn);
  const resultFns = results.map((result) => result.fn);
  const elseFn = otherwise.fn;
  return {
    type,
    typmod: -1,
    async: false,
    fn: (row, env) => {
      for (let index = 0; index < testFns.length; index++) if (testFns[index]!(row, env) === true) return resultFns[index]!(row, env);
      return elseFn(row, env);
    },
  };
}

function compileCoalesce(body: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  const raw = (body.args as Node[]).map((arg) => compileExpr(arg, scope, ctx, hint));
  const type = commonType(raw.map((arg) => arg.type), 'COALESCE');
  const args = raw.map((arg) => coerce(arg, type));
  if (args.some((arg) => arg.async)) {
    return {
      type,
      typmod: -1,
      async: true,
      fn: async (row, env) => {
        for (const arg of args) {
          const value = await arg.fn(row, env);
          if (value !== null) return value;
        }
        return null;
      },
    };
  }
  const fns = args.map((arg) => arg.fn);
  return {
    type,
    typmod: -1,
    async: false,
    fn: (row, env) => {
      for (const fn of fns) {
        const value = fn(row, env);
        if (value !== null) return value;
      }
      return null;
    },
  };
}

function compileMinMax(body: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  const raw = (body.args as Node[]).map((arg) => compileExpr(arg, scope, ctx, hint));
  const type = commonType(raw.map((arg) => arg.type), body.op === 'IS_GREATEST' ? 'GREATEST' : 'LEAST');
  const greatest = body.op === 'IS_GREATEST';
  // GREATEST/LEAST ignore NULLs (NULL only if all are NULL), unlike the SQL standard.
  return lift(
    raw.map((arg) => coerce(arg, type)),
    type,
    (...values) => {
      let best: Datum = null;
      for (const value of values) {
        if (value === null) continue;
        if (best === null || (greatest ? compareValues(type, value, best) > 0 : compareValues(type, value, best) < 0)) best = value;
      }
      return best;
    },
  );
}

function compileFuncCall(body: Node, scope: Scope, ctx: BindContext, hint: TypeOid | undefined): Compiled {
  const names = (body.funcname as Node[]).map((part) => part.String.sval as string);
  const name = names[names.length - 1]!.toLowerCase();
  if (isAggregateName(name) || body.agg_star || body.over !== undefined) {
    if (body.over !== undefined) throw new SqlError('0A000', 'window functions are not supported yet');
    throw new SqlError('42803', ctx.noAggregates !== undefined ? `aggregate functions are not allowed in ${ctx.noAggregates}` : `aggregate function calls cannot be nested`);
  }
  if (name === 'nextval') return compileNextval(body, scope, ctx);
  const args = ((body.args ?? []) as Node[]).map((arg) => compileExpr(arg, scope, ctx));
  void hint;
  return callFunction(name, args, names.length > 1 ? names[0] : undefined);
}

/** nextval('name') / nextval('name'::regclass): asynchronous (the sequence lives on the volume). */
function compileNextval(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const args = (body.args ?? []) as Node[];
  if (args.length !== 1) throw new SqlError('42883', 'function nextval() does not exist');
  let arg = args[0];
  while (arg.TypeCast !== undefined) arg = arg.TypeCast.arg;
  const compiled = arg.A_Const?.sval !== undefined ? undefined : coerce(compileExpr(arg, scope, ctx, Oid.text), Oid.text);
  const fixed = arg.A_Const?.sval?.sval as string | undefined;
  const split = (text: string): [string | undefined, string] => {
    const parts = text.split('.');
    return parts.length > 1 ? [parts[0], parts[1]!] : [undefined, parts[0]!];
  };
  return {
    type: Oid.int8,
    typmod: -1,
    async: true,
    fn: async (row, env) => {
      const text = fixed ?? ((await compiled!.fn(row, env)) as string | null);
      if (text === null) return null;
      if (env.nextval === undefined) throw new SqlError('0A000', 'nextval() is not available here');
      const [schema, name] = split(text);
      return env.nextval(name, schema);
    },
  };
}

function compileSqlValueFunction(body: Node): Compiled {
  switch (body.op as string) {
    case 'SVFOP_CURRENT_TIMESTAMP':
    case 'SVFOP_CURRENT_TIMESTAMP_N':
      return { type: Oid.timestamptz, typmod: -1, fn: (_row, env) => env.now, async: false };
    case 'SVFOP_LOCALTIMESTAMP':
    case 'SVFOP_LOCALTIMESTAMP_N':
      return { type: Oid.timestamp, typmod: -1, fn: (_row, env) => env.now, async: false };
    case 'SVFOP_CURRENT_DATE':
      return { type: Oid.date, typmod: -1, fn: (_row, env) => Number(env.now / 86_400_000_000n) - (env.now < 0n && env.now % 86_400_000_000n !== 0n ? 1 : 0), async: false };
    case 'SVFOP_CURRENT_USER':
    case 'SVFOP_USER':
    case 'SVFOP_SESSION_USER':
    case 'SVFOP_CURRENT_ROLE':
      return constant(Oid.name, 'postgres');
    case 'SVFOP_CURRENT_CATALOG':
      return constant(Oid.name, 'postgres');
    case 'SVFOP_CURRENT_SCHEMA':
      return constant(Oid.name, 'public');
    default:
      throw new SqlError('0A000', `${body.op} is not supported yet`);
  }
}

function compileSubLink(body: Node, scope: Scope, ctx: BindContext): Compiled {
  const kind = body.subLinkType as string;
  const sub = ctx.subquery(body.subselect, scope);
  const plan = sub.plan;
  // An uncorrelated subquery runs once per statement execution (cached in env by plan).
  const cached = <T>(compute: (env: Env) => Promise<T>): ((env: Env) => Promise<T>) => {
    if (sub.correlated) return compute;
    const cache = new WeakMap<object, Promise<T>>();
    return (env) => {
      let hit = cache.get(env.params);
      if (hit === undefined) {
        hit = compute(env);
        cache.set(env.params, hit);
      }
      return hit;
    };
  };
  const inner = (row: Datum[], env: Env): Env => ({ ...env, outer: [...env.outer, row] });
  switch (kind) {
    case 'EXISTS_SUBLINK': {
      const run = sub.correlated ? undefined : cached((env) => env.runSubquery(plan, inner([], env), 1));
      return { type: Oid.bool, typmod: -1, async: true, fn: async (row, env) => (await (run ? run(env) : env.runSubquery(plan, inner(row, env), 1))).length > 0 };
    }
    case 'EXPR_SUBLINK': {
      if (sub.columns.length !== 1) throw new SqlError('42601', 'subquery must return only one column');
      const run = sub.correlated ? undefined : cached((env) => env.runSubquery(plan, inner([], env), 2));
      const type = sub.columns[0]!.type === Oid.unknown ? Oid.text : sub.columns[0]!.type;
      return {
        type,
        typmod: sub.columns[0]!.typmod,
        async: true,
        fn: async (row, env) => {
          const rows = await (run ? run(env) : env.runSubquery(plan, inner(row, env), 2));
          if (rows.length > 1) throw new SqlError('21000', 'more than one row returned by a subquery used as an expression');
          return rows.length === 0 ? null : rows[0]![0]!;
        },
      };
    }
    case 'ARRAY_SUBLINK': {
      if (sub.columns.length !== 1) throw new SqlError('42601', 'subquery must return only one column');
      const element = sub.columns[0]!.type === Oid.unknown ? Oid.text : sub.columns[0]!.type;
      const run = sub.correlated ? undefined : cached((env) => env.runSubquery(plan, inner([], env), Number.MAX_SAFE_INTEGER));
      return {
        type: arrayOf(element),
        typmod: -1,
        async: true,
        fn: async (row, env) => (await (run ? run(env) : env.runSubquery(plan, inner(row, env), Number.MAX_SAFE_INTEGER))).map((each) => each[0]!),
      };
    }
    case 'ANY_SUBLINK':
    case 'ALL_SUBLINK': {
      if (sub.columns.length !== 1) throw new SqlError('42601', sub.columns.length > 1 ? 'subquery has too many columns' : 'subquery has too few columns');
      const op = body.operName === undefined ? '=' : (body.operName[body.operName.length - 1].String.sval as string);
      const left = compileExpr(body.testexpr, scope, ctx, sub.columns[0]!.type);
      const type = comparisonType(left.type, sub.columns[0]!.type, op);
      const test = comparator(op);
      const target = coerce(left, type);
      const fromType = sub.columns[0]!.type;
      const convert = (value: Datum): Datum => (value === null || fromType === type ? value : castValue(value, fromType, type, -1, false));
      const all = kind === 'ALL_SUBLINK';
      const run = sub.correlated ? undefined : cached((env) => env.runSubquery(plan, inner([], env), Number.MAX_SAFE_INTEGER));
      return {
        type: Oid.bool,
        typmod: -1,
        async: true,
        fn: async (row, env) => {
          const x = await target.fn(row, env);
          const rows = await (run ? run(env) : env.runSubquery(plan, inner(row, env), Number.MAX_SAFE_INTEGER));
          if (rows.length === 0) return all;
          if (x === null) return null;
          let sawNull = false;
          for (const candidate of rows) {
            const y = convert(candidate[0]!);
            if (y === null) {
              sawNull = true;
              continue;
            }
            const hit = test(compareValues(type, x, y));
            if (all && !hit) return false;
            if (!all && hit) return true;
          }
          return sawNull ? null : all;
        },
      };
    }
    default:
      throw new SqlError('0A000', `subquery kind ${kind} is not supported yet`);
  }
}

/** LIKE with % and _ and backslash escapes; ILIKE folds case. */
export function likeMatch(text: string, pattern: string, insensitive: boolean): boolean {
  let regex = '^';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '\\') {
      const next = pattern[++index];
      if (next === undefined) throw new SqlError('22025', 'LIKE pattern must not end with escape character');
      regex += next.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else if (char === '%') regex += '[\\s\\S]*';
    else if (char === '_') regex += '[\\s\\S]';
    else regex += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${regex}$`, insensitive ? 'iu' : 'u').test(text);
}

export { constant as constantExpr, isNumericType };
