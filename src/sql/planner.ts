// The planner: binds a SELECT (or the query part of INSERT/UPDATE/DELETE) against the
// catalog and turns it into a tree of executor nodes.
//
// How a SELECT is planned:
//  1. FROM items are planned one by one (base tables, subqueries, CTE references, explicit
//     joins); their rows are concatenated left to right, so each item owns a slice of the
//     row and a predicate over items 0..k can run on the row's prefix.
//  2. WHERE is split into conjuncts. A conjunct over one base table is pushed to that
//     table, where it may choose an access path (primary-key lookup or range, secondary
//     index range); a conjunct over several items is attached to the join that brings in
//     the last of them, and an equality between both sides of that join becomes a hash key.
//  3. Aggregation, HAVING, the select list, DISTINCT, ORDER BY (dropped when the access
//     path already returns that order), LIMIT/OFFSET.
//
// Invariants:
//  PL1. A pushed-down or index-chosen conjunct is still evaluated as a filter: an index
//       only narrows what is read, it never decides the answer.
//  PL2. Binding is synchronous: every table a statement names is loaded from the catalog
//       before binding starts (`preload`), so expressions can plan their subqueries.

import { SqlError } from '../pgwire/session.js';
import type { IndexDef, TableDef, Transaction } from '../engine/database.js';
import { Oid, type TypeOid } from './oid.js';
import { combineBool, coerce, commonType, compileComparison, compileExpr, constantExpr, Params, Scope, type BindContext, type Compiled, type Node, type ScopeColumn } from './expr.js';
import { aggregate, isAggregateName } from './functions.js';
import { AggregateNode, SeriesNode, DistinctNode, FilterNode, HashJoinNode, LateralJoinNode, LimitNode, NestedLoopNode, ProjectNode, SetOpNode, SortNode, TableScanNode, ValuesNode, type Access, type AggregateCall, type JoinKind, type KeyRange, type PlanNode, type SortKey } from './exec.js';
import { castValue, columnType, typeName } from './typesys.js';
import { NO_BOUND } from './exec.js';
import { virtualTable, type VirtualTable } from './system-views.js';
import { LockRowsNode } from './dml.js';
import { parseSync } from 'libpg-query';

export interface OutputColumn {
  name: string;
  type: TypeOid;
  typmod: number;
  tableOid: number;
  columnNumber: number;
}

export interface Planned {
  plan: PlanNode;
  columns: OutputColumn[];
  /** Whether the query reads rows of an enclosing query. */
  correlated: boolean;
}

/** Catalog access for one statement: tables are loaded before binding (PL2). */
export class StatementCatalog {
  private readonly tables = new Map<string, TableDef | null>();
  private readonly views = new Map<string, Node>();

  constructor(readonly tx: Transaction) {}

  static key(schema: string | undefined, name: string): string {
    return `${schema ?? ''}.${name}`;
  }

  async load(schema: string | undefined, name: string): Promise<void> {
    const key = StatementCatalog.key(schema, name);
    if (this.tables.has(key)) return;
    if (virtualTable(schema, name) !== undefined) return;
    const table = await this.tx.findTable(name, schema ?? 'public');
    this.tables.set(key, table ?? null);
    if (table === undefined) {
      const view = await this.tx.findView(name, schema ?? 'public');
      if (view !== undefined) {
        const query = (parseSync(view.definition) as { stmts: Array<{ stmt: Node }> }).stmts[0]!.stmt;
        this.views.set(key, query);
        await this.preload(query);
      }
    }
  }

  /** A view's query (parse tree), if the name is a view. */
  view(schema: string | undefined, name: string): Node | undefined {
    return this.views.get(StatementCatalog.key(schema, name));
  }

  table(schema: string | undefined, name: string): TableDef | undefined {
    return this.tables.get(StatementCatalog.key(schema, name)) ?? undefined;
  }

  /** Loads every relation a parse tree names (CTE names are looked up too; harmless). */
  async preload(node: Node): Promise<void> {
    const names: Array<[string | undefined, string]> = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) for (const item of value) walk(item);
      else if (value !== null && typeof value === 'object') {
        const record = value as Record<string, unknown>;
        if (record.RangeVar !== undefined) {
          const range = record.RangeVar as { relname: string; schemaname?: string };
          names.push([range.schemaname, range.relname]);
        }
        if (typeof record.relname === 'string' && record.RangeVar === undefined && 'inh' in record) names.push([record.schemaname as string | undefined, record.relname]);
        for (const child of Object.values(record)) walk(child);
      }
    };
    walk(node);
    for (const [schema, name] of names) await this.load(schema, name);
  }
}

interface QueryContext {
  catalog: StatementCatalog;
  params: Params;
  /** CTEs visible here, innermost first. */
  ctes: Array<Map<string, { query: Node; columns: string[] | undefined; position: number }>>;
  /** SELECT … FOR UPDATE / FOR SHARE: base-table rows are locked as they are read. */
  lock?: 'update' | 'share';
}

const nameOf = (node: Node): string => node.String.sval as string;

/** Splits a boolean expression into its AND-ed parts. */
function conjuncts(node: Node | undefined): Node[] {
  if (node === undefined) return [];
  if (node.BoolExpr?.boolop === 'AND_EXPR') return (node.BoolExpr.args as Node[]).flatMap(conjuncts);
  return [node];
}

// ---------------------------------------------------------------- entry points

export function planQuery(node: Node, outer: Scope | undefined, ctx: QueryContext): Planned {
  const select = node.SelectStmt;
  if (select === undefined) throw new SqlError('0A000', `${Object.keys(node)[0]} is not supported as a query yet`);
  return planSelect(select, outer, ctx);
}

export function newQueryContext(catalog: StatementCatalog, params: Params): QueryContext {
  return { catalog, params, ctes: [] };
}

function bindContext(ctx: QueryContext, extra: Partial<BindContext> = {}): BindContext {
  return {
    params: ctx.params,
    subquery: (node, outer) => {
      const before = outer.hitsUpward();
      const planned = planQuery(node, outer, ctx);
      return { plan: planned.plan, columns: planned.columns, correlated: outer.hitsUpward() > before };
    },
    ...extra,
  };
}

function planSelect(select: Node, outer: Scope | undefined, parentCtx: QueryContext, keepUnknown = false): Planned {
  let ctx = parentCtx;
  if (select.withClause !== undefined) {
    if (select.withClause.recursive) throw new SqlError('0A000', 'WITH RECURSIVE is not supported yet');
    const map = new Map<string, { query: Node; columns: string[] | undefined; position: number }>();
    ctx = { ...parentCtx, ctes: [map, ...parentCtx.ctes] };
    for (const cte of select.withClause.ctes as Node[]) {
      const body = cte.CommonTableExpr;
      if (map.has(body.ctename)) throw new SqlError('42712', `WITH query name "${body.ctename}" specified more than once`);
      map.set(body.ctename, { query: body.ctequery, columns: body.aliascolnames?.map(nameOf), position: map.size });
    }
  }
  if (select.op !== undefined && select.op !== 'SETOP_NONE') return planSetOperation(select, outer, ctx);
  if (select.valuesLists !== undefined) return planValues(select, outer, ctx);
  return planSimpleSelect(select, outer, ctx, keepUnknown);
}

