// The executor: plan nodes that stream rows as async generators (the Volcano model). Rows
// are arrays of values; a join's row is its left row followed by its right row, so a
// predicate over a prefix of the FROM list can run on the prefix of the row.
//
// Invariants:
//  X1. Rows stream: only Sort, hash builds, Distinct, set operations and aggregates hold
//      rows, and each holds at most `rowsInMemoryMax` of them (53200 beyond, never an OOM).
//  X2. A statement's snapshot and locks come from the transaction it runs in; the executor
//      never commits.
//  X3. Cancellation (CancelRequest, statement_timeout) is checked at least every 256 rows.

import { SqlError } from '../pgwire/session.js';
import type { IndexDef, TableDef, Transaction } from '../engine/database.js';
import { encodeKey, prefixEnd, type Value } from '../engine/codec.js';
import type { Compiled, Env } from './expr.js';
import type { AggregateSpec } from './functions.js';
import { compareValues, fromStorage, hashKey, toStorage, type Datum } from './typesys.js';
import { Oid, type TypeOid } from './oid.js';

export const ROWS_IN_MEMORY_MAX = 2_000_000;

export interface ExecContext {
  tx: Transaction;
  signal: AbortSignal;
  /** Rows a blocking operator may hold (X1): the session's boreal.max_rows_in_memory. */
  rowsInMemoryMax?: number;
}

export interface PlanNode {
  /** Values per row this node produces. */
  readonly width: number;
  rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]>;
  explain(): ExplainLine;
}

export interface ExplainLine {
  title: string;
  details?: string[];
  children?: ExplainLine[];
}

function memoryLimit(what: string, ctx: ExecContext): SqlError {
  return new SqlError('53200', `out of memory`, {
    detail: `${what} would hold more than ${rowLimit(ctx)} rows (boreal.max_rows_in_memory); larger sorts and hashes do not spill to disk yet`,
  });
}

const rowLimit = (ctx: ExecContext): number => ctx.rowsInMemoryMax ?? ROWS_IN_MEMORY_MAX;

async function evaluate(expr: Compiled, row: Datum[], env: Env): Promise<Datum> {
  return expr.async ? await expr.fn(row, env) : expr.fn(row, env);
}

export { evaluate };

// ---------------------------------------------------------------- leaves

export class ValuesNode implements PlanNode {
  constructor(
    readonly width: number,
    private readonly valueRows: Compiled[][],
  ) {}

  async *rows(_ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    for (const exprs of this.valueRows) {
      const row: Datum[] = [];
      for (const expr of exprs) row.push(await evaluate(expr, [], env));
      yield row;
    }
  }

  explain(): ExplainLine {
    return { title: `Values Scan  (rows=${this.valueRows.length})` };
  }
}

/** generate_series(start, stop[, step]) over integers, as a FROM item. */
export class SeriesNode implements PlanNode {
  readonly width = 1;
  constructor(
    private readonly type: TypeOid,
    private readonly start: Compiled,
    private readonly stop: Compiled,
    private readonly step: Compiled | undefined,
  ) {}

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const start = await evaluate(this.start, [], env);
    const stop = await evaluate(this.stop, [], env);
    const step = this.step === undefined ? 1 : await evaluate(this.step, [], env);
    if (start === null || stop === null || step === null) return;
    const big = this.type === Oid.int8;
    let at = BigInt(start as number | bigint);
    const end = BigInt(stop as number | bigint);
    const by = BigInt(step as number | bigint);
    if (by === 0n) throw new SqlError('22023', 'step size cannot equal zero');
    for (let produced = 0; by > 0n ? at <= end : at >= end; at += by) {
      yield [big ? at : Number(at)];
      if (++produced % 1024 === 0) ctx.signal.throwIfAborted();
    }
  }

  explain(): ExplainLine {
    return { title: 'Function Scan on generate_series' };
  }
}

/** A key range on a table's row key or an index's key, with bounds computed at execution. */
export interface KeyRange {
  /** Equality values on the leading key columns, then an optional range on the next. */
  equal: Compiled[];
  lower?: { expr: Compiled; inclusive: boolean } | undefined;
  upper?: { expr: Compiled; inclusive: boolean } | undefined;
  /** Column types of the key columns used (to convert bounds to the stored form). */
  types: TypeOid[];
  describe: string;
}