function planSetOperation(select: Node, outer: Scope | undefined, ctx: QueryContext): Planned {
  const left = planSelect(select.larg, outer, ctx, true);
  const right = planSelect(select.rarg, outer, ctx, true);
  const op = select.op === 'SETOP_UNION' ? 'union' : select.op === 'SETOP_INTERSECT' ? 'intersect' : 'except';
  if (left.columns.length !== right.columns.length) throw new SqlError('42601', `each ${op.toUpperCase()} query must have the same number of columns`);
  const types = left.columns.map((column, index) => {
    const type = commonType([column.type, right.columns[index]!.type], op.toUpperCase());
    return type === Oid.unknown ? Oid.text : type;
  });
  const castTo = (planned: Planned): PlanNode => {
    if (planned.columns.every((column, index) => column.type === types[index])) return planned.plan;
    const scope = new Scope(planned.columns.map((column, index) => ({ qualifier: undefined, name: column.name, type: column.type, typmod: column.typmod, index })));
    const exprs = planned.columns.map((column, index) => coerce(columnRef(scope.columns[index]!), types[index]!));
    return new ProjectNode(planned.plan, exprs);
  };
  const plan = new SetOpNode(castTo(left), castTo(right), op, select.all === true, types);
  const columns = left.columns.map((column, index) => ({ ...column, type: types[index]!, typmod: -1 }));
  return finishQuery(select, { plan, columns, correlated: left.correlated || right.correlated }, outer, ctx);
}

function columnRef(column: ScopeColumn): Compiled {
  const index = column.index;
  return { type: column.type, typmod: column.typmod, fn: (row) => row[index] ?? null, async: false, column: index };
}

function planValues(select: Node, outer: Scope | undefined, ctx: QueryContext): Planned {
  const lists = (select.valuesLists as Node[]).map((list) => list.List.items as Node[]);
  const width = lists[0]!.length;
  const scope = new Scope([], outer);
  const bind = bindContext(ctx, { noAggregates: 'VALUES' });
  const raw = lists.map((items) => {
    if (items.length !== width) throw new SqlError('42601', 'VALUES lists must all be the same length');
    return items.map((item) => compileExpr(item, scope, bind));
  });
  const types = Array.from({ length: width }, (_, column) => commonType(raw.map((row) => row[column]!.type), 'VALUES'));
  const rows = raw.map((row) => row.map((expr, column) => coerce(expr, types[column]!)));
  const columns = types.map((type, index) => ({ name: `column${index + 1}`, type, typmod: -1, tableOid: 0, columnNumber: 0 }));
  return finishQuery(select, { plan: new ValuesNode(width, rows), columns, correlated: false }, outer, ctx);
}

/** ORDER BY / LIMIT / OFFSET over a set operation's or VALUES' output (by output column names and positions). */
function finishQuery(select: Node, planned: Planned, outer: Scope | undefined, ctx: QueryContext): Planned {
  let plan = planned.plan;
  const scope = new Scope(
    planned.columns.map((column, index) => ({ qualifier: undefined, name: column.name, type: column.type, typmod: column.typmod, index })),
    outer,
  );
  if (select.sortClause !== undefined) {
    const keys: SortKey[] = [];
    for (const item of select.sortClause as Node[]) {
      const sort = item.SortBy;
      const position = outputPosition(sort.node, planned.columns);
      if (position === undefined) throw new SqlError('0A000', 'ORDER BY on a UNION/INTERSECT/EXCEPT result must use output column names or positions');
      keys.push(sortKey(sort, position, planned.columns[position]!.type));
    }
    plan = new SortNode(plan, keys, 'output columns');
  }
  plan = limitOf(select, plan, scope, ctx);
  return { plan, columns: planned.columns, correlated: planned.correlated };
}

function limitOf(select: Node, plan: PlanNode, scope: Scope, ctx: QueryContext): PlanNode {
  if (select.limitCount === undefined && select.limitOffset === undefined) return plan;
  const bind = bindContext(ctx, { noAggregates: 'LIMIT' });
  const count = select.limitCount === undefined || select.limitCount.A_Const?.isnull ? undefined : coerce(compileExpr(select.limitCount, new Scope([], scope.parent), bind, Oid.int8), Oid.int8);
  const offset = select.limitOffset === undefined ? undefined : coerce(compileExpr(select.limitOffset, new Scope([], scope.parent), bind, Oid.int8), Oid.int8);
  return new LimitNode(plan, count, offset);
}

function sortKey(sort: Node, column: number, type: TypeOid): SortKey {
  const descending = sort.sortby_dir === 'SORTBY_DESC';
  const nullsFirst = sort.sortby_nulls === 'SORTBY_NULLS_FIRST' ? true : sort.sortby_nulls === 'SORTBY_NULLS_LAST' ? false : descending;
  if (sort.sortby_dir === 'SORTBY_USING') throw new SqlError('0A000', 'ORDER BY … USING is not supported');
  return { column, type, descending, nullsFirst };
}

/** ORDER BY 2 or ORDER BY alias: the output column it names, if it is one of those forms. */
function outputPosition(node: Node, columns: OutputColumn[]): number | undefined {
  const constant = node.A_Const;
  if (constant?.ival !== undefined || (constant !== undefined && constant.sval === undefined && constant.fval === undefined && !constant.isnull && constant.boolval === undefined)) {
    const position = (constant.ival?.ival ?? 0) as number;
    if (position < 1 || position > columns.length) throw new SqlError('42P10', `ORDER BY position ${position} is not in select list`);
    return position - 1;
  }
  const fields = node.ColumnRef?.fields as Node[] | undefined;
  if (fields?.length === 1 && fields[0].String !== undefined) {
    const name = nameOf(fields[0]);
    const matches = columns.map((column, index) => (column.name === name ? index : -1)).filter((index) => index >= 0);
    if (matches.length > 1) throw new SqlError('42702', `ORDER BY "${name}" is ambiguous`);
    if (matches.length === 1) return matches[0];
  }
  return undefined;
}

// ---------------------------------------------------------------- FROM

interface FromItem {
  plan: PlanNode;
  /** Columns with indices relative to the item. */
  columns: ScopeColumn[];
  /** For base tables: the table, so that pushed conjuncts can pick an access path. */
  table?: { def: TableDef; alias: string; types: TypeOid[] };
  /** Aliases this item answers to (for qualified references). */
  qualifiers: Set<string>;
  pushed: Node[];
  correlated: boolean;
  lateral?: boolean;
}

/** A function that referred to no item before it needs no per-row run: it joins as any item. */
function reallyLateral(node: Node, lateralScope: Scope, hitsBefore: number): boolean {
  return node.RangeFunction === undefined || lateralScope.outerHits > hitsBefore;
}

/**
 * A LATERAL item: planned with the items before it as its outer scope, run per left row. A
 * function in FROM is always one (PostgreSQL makes it implicitly LATERAL).
 */
function isLateral(node: Node): boolean {
  return node.RangeSubselect?.lateral === true || node.RangeFunction !== undefined;
}

function planFromItem(node: Node, outer: Scope | undefined, ctx: QueryContext, lateral?: Scope): FromItem {
  if (node.RangeVar !== undefined) return planRangeVar(node.RangeVar, outer, ctx);
  if (node.RangeSubselect !== undefined) {
    const sub = node.RangeSubselect;
    if (sub.lateral && lateral === undefined) throw new SqlError('0A000', 'LATERAL is supported only after another FROM item');
    const planned = planQuery(sub.subquery, sub.lateral ? lateral : outer, ctx);
    const alias = sub.alias?.aliasname as string | undefined;
    if (alias === undefined) throw new SqlError('42601', 'subquery in FROM must have an alias', { hint: 'For example, FROM (SELECT ...) [AS] foo.' });
    return derivedItem(planned, alias, sub.alias?.colnames?.map(nameOf));
  }
  if (node.JoinExpr !== undefined) return planJoinExpr(node.JoinExpr, outer, ctx);
  if (node.RangeFunction !== undefined) return planRangeFunction(node.RangeFunction, lateral ?? outer, ctx);
  throw new SqlError('0A000', `FROM item ${Object.keys(node)[0]} is not supported yet`);
}

/** A set-returning function in FROM: generate_series over integers. */
function planRangeFunction(range: Node, outer: Scope | undefined, ctx: QueryContext): FromItem {
  const functions = range.functions as Node[];
  const call = functions.length === 1 ? functions[0]!.List?.items?.[0]?.FuncCall : undefined;
  const name = call === undefined ? undefined : nameOf((call.funcname as Node[])[(call.funcname as Node[]).length - 1]);
  if (call === undefined || range.ordinality || range.is_rowsfrom || name !== 'generate_series') {
    throw new SqlError('0A000', `${name === undefined ? 'this function' : `function ${name}`} in FROM is not supported yet`);
  }
  const args = (call.args ?? []) as Node[];
  if (args.length < 2 || args.length > 3) throw new SqlError('42883', `function generate_series with ${args.length} arguments does not exist`);
  const before = outer?.hitsUpward() ?? 0;
  const scope = new Scope([], outer);
  const bind = bindContext(ctx, { noAggregates: 'functions in FROM' });
  const compiled = args.map((arg) => compileExpr(arg, scope, bind, Oid.int4));
  const type = compiled.some((arg) => arg.type === Oid.int8) ? Oid.int8 : Oid.int4;
  if (compiled.some((arg) => !([Oid.int2, Oid.int4, Oid.int8, Oid.unknown] as number[]).includes(arg.type))) {
    throw new SqlError('0A000', `generate_series(${compiled.map((arg) => typeName(arg.type)).join(', ')}) is not supported yet`);
  }
  const [start, stop, step] = compiled.map((arg) => coerce(arg, type)) as [Compiled, Compiled, Compiled | undefined];
  const alias = (range.alias?.aliasname as string | undefined) ?? 'generate_series';
  const columnName = (range.alias?.colnames?.map(nameOf)?.[0] as string | undefined) ?? alias;
  return {
    plan: new SeriesNode(type, start, stop, step),
    columns: [{ qualifier: alias, name: columnName, type, typmod: -1, index: 0 }],
    qualifiers: new Set([alias]),
    pushed: [],
    correlated: (outer?.hitsUpward() ?? 0) > before,
  };
}

function derivedItem(planned: Planned, alias: string, names: string[] | undefined): FromItem {
  if (names !== undefined && names.length > planned.columns.length) throw new SqlError('42P10', `table "${alias}" has ${planned.columns.length} columns available but ${names.length} columns specified`);
  const columns = planned.columns.map((column, index) => ({ qualifier: alias, name: names?.[index] ?? column.name, type: column.type, typmod: column.typmod, index }));
  return { plan: planned.plan, columns, qualifiers: new Set([alias]), pushed: [], correlated: planned.correlated };
}

function findCte(ctx: QueryContext, name: string): { query: Node; columns: string[] | undefined; position: number; depth: number } | undefined {
  for (const [depth, map] of ctx.ctes.entries()) {
    const cte = map.get(name);
    if (cte !== undefined) return { ...cte, depth };
  }
  return undefined;
}

function planRangeVar(range: Node, outer: Scope | undefined, ctx: QueryContext): FromItem {
  const name = range.relname as string;
  const schema = range.schemaname as string | undefined;
  const alias = (range.alias?.aliasname as string | undefined) ?? name;
  if (schema === undefined) {
    const cte = findCte(ctx, name);
    if (cte !== undefined) {
      // A CTE reference is planned in the CTE's own context (it cannot see later CTEs).
      // It sees the CTEs before it in its own WITH, and the enclosing ones.
      const own = new Map([...ctx.ctes[cte.depth]!].filter(([, entry]) => entry.position < cte.position));
      const planned = planQuery(cte.query, outer, { ...ctx, ctes: [own, ...ctx.ctes.slice(cte.depth + 1)] });
      return derivedItem(planned, alias, range.alias?.colnames?.map(nameOf) ?? cte.columns);
    }
  }
  const virtual = virtualTable(schema, name);
  if (virtual !== undefined) return virtualItem(virtual, alias);
  const view = ctx.catalog.view(schema, name);
  if (view !== undefined) {
    // A view is its query, planned in place (it sees no CTEs of the query that uses it).
    const planned = planQuery(view, outer, { ...ctx, ctes: [] });
    return derivedItem(planned, alias, range.alias?.colnames?.map(nameOf));
  }
  const table = ctx.catalog.table(schema, name);
  if (table === undefined) throw new SqlError('42P01', `relation "${schema !== undefined ? `${schema}.` : ''}${name}" does not exist`);
  const types = table.columns.map((column) => columnType(column.type).type);
  const columns: ScopeColumn[] = table.columns.map((column, index) => {
    const { type, typmod } = columnType(column.type);
    return { qualifier: alias, name: column.name, type, typmod, index };
  });
  columns.push({ qualifier: alias, name: '.rowkey', type: Oid.bytea, typmod: -1, index: table.columns.length, hidden: true });
  const aliasNames = range.alias?.colnames?.map(nameOf) as string[] | undefined;
  if (aliasNames !== undefined) for (const [index, each] of aliasNames.entries()) if (columns[index] !== undefined) columns[index] = { ...columns[index]!, name: each };
  return { plan: new TableScanNode(table, types, { kind: 'seq' }, alias), columns, table: { def: table, alias, types }, qualifiers: new Set([alias]), pushed: [], correlated: false };
}

function virtualItem(virtual: VirtualTable, alias: string): FromItem {
  const columns = virtual.columns.map((column, index) => ({ qualifier: alias, name: column.name, type: column.type, typmod: -1, index }));
  return { plan: virtual.plan(), columns, qualifiers: new Set([alias]), pushed: [], correlated: false };
}