export type Access = { kind: 'seq' } | { kind: 'pk'; range: KeyRange } | { kind: 'index'; index: IndexDef; range: KeyRange };

/**
 * A table row as the executor carries it: each column in its SQL representation (columns
 * added after the row was written read NULL), then the row key.
 */
export function storedRow(types: readonly TypeOid[], values: readonly Value[], key: Uint8Array): Datum[] {
  const out: Datum[] = new Array(types.length + 1);
  for (let index = 0; index < types.length; index++) out[index] = index < values.length ? fromStorage(types[index]!, values[index]!) : null;
  out[types.length] = key;
  return out;
}

/** Reads a table: every row, a primary-key range, or a secondary-index range. Rows carry the row key last. */
export class TableScanNode implements PlanNode {
  readonly width: number;

  constructor(
    readonly table: TableDef,
    readonly types: TypeOid[],
    readonly access: Access,
    readonly alias: string,
  ) {
    this.width = table.columns.length + 1;
    const range = access.kind === 'pk' ? access.range : undefined;
    this.pointLookup = range !== undefined && range.lower === undefined && range.upper === undefined && range.equal.length === table.primaryKey?.length;
  }

  private readonly pointLookup: boolean;

  rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    return this.filteredRows(ctx, env, undefined);
  }

  /** The rows for which `filter` (a synchronous predicate) is true: a Filter over a scan runs here, one generator fewer per row. */
  async *filteredRows(ctx: ExecContext, env: Env, filter: Compiled['fn'] | undefined): AsyncGenerator<Datum[]> {
    const found = this.access.kind === 'seq' ? { from: undefined, to: undefined, empty: false } : keyBounds(this.access.range, env);
    const bounds = found instanceof Promise ? await found : found;
    if (bounds.empty) return;
    if (this.pointLookup && bounds.from !== undefined) {
      // Every primary-key column is bound by equality: one row key, one lookup.
      const row = await ctx.tx.get(this.table, bounds.from);
      if (row === undefined) return;
      const out = storedRow(this.types, row.values, row.key);
      if (filter === undefined || filter(out, env) === true) yield out;
      return;
    }
    const source = this.access.kind === 'index' ? ctx.tx.scanIndex(this.table, this.access.index, bounds.from, bounds.to) : ctx.tx.scan(this.table, bounds.from, bounds.to);
    const types = this.types;
    let seen = 0;
    for await (const row of source) {
      const out = storedRow(types, row.values, row.key);
      if (filter === undefined || filter(out, env) === true) yield out;
      if (++seen % 256 === 0) ctx.signal.throwIfAborted();
    }
  }

  explain(): ExplainLine {
    const name = this.table.name + (this.alias !== this.table.name ? ` ${this.alias}` : '');
    if (this.access.kind === 'seq') return { title: `Seq Scan on ${name}` };
    if (this.access.kind === 'pk') return { title: `Index Scan using ${this.table.name}_pkey on ${name}`, details: [`Index Cond: ${this.access.range.describe}`] };
    return { title: `Index Scan using ${this.access.index.name} on ${name}`, details: [`Index Cond: ${this.access.range.describe}`] };
  }
}


/** A bound value that cannot be expressed in the key's type: the range falls back to a full read. */
export const NO_BOUND = Symbol('no bound') as unknown as Datum;

type KeyBounds = { from: Uint8Array | undefined; to: Uint8Array | undefined; empty: boolean };

/**
 * Encoded [from, to) bounds of a key range, or empty when a bound is NULL (nothing matches).
 * Synchronous unless a bound holds a subquery (a point lookup makes no promise).
 */
function keyBounds(range: KeyRange, env: Env): KeyBounds | Promise<KeyBounds> {
  const exprs = boundExprs(range);
  if (!exprs.some((expr) => expr.async)) return keyBoundsOf(range, exprs.map((expr) => expr.fn([], env) as Datum));
  return Promise.all(exprs.map((expr) => evaluate(expr, [], env))).then((values) => keyBoundsOf(range, values));
}