function planJoinExpr(join: Node, outer: Scope | undefined, ctx: QueryContext): FromItem {
  const left = planFromItem(join.larg, outer, ctx);
  const lateralScope = isLateral(join.rarg) ? new Scope(left.columns, outer) : undefined;
  const right = planFromItem(join.rarg, outer, ctx, lateralScope);
  const lateral = lateralScope !== undefined && reallyLateral(join.rarg, lateralScope, 0);
  const kind: JoinKind = join.jointype === 'JOIN_LEFT' ? 'left' : join.jointype === 'JOIN_RIGHT' ? 'right' : join.jointype === 'JOIN_FULL' ? 'full' : 'inner';
  if (join.jointype !== undefined && !['JOIN_INNER', 'JOIN_LEFT', 'JOIN_RIGHT', 'JOIN_FULL'].includes(join.jointype)) throw new SqlError('0A000', `${join.jointype} is not supported`);
  const leftItem = finishItem(left, outer, ctx);
  const rightItem = finishItem(right, outer, ctx);
  const columns: ScopeColumn[] = [...left.columns, ...right.columns.map((column) => ({ ...column, index: column.index + left.plan.width }))];
  let quals: Node[] = conjuncts(join.quals);
  const usingNames: string[] = join.usingClause?.map(nameOf) ?? [];
  if (join.isNatural) {
    for (const column of left.columns) if (!column.hidden && right.columns.some((other) => other.name === column.name && !other.hidden)) usingNames.push(column.name);
  }
  let merged = columns;
  if (usingNames.length > 0) {
    quals = [...quals];
    const hiddenRight = new Set<number>();
    const extra: ScopeColumn[] = [];
    for (const name of usingNames) {
      const l = left.columns.find((column) => column.name === name && !column.hidden);
      const r = right.columns.find((column) => column.name === name && !column.hidden);
      if (l === undefined || r === undefined) throw new SqlError('42703', `column "${name}" specified in USING clause does not exist in ${l === undefined ? 'left' : 'right'} table`);
      hiddenRight.add(r.index + left.plan.width);
      quals.push({ A_Expr: { kind: 'AEXPR_OP', name: [{ String: { sval: '=' } }], lexpr: { '.resolved': l.index }, rexpr: { '.resolved': r.index + left.plan.width } } });
      void extra;
    }
    // The merged column answers to the unqualified name (the left one; for FULL joins PostgreSQL coalesces, done below).
    merged = columns.map((column) => (hiddenRight.has(column.index) ? { ...column, hidden: true, qualifier: column.qualifier } : column));
  }
  const scope = new Scope(merged, outer);
  const bind = bindContext(ctx, { noAggregates: 'JOIN conditions' });
  const compiled = quals.map((qual) => compileResolved(qual, scope, bind));
  const condition = andAll(compiled);
  let plan: PlanNode;
  const equi = splitEquiKeys(quals, compiled, scope, left.plan.width, bind);
  if (lateral) {
    if (kind !== 'inner' && kind !== 'left') throw new SqlError('42601', 'The combining JOIN type must be INNER or LEFT for a LATERAL reference.');
    plan = new LateralJoinNode(leftItem, rightItem, kind, condition);
  } else if (equi.leftKeys.length > 0) {
    const rightScopeShift = left.plan.width;
    const rightKeys = equi.rightKeys.map((key) => shiftExpr(key, rightScopeShift));
    plan = new HashJoinNode(leftItem, rightItem, kind, equi.leftKeys, rightKeys, equi.types, andAll(equi.residual));
  } else {
    plan = new NestedLoopNode(leftItem, rightItem, kind, condition);
  }
  const qualifiers = new Set([...left.qualifiers, ...right.qualifiers]);
  if (join.alias?.aliasname !== undefined) {
    const alias = join.alias.aliasname as string;
    return { plan, columns: merged.map((column) => ({ ...column, qualifier: alias })), qualifiers: new Set([alias]), pushed: [], correlated: left.correlated || right.correlated };
  }
  return { plan, columns: merged, qualifiers, pushed: [], correlated: left.correlated || right.correlated };
}

/** Compiles a condition; `.resolved` nodes (from USING) are direct column positions. */
function compileResolved(node: Node, scope: Scope, bind: BindContext): Compiled {
  if (node.A_Expr?.lexpr?.['.resolved'] !== undefined) {
    const l = scope.columns.find((column) => column.index === node.A_Expr.lexpr['.resolved'])!;
    const r = scope.columns.find((column) => column.index === node.A_Expr.rexpr['.resolved'])!;
    return compileComparison('=', columnRef(l), columnRef(r));
  }
  return coerce(compileExpr(node, scope, bind, Oid.bool), Oid.bool);
}

/** A closure reading `row[index - shift]` instead of `row[index]`: the right side's own row. */
function shiftExpr(expr: Compiled, shift: number): Compiled {
  return { ...expr, fn: (row, env) => expr.fn(new Array(shift).concat(row), env) };
}

function andAll(exprs: Compiled[]): Compiled | undefined {
  if (exprs.length === 0) return undefined;
  if (exprs.length === 1) return exprs[0];
  return combineBool(exprs, true);
}

/** Finds `left = right` conjuncts whose sides come from opposite sides of a join. */
function splitEquiKeys(quals: Node[], compiled: Compiled[], scope: Scope, leftWidth: number, bind: BindContext): { leftKeys: Compiled[]; rightKeys: Compiled[]; types: TypeOid[]; residual: Compiled[] } {
  const leftKeys: Compiled[] = [];
  const rightKeys: Compiled[] = [];
  const types: TypeOid[] = [];
  const residual: Compiled[] = [];
  for (const [position, qual] of quals.entries()) {
    const sides = equalitySides(qual, scope, bind);
    if (sides !== undefined) {
      const [a, b, aCols, bCols] = sides;
      const aLeft = aCols.every((column) => column < leftWidth);
      const bLeft = bCols.every((column) => column < leftWidth);
      const aRight = aCols.length > 0 && aCols.every((column) => column >= leftWidth);
      const bRight = bCols.length > 0 && bCols.every((column) => column >= leftWidth);
      if (aCols.length > 0 && bCols.length > 0 && ((aLeft && bRight) || (aRight && bLeft)) && !a.async && !b.async) {
        const type = commonType([a.type, b.type], 'JOIN');
        const [l, r] = aLeft ? [a, b] : [b, a];
        leftKeys.push(coerce(l, type));
        rightKeys.push(coerce(r, type));
        types.push(type);
        continue;
      }
    }
    residual.push(compiled[position]!);
  }
  return { leftKeys, rightKeys, types, residual };
}

/** For `x = y`: both sides compiled, with the scope columns each reads. */
function equalitySides(qual: Node, scope: Scope, bind: BindContext): [Compiled, Compiled, number[], number[]] | undefined {
  const expr = qual.A_Expr;
  if (expr === undefined || expr.kind !== 'AEXPR_OP' || expr.name?.[expr.name.length - 1]?.String?.sval !== '=' || expr.lexpr === undefined) return undefined;
  if (expr.lexpr['.resolved'] !== undefined) {
    const l = scope.columns.find((column) => column.index === expr.lexpr['.resolved'])!;
    const r = scope.columns.find((column) => column.index === expr.rexpr['.resolved'])!;
    return [columnRef(l), columnRef(r), [l.index], [r.index]];
  }
  const aCols = columnsOf(expr.lexpr, scope);
  const bCols = columnsOf(expr.rexpr, scope);
  if (aCols === undefined || bCols === undefined) return undefined;
  try {
    const a = compileExpr(expr.lexpr, scope, bind);
    const b = compileExpr(expr.rexpr, scope, bind, a.type);
    if (a.type === Oid.unknown || b.type === Oid.unknown) return undefined;
    commonType([a.type, b.type], 'JOIN');
    return [a, b, aCols, bCols];
  } catch {
    return undefined;
  }
}

/** The scope positions an expression reads; undefined if it has subqueries or outer references (not movable). */
function columnsOf(node: Node, scope: Scope): number[] | undefined {
  const found: number[] = [];
  let movable = true;
  const walk = (value: unknown): void => {
    if (!movable) return;
    if (Array.isArray(value)) for (const item of value) walk(item);
    else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (record.SubLink !== undefined || record.FuncCall !== undefined && isAggregateName(((record.FuncCall as Node).funcname as Node[]).at(-1).String.sval)) {
        movable = false;
        return;
      }
      if (record.ColumnRef !== undefined) {
        const fields = (record.ColumnRef as Node).fields as Node[];
        if (fields.some((field) => field.A_Star !== undefined)) {
          movable = false;
          return;
        }
        const names = fields.map(nameOf);
        const name = names[names.length - 1]!;
        const qualifier = names.length >= 2 ? names[names.length - 2] : undefined;
        const matches = scope.columns.filter((column) => column.name === name && (qualifier === undefined ? !column.hidden : column.qualifier === qualifier));
        if (matches.length !== 1) {
          movable = false; // ambiguous or outer: leave it where it is
          return;
        }
        found.push(matches[0]!.index);
        return;
      }
      for (const child of Object.values(record)) walk(child);
    }
  };
  walk(node);
  return movable ? found : undefined;
}