/** The range's bound expressions in the order keyBoundsOf takes their values: equalities, lower, upper. */
function boundExprs(range: KeyRange): Compiled[] {
  const exprs = [...range.equal];
  if (range.lower !== undefined) exprs.push(range.lower.expr);
  if (range.upper !== undefined) exprs.push(range.upper.expr);
  return exprs;
}

function keyBoundsOf(range: KeyRange, values: Datum[]): KeyBounds {
  // A bound value that cannot be expressed in the key's type: the range falls back to a full read.
  if (values.includes(NO_BOUND)) return { from: undefined, to: undefined, empty: false };
  let next = 0;
  const equal: Value[] = [];
  for (let position = 0; position < range.equal.length; position++) {
    const value = values[next++]!;
    if (value === null) return { from: undefined, to: undefined, empty: true };
    equal.push(toStorage(range.types[position]!, value));
  }
  const prefix = encodeKey(equal);
  let from: Uint8Array | undefined = equal.length > 0 ? prefix : undefined;
  let to: Uint8Array | undefined = equal.length > 0 ? prefixEnd(prefix) : undefined;
  const type = range.types[equal.length]!;
  if (range.lower !== undefined) {
    const value = values[next++]!;
    if (value === null) return { from: undefined, to: undefined, empty: true };
    const key = encodeKey([...equal, toStorage(type, value)]);
    from = range.lower.inclusive ? key : prefixEnd(key);
  }
  if (range.upper !== undefined) {
    const value = values[next++]!;
    if (value === null) return { from: undefined, to: undefined, empty: true };
    const key = encodeKey([...equal, toStorage(type, value)]);
    to = range.upper.inclusive ? prefixEnd(key) : key;
  } else if (range.lower !== undefined) {
    // Open above: stop before NULLs (they sort last) so `x > 5` does not read them.
    to = equal.length > 0 ? prefixEnd(prefix) : encodeKey([null]);
  }
  return { from, to, empty: false };
}

// ---------------------------------------------------------------- row-at-a-time operators

export class FilterNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly predicate: Compiled,
    private readonly text: string,
  ) {
    this.width = child.width;
  }

  rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    if (!this.predicate.async && this.child instanceof TableScanNode) return this.child.filteredRows(ctx, env, this.predicate.fn);
    return this.filtered(ctx, env);
  }

  private async *filtered(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const predicate = this.predicate;
    if (predicate.async) {
      for await (const row of this.child.rows(ctx, env)) if ((await predicate.fn(row, env)) === true) yield row;
      return;
    }
    const fn = predicate.fn;
    for await (const row of this.child.rows(ctx, env)) if (fn(row, env) === true) yield row;
  }

  explain(): ExplainLine {
    const line = this.child.explain();
    return { ...line, details: [...(line.details ?? []), `Filter: ${this.text}`] };
  }
}

export class ProjectNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly exprs: Compiled[],
  ) {
    this.width = exprs.length;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const exprs = this.exprs;
    if (exprs.some((expr) => expr.async)) {
      for await (const row of this.child.rows(ctx, env)) {
        const out: Datum[] = [];
        for (const expr of exprs) out.push(await evaluate(expr, row, env));
        yield out;
      }
      return;
    }
    const fns = exprs.map((expr) => expr.fn);
    for await (const row of this.child.rows(ctx, env)) {
      const out: Datum[] = new Array(fns.length);
      for (let index = 0; index < fns.length; index++) out[index] = fns[index]!(row, env);
      yield out;
    }
  }

  explain(): ExplainLine {
    return this.child.explain();
  }
}

export class LimitNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly count: Compiled | undefined,
    private readonly offset: Compiled | undefined,
  ) {
    this.width = child.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const toNumber = async (expr: Compiled | undefined, what: string): Promise<number | undefined> => {
      if (expr === undefined) return undefined;
      const value = await evaluate(expr, [], env);
      if (value === null) return undefined;
      const number = Number(value);
      if (number < 0) throw new SqlError('2201W', `${what} must not be negative`);
      return number;
    };
    const limit = await toNumber(this.count, 'LIMIT');
    let skip = (await toNumber(this.offset, 'OFFSET')) ?? 0;
    if (limit === 0) return;
    let produced = 0;
    for await (const row of this.child.rows(ctx, env)) {
      if (skip > 0) {
        skip--;
        continue;
      }
      yield row;
      if (limit !== undefined && ++produced >= limit) return;
    }
  }

  explain(): ExplainLine {
    return { title: 'Limit', children: [this.child.explain()] };
  }
}

// ---------------------------------------------------------------- joins

export type JoinKind = 'inner' | 'left' | 'right' | 'full';

/** Nested loop: the right side is materialized once (it does not depend on the left row). */
export class NestedLoopNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly left: PlanNode,
    readonly right: PlanNode,
    readonly kind: JoinKind,
    private readonly condition: Compiled | undefined,
  ) {
    this.width = left.width + right.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const inner = await materialize(this.right, ctx, env, 'a nested loop');
    const matched = this.kind === 'right' || this.kind === 'full' ? new Uint8Array(inner.length) : undefined;
    const condition = this.condition;
    const rightNulls = new Array<Datum>(this.right.width).fill(null);
    let seen = 0;
    for await (const outer of this.left.rows(ctx, env)) {
      let any = false;
      for (let index = 0; index < inner.length; index++) {
        const row = outer.concat(inner[index]!);
        if (condition !== undefined && (await evaluate(condition, row, env)) !== true) continue;
        any = true;
        if (matched !== undefined) matched[index] = 1;
        yield row;
        if (++seen % 256 === 0) ctx.signal.throwIfAborted();
      }
      if (!any && (this.kind === 'left' || this.kind === 'full')) yield outer.concat(rightNulls);
    }
    if (matched !== undefined) {
      const leftNulls = new Array<Datum>(this.left.width).fill(null);
      for (let index = 0; index < inner.length; index++) if (matched[index] === 0) yield leftNulls.concat(inner[index]!);
    }
  }

  explain(): ExplainLine {
    return { title: `Nested Loop${this.kind === 'inner' ? '' : ` ${capitalize(this.kind)} Join`}`, children: [this.left.explain(), this.right.explain()] };
  }
}

function capitalize(text: string): string {
  return text[0]!.toUpperCase() + text.slice(1);
}

/** Hash join on equality keys; the right side is the build side. */
export class HashJoinNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly left: PlanNode,
    readonly right: PlanNode,
    readonly kind: JoinKind,
    private readonly leftKeys: Compiled[],
    private readonly rightKeys: Compiled[],
    private readonly keyTypes: TypeOid[],
    private readonly residual: Compiled | undefined,
  ) {
    this.width = left.width + right.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const table = new Map<string, Array<{ row: Datum[]; index: number }>>();
    const all: Datum[][] = [];
    for await (const row of this.right.rows(ctx, env)) {
      if (all.length >= rowLimit(ctx)) throw memoryLimit('a hash join', ctx);
      const index = all.length;
      all.push(row);
      const key = await this.key(this.rightKeys, row, env);
      if (key === undefined) continue; // NULL keys never match
      let bucket = table.get(key);
      if (bucket === undefined) table.set(key, (bucket = []));
      bucket.push({ row, index });
    }
    const matched = this.kind === 'right' || this.kind === 'full' ? new Uint8Array(all.length) : undefined;
    const rightNulls = new Array<Datum>(this.right.width).fill(null);
    for await (const outer of this.left.rows(ctx, env)) {
      const key = await this.key(this.leftKeys, outer, env);
      let any = false;
      for (const entry of key === undefined ? [] : (table.get(key) ?? [])) {
        const row = outer.concat(entry.row);
        if (this.residual !== undefined && (await evaluate(this.residual, row, env)) !== true) continue;
        any = true;
        if (matched !== undefined) matched[entry.index] = 1;
        yield row;
      }
      if (!any && (this.kind === 'left' || this.kind === 'full')) yield outer.concat(rightNulls);
    }
    if (matched !== undefined) {
      const leftNulls = new Array<Datum>(this.left.width).fill(null);
      for (let index = 0; index < all.length; index++) if (matched[index] === 0) yield leftNulls.concat(all[index]!);
    }
  }

  private async key(exprs: Compiled[], row: Datum[], env: Env): Promise<string | undefined> {
    let key = '';
    for (const [position, expr] of exprs.entries()) {
      const value = await evaluate(expr, row, env);
      if (value === null) return undefined;
      key += `${hashKey(this.keyTypes[position]!, value)}\u0000`;
    }
    return key;
  }

  explain(): ExplainLine {
    return { title: `Hash${this.kind === 'inner' ? '' : ` ${capitalize(this.kind)}`} Join`, children: [this.left.explain(), { title: 'Hash', children: [this.right.explain()] }] };
  }
}