/** Pushed conjuncts of one item: an access path for a base table, then a filter (PL1). */
function finishItem(item: FromItem, outer: Scope | undefined, ctx: QueryContext): PlanNode {
  if (item.pushed.length === 0) return ctx.lock !== undefined && item.table !== undefined ? new LockRowsNode(item.plan, item.table.def, item.table.types, ctx.lock, undefined) : item.plan;
  const scope = new Scope(item.columns, outer);
  const bind = bindContext(ctx, { noAggregates: 'WHERE' });
  const compiled = item.pushed.map((node) => coerce(compileExpr(node, scope, bind, Oid.bool), Oid.bool));
  for (const expr of compiled) if (expr.type !== Oid.bool) throw new SqlError('42804', `argument of WHERE must be type boolean, not type ${typeName(expr.type)}`);
  let plan = item.plan;
  if (item.table !== undefined) {
    const access = chooseAccess(item.table.def, item.table.types, item.pushed, scope, bind);
    if (access.kind !== 'seq') plan = new TableScanNode(item.table.def, item.table.types, access, item.table.alias);
  }
  const predicate = andAll(compiled)!;
  const filtered = new FilterNode(plan, predicate, 'pushed conditions');
  if (ctx.lock !== undefined && item.table !== undefined) return new LockRowsNode(filtered, item.table.def, item.table.types, ctx.lock, predicate);
  return filtered;
}

// ---------------------------------------------------------------- access paths

interface Bound {
  column: number;
  op: '=' | '<' | '<=' | '>' | '>=';
  expr: Compiled;
}