/** LATERAL: the right side is run again for each left row, which it reads as its outer row. */
export class LateralJoinNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly left: PlanNode,
    readonly right: PlanNode,
    readonly kind: 'inner' | 'left',
    private readonly condition: Compiled | undefined,
  ) {
    this.width = left.width + right.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const rightNulls = new Array<Datum>(this.right.width).fill(null);
    for await (const outer of this.left.rows(ctx, env)) {
      const inner: Env = { ...env, outer: [...env.outer, outer] };
      let any = false;
      for await (const right of this.right.rows(ctx, inner)) {
        const row = outer.concat(right);
        if (this.condition !== undefined && (await evaluate(this.condition, row, env)) !== true) continue;
        any = true;
        yield row;
      }
      if (!any && this.kind === 'left') yield outer.concat(rightNulls);
    }
  }

  explain(): ExplainLine {
    return { title: `Nested Loop${this.kind === 'left' ? ' Left Join' : ''}`, children: [this.left.explain(), this.right.explain()] };
  }
}

// ---------------------------------------------------------------- blocking operators

export async function materialize(node: PlanNode, ctx: ExecContext, env: Env, what: string): Promise<Datum[][]> {
  const rows: Datum[][] = [];
  for await (const row of node.rows(ctx, env)) {
    if (rows.length >= rowLimit(ctx)) throw memoryLimit(what, ctx);
    rows.push(row);
  }
  return rows;
}

export interface SortKey {
  /** Position in the child's row. */
  column: number;
  type: TypeOid;
  descending: boolean;
  nullsFirst: boolean;
}

export function rowComparator(keys: SortKey[]): (a: Datum[], b: Datum[]) => number {
  return (a, b) => {
    for (const key of keys) {
      const x = a[key.column]!;
      const y = b[key.column]!;
      if (x === null || y === null) {
        if (x === y) continue;
        return (x === null) === key.nullsFirst ? -1 : 1;
      }
      const order = compareValues(key.type, x, y);
      if (order !== 0) return key.descending ? -order : order;
    }
    return 0;
  };
}

export class SortNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly keys: SortKey[],
    private readonly text: string,
  ) {
    this.width = child.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const rows = await materialize(this.child, ctx, env, 'a sort');
    rows.sort(rowComparator(this.keys));
    yield* rows;
  }

  explain(): ExplainLine {
    return { title: 'Sort', details: [`Sort Key: ${this.text}`], children: [this.child.explain()] };
  }
}

export class DistinctNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly types: TypeOid[],
    /** Only the first `columns` values decide distinctness (hidden sort keys ride along). */
    private readonly columns: number,
  ) {
    this.width = child.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const seen = new Set<string>();
    for await (const row of this.child.rows(ctx, env)) {
      const key = rowKey(row, this.types, this.columns);
      if (seen.has(key)) continue;
      if (seen.size >= rowLimit(ctx)) throw memoryLimit('DISTINCT', ctx);
      seen.add(key);
      yield row;
    }
  }

  explain(): ExplainLine {
    return { title: 'HashAggregate', details: ['Group Key: (all columns)'], children: [this.child.explain()] };
  }
}

export function rowKey(row: Datum[], types: TypeOid[], columns: number): string {
  let key = '';
  for (let index = 0; index < columns; index++) {
    const value = row[index]!;
    key += value === null ? '\u0001N' : `\u0001${hashKey(types[index]!, value)}`;
  }
  return key;
}

export class SetOpNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly left: PlanNode,
    readonly right: PlanNode,
    private readonly op: 'union' | 'intersect' | 'except',
    private readonly all: boolean,
    private readonly types: TypeOid[],
  ) {
    this.width = left.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const width = this.types.length;
    if (this.op === 'union') {
      if (this.all) {
        yield* this.left.rows(ctx, env);
        yield* this.right.rows(ctx, env);
        return;
      }
      const seen = new Set<string>();
      for (const side of [this.left, this.right]) {
        for await (const row of side.rows(ctx, env)) {
          const key = rowKey(row, this.types, width);
          if (seen.has(key)) continue;
          if (seen.size >= rowLimit(ctx)) throw memoryLimit('UNION', ctx);
          seen.add(key);
          yield row;
        }
      }
      return;
    }
    // INTERSECT / EXCEPT: count the right side, then stream the left.
    const counts = new Map<string, number>();
    for await (const row of this.right.rows(ctx, env)) {
      const key = rowKey(row, this.types, width);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (counts.size >= rowLimit(ctx)) throw memoryLimit(this.op.toUpperCase(), ctx);
    }
    const emitted = new Set<string>();
    for await (const row of this.left.rows(ctx, env)) {
      const key = rowKey(row, this.types, width);
      const count = counts.get(key) ?? 0;
      if (this.op === 'intersect') {
        if (count === 0) continue;
        if (this.all) counts.set(key, count - 1);
        else {
          if (emitted.has(key)) continue;
          emitted.add(key);
        }
        yield row;
      } else {
        if (this.all) {
          if (count > 0) {
            counts.set(key, count - 1);
            continue;
          }
          yield row;
        } else {
          if (count > 0 || emitted.has(key)) continue;
          emitted.add(key);
          yield row;
        }
      }
    }
  }

  explain(): ExplainLine {
    return { title: this.op === 'union' ? (this.all ? 'Append' : 'HashAggregate') : `HashSetOp ${capitalize(this.op)}${this.all ? ' All' : ''}`, children: [this.left.explain(), this.right.explain()] };
  }
}

export interface AggregateCall {
  spec: AggregateSpec;
  args: Compiled[];
  distinct: boolean;
  filter: Compiled | undefined;
  argTypes: TypeOid[];
}

/** Hash aggregation: output rows are the group key values followed by the aggregates' results. */
export class AggregateNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly groupBy: Compiled[],
    private readonly calls: AggregateCall[],
  ) {
    this.width = groupBy.length + calls.length;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    interface Group {
      keys: Datum[];
      states: unknown[];
      seen: Array<Set<string> | undefined>;
    }
    const groups = new Map<string, Group>();
    const groupTypes = this.groupBy.map((expr) => expr.type);
    const newGroup = (keys: Datum[]): Group => ({ keys, states: this.calls.map((call) => call.spec.init()), seen: this.calls.map((call) => (call.distinct ? new Set<string>() : undefined)) });
    let count = 0;
    for await (const row of this.child.rows(ctx, env)) {
      const keys: Datum[] = [];
      for (const expr of this.groupBy) keys.push(await evaluate(expr, row, env));
      const key = rowKey(keys, groupTypes, keys.length);
      let group = groups.get(key);
      if (group === undefined) {
        if (groups.size >= rowLimit(ctx)) throw memoryLimit('GROUP BY', ctx);
        group = newGroup(keys);
        groups.set(key, group);
      }
      for (const [position, call] of this.calls.entries()) {
        if (call.filter !== undefined && (await evaluate(call.filter, row, env)) !== true) continue;
        const values: Datum[] = [];
        for (const arg of call.args) values.push(await evaluate(arg, row, env));
        if (call.spec.strict && values.some((value) => value === null)) continue;
        if (!call.spec.strict && values[0] === null) continue;
        const seen = group.seen[position];
        if (seen !== undefined) {
          const distinctKey = rowKey(values, call.argTypes, values.length);
          if (seen.has(distinctKey)) continue;
          seen.add(distinctKey);
        }
        group.states[position] = call.spec.step(group.states[position], values);
      }
      if (++count % 256 === 0) ctx.signal.throwIfAborted();
    }
    if (groups.size === 0 && this.groupBy.length === 0) groups.set('', newGroup([]));
    for (const group of groups.values()) yield [...group.keys, ...this.calls.map((call, position) => call.spec.final(group.states[position]))];
  }

  explain(): ExplainLine {
    return { title: this.groupBy.length === 0 ? 'Aggregate' : 'HashAggregate', children: [this.child.explain()] };
  }
}