/** `column op constant-or-parameter` conjuncts, with the column's type (no implicit conversion of the column). */
function indexableBounds(nodes: Node[], scope: Scope, bind: BindContext, types: TypeOid[]): Bound[] {
  const bounds: Bound[] = [];
  const flip: Record<string, Bound['op']> = { '=': '=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
  for (const node of nodes) {
    const expr = node.A_Expr;
    if (expr?.kind === 'AEXPR_BETWEEN' && expr.lexpr?.ColumnRef !== undefined) {
      const column = compileExpr(expr.lexpr, scope, bind);
      if (column.column === undefined) continue;
      const [lowNode, highNode] = expr.rexpr.List.items as [Node, Node];
      const low = boundValue(lowNode, scope, bind, types[column.column]!);
      const high = boundValue(highNode, scope, bind, types[column.column]!);
      if (low !== undefined) bounds.push({ column: column.column, op: '>=', expr: low });
      if (high !== undefined) bounds.push({ column: column.column, op: '<=', expr: high });
      continue;
    }
    if (expr?.kind !== 'AEXPR_OP' || expr.lexpr === undefined) continue;
    const op = expr.name[expr.name.length - 1].String.sval as string;
    if (flip[op] === undefined) continue;
    for (const [columnNode, valueNode, actual] of [
      [expr.lexpr, expr.rexpr, op],
      [expr.rexpr, expr.lexpr, flip[op]],
    ] as Array<[Node, Node, Bound['op']]>) {
      if (columnNode.ColumnRef === undefined) continue;
      let column: Compiled;
      try {
        column = compileExpr(columnNode, scope, bind);
      } catch {
        continue;
      }
      if (column.column === undefined) continue;
      const value = boundValue(valueNode, scope, bind, types[column.column]!);
      if (value !== undefined) bounds.push({ column: column.column, op: actual, expr: value });
    }
  }
  return bounds;
}

/** A constant or parameter usable as an index bound on a column of `type` (same type after conversion only). */
function boundValue(node: Node, scope: Scope, bind: BindContext, type: TypeOid): Compiled | undefined {
  if (type === Oid.numeric) return undefined; // stored as text: no order-preserving key yet
  let expr: Compiled;
  try {
    expr = compileExpr(node, new Scope([], undefined), bind, type);
  } catch {
    return undefined;
  }
  if (expr.constant === undefined && expr.param === undefined) return undefined;
  if (expr.type === type) return expr;
  // Integer constants bound to a wider or narrower integer column compare as the column's type only when exact.
  const exactInteger = (from: TypeOid): boolean => from === Oid.int2 || from === Oid.int4 || from === Oid.int8;
  if (exactInteger(expr.type) && exactInteger(type) && expr.constant !== undefined) {
    try {
      return coerce(expr, type);
    } catch {
      return undefined;
    }
  }
  if (exactInteger(expr.type) && exactInteger(type) && expr.param !== undefined) {
    // A parameter of another integer type (clients often bind int8): converted at execution;
    // a value outside the column's range gives no bound (the scan reads more, the filter decides).
    const from = expr.type;
    const fn = expr.fn;
    return {
      ...expr,
      type,
      fn: (row, env) => {
        const value = fn(row, env);
        if (value === null) return null;
        try {
          return castValue(value, from, type, -1, false);
        } catch {
          return NO_BOUND;
        }
      },
    };
  }
  void scope;
  return undefined;
}

/** An index bound as EXPLAIN shows it, as PostgreSQL does: `$1`, `5`, `'abc'::text`. */
function boundText(expr: Compiled): string {
  if (expr.param !== undefined) return `$${expr.param}`;
  const value = expr.constant?.value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'::${typeName(expr.type)}`;
  if (typeof value === 'boolean') return String(value);
  return '$';
}

function rangeFor(columns: number[], bounds: Bound[], types: TypeOid[], names: string[]): KeyRange | undefined {
  const equal: Compiled[] = [];
  const describe: string[] = [];
  for (const column of columns) {
    const eq = bounds.find((bound) => bound.column === column && bound.op === '=');
    if (eq === undefined) break;
    equal.push(eq.expr);
    describe.push(`(${names[column]} = ${boundText(eq.expr)})`);
  }
  const next = columns[equal.length];
  let lower: KeyRange['lower'];
  let upper: KeyRange['upper'];
  if (next !== undefined) {
    for (const bound of bounds) {
      if (bound.column !== next) continue;
      if ((bound.op === '>' || bound.op === '>=') && lower === undefined) lower = { expr: bound.expr, inclusive: bound.op === '>=' };
      if ((bound.op === '<' || bound.op === '<=') && upper === undefined) upper = { expr: bound.expr, inclusive: bound.op === '<=' };
    }
    if (lower !== undefined) describe.push(`(${names[next]} ${lower.inclusive ? '>=' : '>'} ${boundText(lower.expr)})`);
    if (upper !== undefined) describe.push(`(${names[next]} ${upper.inclusive ? '<=' : '<'} ${boundText(upper.expr)})`);
  }
  if (equal.length === 0 && lower === undefined && upper === undefined) return undefined;
  return { equal, lower, upper, types: columns.map((column) => types[column]!), describe: describe.length > 1 ? `(${describe.join(' AND ')})` : describe.join('') };
}

function chooseAccess(table: TableDef, types: TypeOid[], nodes: Node[], scope: Scope, bind: BindContext): Access {
  const bounds = indexableBounds(nodes, scope, bind, types);
  if (bounds.length === 0) return { kind: 'seq' };
  const names = table.columns.map((column) => column.name);
  const score = (range: KeyRange | undefined, columns: number[]): number => (range === undefined ? 0 : range.equal.length * 4 + (range.equal.length === columns.length ? 8 : 0) + (range.lower !== undefined ? 1 : 0) + (range.upper !== undefined ? 1 : 0));
  let best: Access = { kind: 'seq' };
  let bestScore = 0;
  if (table.primaryKey !== undefined) {
    const range = rangeFor(table.primaryKey, bounds, types, names);
    const value = score(range, table.primaryKey) + 0.5; // the primary key wins ties (no second lookup)
    if (range !== undefined && value > bestScore) {
      best = { kind: 'pk', range };
      bestScore = value;
    }
  }
  for (const index of table.indexes) {
    if (index.primary) continue;
    const range = rangeFor(index.columns, bounds, types, names);
    const value = score(range, index.columns);
    if (range !== undefined && value > bestScore) {
      best = { kind: 'index', index: index as IndexDef, range };
      bestScore = value;
    }
  }
  return best;
}

// ---------------------------------------------------------------- SELECT … FROM … WHERE …

interface FromResult {
  plan: PlanNode;
  scope: Scope;
  /** WHERE conjuncts not placed below (evaluated over the whole row). */
  remaining: Node[];
  correlated: boolean;
  /** The single base table read in key order, when there is exactly one FROM item. */
  ordered?: { table: TableDef; access: Access; offset: number } | undefined;
}

function planFrom(select: Node, outer: Scope | undefined, ctx: QueryContext): FromResult {
  const fromNodes = (select.fromClause ?? []) as Node[];
  const where = conjuncts(select.whereClause);
  if (fromNodes.length === 0) {
    const scope = new Scope([], outer);
    return { plan: new ValuesNode(0, [[]]), scope, remaining: where, correlated: false };
  }
  const items: FromItem[] = [];
  for (const node of fromNodes) {
    let lateralScope: Scope | undefined;
    if (isLateral(node) && items.length > 0) {
      let shift = 0;
      const before: ScopeColumn[] = [];
      for (const item of items) {
        before.push(...item.columns.map((column) => ({ ...column, index: column.index + shift })));
        shift += item.plan.width;
      }
      lateralScope = new Scope(before, outer);
    }
    const hitsBefore = lateralScope?.outerHits ?? 0;
    const item = planFromItem(node, outer, ctx, lateralScope);
    item.lateral = lateralScope !== undefined && reallyLateral(node, lateralScope, hitsBefore);
    items.push(item);
  }
  // Full-row scope: each item's columns shifted by the widths before it.
  const offsets: number[] = [];
  let width = 0;
  for (const item of items) {
    offsets.push(width);
    width += item.plan.width;
  }
  const columns = items.flatMap((item, position) => item.columns.map((column) => ({ ...column, index: column.index + offsets[position]! })));
  checkDuplicateAliases(items);
  const scope = new Scope(columns, outer);
  // Which item each conjunct needs, by the positions of the columns it reads.
  const itemOf = (column: number): number => {
    let found = 0;
    for (let position = 0; position < offsets.length; position++) if (column >= offsets[position]!) found = position;
    return found;
  };
  const joinConjuncts: Array<Array<{ node: Node; last: number; items: Set<number> }>> = items.map(() => []);
  const remaining: Node[] = [];
  for (const node of where) {
    const used = columnsOf(node, scope);
    if (used === undefined || used.length === 0) {
      remaining.push(node);
      continue;
    }
    const involved = new Set(used.map(itemOf));
    const last = Math.max(...involved);
    if (involved.size === 1) items[last]!.pushed.push(node);
    else joinConjuncts[last]!.push({ node, last, items: involved });
  }
  const bind = bindContext(ctx, { noAggregates: 'WHERE' });
  let plan = finishItem(items[0]!, outer, ctx);
  let correlated = items[0]!.correlated;
  for (let position = 1; position < items.length; position++) {
    const item = items[position]!;
    const right = finishItem(item, outer, ctx);
    correlated ||= item.correlated;
    const prefixWidth = offsets[position]!;
    const prefixScope = new Scope(columns.filter((column) => column.index < prefixWidth + item.plan.width), outer);
    const nodes = joinConjuncts[position]!.map((entry) => entry.node);
    const compiled = nodes.map((node) => coerce(compileExpr(node, prefixScope, bind, Oid.bool), Oid.bool));
    const equi = splitEquiKeys(nodes, compiled, prefixScope, prefixWidth, bind);
    if (item.lateral === true) {
      plan = new LateralJoinNode(plan, right, 'inner', andAll(compiled));
    } else if (equi.leftKeys.length > 0) {
      plan = new HashJoinNode(plan, right, 'inner', equi.leftKeys, equi.rightKeys.map((key) => shiftExpr(key, prefixWidth)), equi.types, andAll(equi.residual));
    } else {
      plan = new NestedLoopNode(plan, right, 'inner', andAll(compiled));
    }
  }
  let ordered: FromResult['ordered'];
  if (items.length === 1 && items[0]!.table !== undefined) {
    const scan = findScan(plan);
    if (scan !== undefined) ordered = { table: scan.table, access: scan.access, offset: 0 };
  }
  return { plan, scope, remaining, correlated: correlated, ordered };
}

function findScan(plan: PlanNode): TableScanNode | undefined {
  if (plan instanceof TableScanNode) return plan;
  if (plan instanceof FilterNode) return findScan(plan.child);
  return undefined;
}

function checkDuplicateAliases(items: FromItem[]): void {
  const seen = new Set<string>();
  for (const item of items) {
    for (const qualifier of item.qualifiers) {
      if (seen.has(qualifier)) throw new SqlError('42712', `table name "${qualifier}" specified more than once`);
      seen.add(qualifier);
    }
  }
}

// ---------------------------------------------------------------- the select list, aggregation, ORDER BY

interface TargetEntry {
  name: string;
  node: Node;
  /** Set when the entry is a plain column of the scope (for RowDescription's table OID). */
  source?: ScopeColumn;
}

function expandTargets(select: Node, scope: Scope, ctx: QueryContext): TargetEntry[] {
  const entries: TargetEntry[] = [];
  for (const target of (select.targetList ?? []) as Node[]) {
    const res = target.ResTarget;
    const fields = res.val?.ColumnRef?.fields as Node[] | undefined;
    const star = fields?.findIndex((field) => field.A_Star !== undefined) ?? -1;
    if (fields !== undefined && star >= 0) {
      const qualifier = star > 0 ? nameOf(fields[star - 1]) : undefined;
      const columns = scope.columns.filter((column) => !column.hidden && (qualifier === undefined || column.qualifier === qualifier));
      if (qualifier !== undefined && !scope.columns.some((column) => column.qualifier === qualifier)) throw new SqlError('42P01', `missing FROM-clause entry for table "${qualifier}"`);
      if (qualifier === undefined && columns.length === 0 && (select.fromClause ?? []).length === 0) throw new SqlError('42601', 'SELECT * with no tables specified is not valid');
      for (const column of columns) entries.push({ name: column.name, node: { '.column': column.index }, source: column });
      continue;
    }
    entries.push({ name: res.name ?? defaultName(res.val), node: res.val });
  }
  void ctx;
  return entries;
}

/** PostgreSQL's name for an unnamed select-list entry (its FigureColname). */
export function defaultName(node: Node): string {
  return figureName(node)[0];
}

/** The name and its strength: 2 for a column or function name, 1 for a cast's type, 0 for ?column?. */
function figureName(node: Node): [string, number] {
  if (node.ColumnRef !== undefined) {
    const fields = node.ColumnRef.fields as Node[];
    const last = fields[fields.length - 1];
    return last.String !== undefined ? [last.String.sval, 2] : ['?column?', 0];
  }
  if (node.FuncCall !== undefined) return [nameOf(node.FuncCall.funcname[node.FuncCall.funcname.length - 1]), 2];
  if (node.TypeCast !== undefined) {
    const inner = figureName(node.TypeCast.arg);
    if (inner[1] > 1) return inner;
    const names = node.TypeCast.typeName.names as Node[];
    return [nameOf(names[names.length - 1]), 1];
  }
  if (node.CaseExpr !== undefined) {
    const inner = node.CaseExpr.defresult !== undefined ? figureName(node.CaseExpr.defresult) : (['?column?', 0] as [string, number]);
    return inner[1] > 1 ? inner : ['case', 1];
  }
  if (node.CoalesceExpr !== undefined) return ['coalesce', 2];
  if (node.A_Indirection !== undefined) {
    // A subscript takes its array's name (FigureColname), unless a field name ends it.
    const last = (node.A_Indirection.indirection as Node[]).at(-1);
    return last?.String !== undefined ? [nameOf(last), 2] : figureName(node.A_Indirection.arg);
  }
  if (node.A_ArrayExpr !== undefined) return ['array', 2];
  if (node.A_Expr?.kind === 'AEXPR_NULLIF') return ['nullif', 2];
  if (node.MinMaxExpr !== undefined) return [node.MinMaxExpr.op === 'IS_GREATEST' ? 'greatest' : 'least', 2];
  if (node.SubLink?.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
  if (node.SubLink?.subLinkType === 'EXPR_SUBLINK') {
    const inner = node.SubLink.subselect.SelectStmt?.targetList?.[0]?.ResTarget;
    if (inner !== undefined) return inner.name !== undefined ? [inner.name, 2] : figureName(inner.val);
  }
  if (node.SQLValueFunction !== undefined) {
    const op = node.SQLValueFunction.op as string;
    return [op.replace('SVFOP_', '').replace(/_N$/, '').toLowerCase(), 2];
  }
  return ['?column?', 0];
}

function containsAggregate(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(containsAggregate);
  if (node === null || typeof node !== 'object') return false;
  const record = node as Record<string, Node>;
  if (record.SubLink !== undefined) return containsAggregate(record.SubLink.testexpr);
  if (record.FuncCall !== undefined) {
    const call = record.FuncCall;
    const name = nameOf(call.funcname[call.funcname.length - 1]).toLowerCase();
    if (call.agg_star || isAggregateName(name)) return true;
  }
  return Object.values(record).some(containsAggregate);
}

/** A structural fingerprint of a parse-tree node, ignoring source locations. */
function fingerprint(node: Node): string {
  return JSON.stringify(node, (key, value: unknown) => (key === 'location' ? undefined : value));
}

function planSimpleSelect(select: Node, outer: Scope | undefined, ctx: QueryContext, keepUnknown = false): Planned {
  if (select.distinctClause !== undefined && select.distinctClause.some((item: Node) => Object.keys(item).length > 0)) throw new SqlError('0A000', 'SELECT DISTINCT ON is not supported yet');
  if (select.lockingClause !== undefined) throw new SqlError('0A000', 'SELECT … FOR UPDATE/SHARE is handled by the session');
  if (select.intoClause !== undefined) throw new SqlError('0A000', 'SELECT INTO is not supported');
  const from = planFrom(select, outer, ctx);
  let plan = from.plan;
  const scope = from.scope;
  const bind = bindContext(ctx, { noAggregates: 'WHERE' });
  if (from.remaining.length > 0) {
    const compiled = from.remaining.map((node) => {
      const expr = coerce(compileExpr(node, scope, bind, Oid.bool), Oid.bool);
      if (expr.type !== Oid.bool) throw new SqlError('42804', `argument of WHERE must be type boolean, not type ${typeName(expr.type)}`);
      return expr;
    });
    const predicate = andAll(compiled)!;
    // A constant-false WHERE still plans the FROM (for errors) but reads nothing.
    plan = new FilterNode(plan, predicate, 'where');
  }
  const targets = expandTargets(select, scope, ctx);
  const grouped = select.groupClause !== undefined || containsAggregate(select.targetList) || containsAggregate(select.havingClause) || containsAggregate(select.sortClause?.map((item: Node) => item.SortBy.node));
  let outputScope = scope;
  let compileOutput: (node: Node, hint?: TypeOid) => Compiled;
  if (grouped) {
    const aggregation = planAggregation(select, plan, scope, targets, ctx);
    plan = aggregation.plan;
    outputScope = aggregation.scope;
    compileOutput = aggregation.compile;
  } else {
    const outputBind = bindContext(ctx, { noAggregates: 'this context' });
    compileOutput = (node, hint) => compileTarget(node, scope, outputBind, hint);
    if (select.havingClause !== undefined) throw new SqlError('42803', 'HAVING without GROUP BY or aggregates is not supported');
  }
  const exprs = targets.map((target) => compileOutput(target.node));
  const columns: OutputColumn[] = targets.map((target, index) => ({
    name: target.name,
    type: exprs[index]!.type === Oid.unknown && !keepUnknown ? Oid.text : exprs[index]!.type,
    typmod: exprs[index]!.typmod,
    tableOid: 0,
    columnNumber: 0,
  }));
  // An untyped literal column is text, unless a set operation will choose its type.
  const finalExprs = exprs.map((expr) => (expr.type === Oid.unknown && !keepUnknown ? coerce(expr, Oid.text) : expr));
  // ORDER BY keys: output columns by position or name, otherwise extra hidden expressions.
  const sortKeys: SortKey[] = [];
  const hidden: Compiled[] = [];
  const sortText: string[] = [];
  let ordered = true;
  for (const item of (select.sortClause ?? []) as Node[]) {
    const sort = item.SortBy;
    let position = outputPosition(sort.node, columns);
    if (position === undefined) {
      const index = targets.findIndex((target) => fingerprint(target.node) === fingerprint(sort.node));
      if (index >= 0) position = index;
    }
    if (position === undefined) {
      if (select.distinctClause !== undefined) throw new SqlError('42P10', 'for SELECT DISTINCT, ORDER BY expressions must appear in select list');
      const expr = compileOutput(sort.node);
      position = finalExprs.length + hidden.length;
      hidden.push(expr);
      sortKeys.push(sortKey(sort, position, expr.type));
      ordered = false;
    } else {
      sortKeys.push(sortKey(sort, position, columns[position]!.type));
    }
    sortText.push(defaultName(sort.node));
  }
  plan = new ProjectNode(plan, [...finalExprs, ...hidden]);
  if (select.distinctClause !== undefined) plan = new DistinctNode(plan, columns.map((column) => column.type), columns.length);
  if (sortKeys.length > 0 && !(ordered && !grouped && select.distinctClause === undefined && sortMatchesAccess(sortKeys, finalExprs, from))) plan = new SortNode(plan, sortKeys, sortText.join(', '));
  plan = limitOf(select, plan, outputScope, ctx);
  if (hidden.length > 0) {
    const width = finalExprs.length;
    plan = new ProjectNode(plan, Array.from({ length: width }, (_, index) => ({ type: columns[index]!.type, typmod: -1, async: false, fn: (row: unknown[]) => row[index] ?? null, column: index })) as Compiled[]);
  }
  for (const [index, target] of targets.entries()) {
    const source = target.source ?? (finalExprs[index]!.column !== undefined ? scope.columns.find((column) => column.index === finalExprs[index]!.column) : undefined);
    if (source !== undefined && from.ordered !== undefined && source.index < from.ordered.table.columns.length && !grouped) {
      columns[index]!.tableOid = from.ordered.table.id;
      columns[index]!.columnNumber = source.index + 1;
    }
  }
  return { plan, columns, correlated: from.correlated };
}

/** Whether the rows already come in the ORDER BY's order (a single table read by its key or an index). */
function sortMatchesAccess(keys: SortKey[], exprs: Compiled[], from: FromResult): boolean {
  if (from.ordered === undefined) return false;
  const { table, access } = from.ordered;
  const keyColumns = access.kind === 'index' ? access.index.columns : access.kind === 'pk' || access.kind === 'seq' ? table.primaryKey : undefined;
  if (keyColumns === undefined) return false;
  if (keys.length > keyColumns.length) return false;
  const equalPrefix = access.kind === 'seq' ? 0 : access.range.equal.length;
  // Key columns fixed by equality may be skipped in the ORDER BY.
  let position = 0;
  for (const key of keys) {
    if (key.descending || key.nullsFirst) return false;
    const column = exprs[key.column]?.column;
    if (column === undefined) return false;
    while (position < equalPrefix && keyColumns[position] !== column) position++;
    if (keyColumns[position] !== column) return false;
    position++;
  }
  return true;
}

function compileTarget(node: Node, scope: Scope, bind: BindContext, hint?: TypeOid): Compiled {
  if (node['.column'] !== undefined) {
    const column = scope.columns.find((each) => each.index === node['.column'])!;
    return columnRef(column);
  }
  return compileExpr(node, scope, bind, hint);
}

/** GROUP BY and aggregates: an Aggregate node, then a scope in which output expressions read its slots. */
function planAggregation(select: Node, input: PlanNode, scope: Scope, targets: TargetEntry[], ctx: QueryContext): { plan: PlanNode; scope: Scope; compile: (node: Node, hint?: TypeOid) => Compiled } {
  const inputBind = bindContext(ctx, { noAggregates: 'GROUP BY' });
  const groupNodes: Node[] = [];
  for (const item of (select.groupClause ?? []) as Node[]) {
    if (item.GroupingSet !== undefined) throw new SqlError('0A000', 'GROUPING SETS, ROLLUP and CUBE are not supported yet');
    // GROUP BY 1 and GROUP BY alias name select-list entries.
    const constant = item.A_Const;
    if (constant?.ival !== undefined) {
      const position = constant.ival.ival as number;
      if (position < 1 || position > targets.length) throw new SqlError('42P10', `GROUP BY position ${position} is not in select list`);
      groupNodes.push(targets[position - 1]!.node);
      continue;
    }
    const fields = item.ColumnRef?.fields as Node[] | undefined;
    if (fields?.length === 1 && fields[0].String !== undefined) {
      const name = nameOf(fields[0]);
      const inScope = scope.columns.some((column) => column.name === name && !column.hidden);
      const target = targets.find((entry) => entry.name === name);
      if (!inScope && target !== undefined) {
        groupNodes.push(target.node);
        continue;
      }
    }
    groupNodes.push(item);
  }
  const groupExprs = groupNodes.map((node) => compileTarget(node, scope, inputBind));
  const groupPrints = groupNodes.map((node) => (node['.column'] !== undefined ? `col:${node['.column']}` : fingerprint(node)));
  const groupColumns = groupExprs.map((expr) => expr.column);
  const calls: AggregateCall[] = [];
  const callPrints: string[] = [];
  const aggScope = new Scope([], scope.parent);
  // In the output, a group key or an aggregate call reads its slot of the Aggregate node's row.
  const slot = (index: number, type: TypeOid, typmod: number): Compiled => ({ type, typmod, async: false, fn: (row) => row[index] ?? null });
  const intercept = (node: Node): Compiled | undefined => {
    const print = node['.column'] !== undefined ? `col:${node['.column']}` : fingerprint(node);
    const group = groupPrints.indexOf(print);
    if (group >= 0) return slot(group, groupExprs[group]!.type, groupExprs[group]!.typmod);
    if (node.ColumnRef !== undefined || node['.column'] !== undefined) {
      // A plain column: allowed if it is a group key (by position), else 42803.
      let column: Compiled;
      try {
        column = node['.column'] !== undefined ? compileTarget(node, scope, inputBind) : compileExpr(node, scope, inputBind);
      } catch (error) {
        if (error instanceof SqlError && error.code === '42703') return undefined; // an outer reference: resolve normally
        throw error;
      }
      if (column.column === undefined) return undefined; // outer reference
      const at = groupColumns.indexOf(column.column);
      if (at >= 0) return slot(at, groupExprs[at]!.type, groupExprs[at]!.typmod);
      const source = scope.columns.find((each) => each.index === column.column)!;
      throw new SqlError('42803', `column "${source.qualifier !== undefined ? `${source.qualifier}.` : ''}${source.name}" must appear in the GROUP BY clause or be used in an aggregate function`);
    }
    const call = node.FuncCall;
    if (call !== undefined) {
      const name = nameOf(call.funcname[call.funcname.length - 1]).toLowerCase();
      if (call.agg_star || isAggregateName(name)) {
        if (call.over !== undefined) throw new SqlError('0A000', 'window functions are not supported yet');
        const existing = callPrints.indexOf(print);
        if (existing >= 0) return slot(groupExprs.length + existing, calls[existing]!.spec.type, -1);
        const argBind = bindContext(ctx, { noAggregates: 'aggregate function calls' });
        if (containsAggregate(call.args)) throw new SqlError('42803', 'aggregate function calls cannot be nested');
        const args = ((call.args ?? []) as Node[]).map((arg) => compileExpr(arg, scope, argBind));
        const { spec, argTypes } = aggregate(name, args, call.agg_star === true);
        const coerced = args.map((arg, index) => (argTypes[index] !== undefined ? coerce(arg, argTypes[index]!) : arg));
        const filter = call.agg_filter !== undefined ? coerce(compileExpr(call.agg_filter, scope, argBind, Oid.bool), Oid.bool) : undefined;
        if (call.agg_order !== undefined && name !== 'string_agg') throw new SqlError('0A000', 'ORDER BY inside an aggregate is not supported yet');
        calls.push({ spec, args: coerced, distinct: call.agg_distinct === true, filter, argTypes: argTypes.length > 0 ? argTypes : coerced.map((arg) => arg.type) });
        callPrints.push(print);
        return slot(groupExprs.length + calls.length - 1, spec.type, -1);
      }
    }
    return undefined;
  };
  const outputBind = bindContext(ctx, { intercept });
  const compile = (node: Node, hint?: TypeOid): Compiled => {
    const direct = intercept(node);
    if (direct !== undefined) return direct;
    return compileExpr(node, aggScope, outputBind, hint);
  };
  // Bind the select list and HAVING first so every aggregate call is known before the node is built.
  const having = select.havingClause !== undefined ? coerce(compile(select.havingClause, Oid.bool), Oid.bool) : undefined;
  const bound = new Map<Node, Compiled>();
  for (const target of targets) bound.set(target.node, compile(target.node));
  for (const item of (select.sortClause ?? []) as Node[]) {
    const position = outputPosition(item.SortBy.node, targets.map((target) => ({ name: target.name, type: 0, typmod: -1, tableOid: 0, columnNumber: 0 })));
    if (position === undefined) compile(item.SortBy.node);
  }
  let plan: PlanNode = new AggregateNode(input, groupExprs, calls);
  if (having !== undefined) plan = new FilterNode(plan, having, 'having');
  return { plan, scope: aggScope, compile: (node, hint) => bound.get(node) ?? compile(node, hint) };
}

export { constantExpr, planFrom, conjuncts, finishItem, chooseAccess, andAll, columnRef, bindContext };
export type { QueryContext, FromItem };
