// INSERT, UPDATE, DELETE and SELECT … FOR UPDATE/SHARE as executor nodes. They run in the
// statement's transaction; rows to change are collected before any is changed, so a write
// never disturbs the scan that found it.
//
// Invariants:
//  D1. Under READ COMMITTED, UPDATE, DELETE and FOR UPDATE re-check their WHERE on the
//      newest version of a row they had to wait for (PostgreSQL's EvalPlanQual), and skip
//      the row if it no longer qualifies; under REPEATABLE READ and SERIALIZABLE a row
//      changed since the snapshot is a serialization failure (40001, from the engine).
//  D2. A row is written only after every CHECK constraint and column type holds for it.

import { parseSync } from 'libpg-query';
import { SqlError } from '../pgwire/session.js';
import type { TableDef } from '../engine/database.js';
import type { Value } from '../engine/codec.js';
import { Oid, type TypeOid } from './oid.js';
import { coerce, compileExpr, Scope, type BindContext, type Compiled, type Env, type Node, type ScopeColumn } from './expr.js';
import { andAll, bindContext, columnRef, conjuncts, defaultName as defaultNameOf, newQueryContext, planFrom, planQuery, type OutputColumn, type QueryContext } from './planner.js';
import { evaluate, storedRow, type ExecContext, type ExplainLine, type PlanNode } from './exec.js';
import { assignmentCast, columnType, textOut, toStorage, typeName, type Datum } from './typesys.js';

export interface Counter {
  count: number;
}

export interface DmlPlan {
  plan: PlanNode;
  columns: OutputColumn[] | undefined;
  counter: Counter;
}

function bindOf(ctx: QueryContext, noAggregates: string): BindContext {
  return bindContext(ctx, { noAggregates });
}

function tableOf(ctx: QueryContext, relation: Node): TableDef {
  const table = ctx.catalog.table(relation.schemaname, relation.relname);
  if (table === undefined) throw new SqlError('42P01', `relation "${relation.relname}" does not exist`);
  return table;
}

/** The scope of a table's own row (values then the hidden row key). */
export function tableScope(table: TableDef, alias: string, outer?: Scope): Scope {
  const columns: ScopeColumn[] = table.columns.map((column, index) => {
    const { type, typmod } = columnType(column.type);
    return { qualifier: alias, name: column.name, type, typmod, index };
  });
  columns.push({ qualifier: alias, name: '.rowkey', type: Oid.bytea, typmod: -1, index: table.columns.length, hidden: true });
  return new Scope(columns, outer);
}

/** A column's DEFAULT as a compiled expression (NULL when it has none). */
function defaultExpr(table: TableDef, column: number, bind: BindContext): Compiled {
  const def = table.columns[column]!;
  const { type, typmod } = columnType(def.type);
  if (def.default === null) return { type, typmod, fn: () => null, async: false, constant: { value: null } };
  const tree = parseSync(`SELECT ${def.default}`) as { stmts: Array<{ stmt: Node }> };
  const node = tree.stmts[0]!.stmt.SelectStmt.targetList[0].ResTarget.val;
  return assignTo(compileExpr(node, new Scope([]), bind, type), type, typmod, def.name);
}

/** Assignment conversion to a column's type (42804 when there is none). */
export function assignTo(expr: Compiled, type: TypeOid, typmod: number, column: string): Compiled {
  if (expr.type === type && typmod < 0) return expr;
  if (expr.type !== Oid.unknown && !assignmentCast(expr.type, type)) {
    throw new SqlError('42804', `column "${column}" is of type ${typeName(type)} but expression is of type ${typeName(expr.type)}`, { hint: 'You will need to rewrite or cast the expression.' });
  }
  return coerce(expr, type, typmod, false);
}

/** CHECK constraints compiled over the table's row. */
function checksOf(table: TableDef, bind: BindContext): Array<{ name: string; expr: Compiled }> {
  const scope = tableScope(table, table.name);
  return table.checks.map((check) => {
    const tree = parseSync(`SELECT ${check.expression}`) as { stmts: Array<{ stmt: Node }> };
    const node = tree.stmts[0]!.stmt.SelectStmt.targetList[0].ResTarget.val;
    return { name: check.name, expr: coerce(compileExpr(node, scope, bind, Oid.bool), Oid.bool) };
  });
}

/** Writes rows into one table: defaults, type checks, CHECK constraints, storage form (D2). */
export class TableWriter {
  readonly types: TypeOid[];
  private readonly checks: Array<{ name: string; expr: Compiled }>;
  private readonly defaults: Array<Compiled | undefined>;

  constructor(
    readonly table: TableDef,
    bind: BindContext,
    /** Table columns the caller supplies (the rest take their defaults). */
    readonly targets: number[],
  ) {
    this.types = table.columns.map((column) => columnType(column.type).type);
    this.checks = checksOf(table, bind);
    this.defaults = table.columns.map((_, column) => (targets.includes(column) ? undefined : defaultExpr(table, column, bind)));
  }

  /** The full row for supplied values (in target order), with defaults filled in. */
  async complete(supplied: Datum[], env: Env): Promise<Datum[]> {
    const row: Datum[] = new Array(this.table.columns.length).fill(null);
    for (const [position, column] of this.targets.entries()) row[column] = supplied[position]!;
    for (const [column, expr] of this.defaults.entries()) if (expr !== undefined) row[column] = await evaluate(expr, [], env);
    return row;
  }

  async check(row: Datum[], env: Env): Promise<void> {
    for (const check of this.checks) {
      if ((await evaluate(check.expr, row, env)) === false) {
        throw new SqlError('23514', `new row for relation "${this.table.name}" violates check constraint "${check.name}"`, { detail: `Failing row contains (${row.map((value, column) => (value === null ? 'null' : displayValue(this.types[column]!, value))).join(', ')}).` });
      }
    }
  }

  storage(row: Datum[]): Value[] {
    return row.map((value, column) => (value === null ? null : toStorage(this.types[column]!, value)));
  }

  async insert(ctx: ExecContext, row: Datum[], env: Env): Promise<Uint8Array> {
    await this.check(row, env);
    const written = await ctx.tx.insert(this.table, this.storage(row));
    return written.key;
  }

  /** Inserts rows in one batch of tree writes (COPY); same checks as insert(). */
  async insertMany(ctx: ExecContext, rows: Datum[][], env: Env): Promise<void> {
    for (const row of rows) await this.check(row, env);
    await ctx.tx.insertMany(this.table, rows.map((row) => this.storage(row)));
  }
}

const displayValue = (type: TypeOid, value: Datum): string => textOut(type, value);

function returningOf(node: Node | undefined, scope: Scope, bind: BindContext): { exprs: Compiled[]; columns: OutputColumn[] } | undefined {
  const list = (node?.exprs ?? node) as Node[] | undefined;
  if (list === undefined || list.length === 0) return undefined;
  const exprs: Compiled[] = [];
  const columns: OutputColumn[] = [];
  for (const target of list) {
    const res = target.ResTarget;
    const fields = res.val?.ColumnRef?.fields as Node[] | undefined;
    if (fields !== undefined && fields.some((field) => field.A_Star !== undefined)) {
      for (const column of scope.columns) {
        if (column.hidden) continue;
        exprs.push(columnRef(column));
        columns.push({ name: column.name, type: column.type, typmod: column.typmod, tableOid: 0, columnNumber: column.index + 1 });
      }
      continue;
    }
    const expr = compileExpr(res.val, scope, bind);
    exprs.push(expr.type === Oid.unknown ? coerce(expr, Oid.text) : expr);
    columns.push({ name: res.name ?? defaultNameOf(res.val), type: expr.type === Oid.unknown ? Oid.text : expr.type, typmod: expr.typmod, tableOid: 0, columnNumber: 0 });
  }
  return { exprs, columns };
}


async function project(exprs: Compiled[], row: Datum[], env: Env): Promise<Datum[]> {
  const out: Datum[] = [];
  for (const expr of exprs) out.push(await evaluate(expr, row, env));
  return out;
}

// ---------------------------------------------------------------- INSERT

class InsertNode implements PlanNode {
  readonly width: number;
  constructor(
    private readonly writer: TableWriter,
    private readonly source: PlanNode,
    private readonly returning: Compiled[] | undefined,
    private readonly counter: Counter,
  ) {
    this.width = returning?.length ?? 0;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    this.counter.count = 0;
    for await (const supplied of this.source.rows(ctx, env)) {
      const row = await this.writer.complete(supplied, env);
      const key = await this.writer.insert(ctx, row, env);
      this.counter.count++;
      if (this.returning !== undefined) yield await project(this.returning, [...row, key], env);
    }
  }

  explain(): ExplainLine {
    return { title: `Insert on ${this.writer.table.name}`, children: [this.source.explain()] };
  }
}

export function planInsert(body: Node, ctx: QueryContext): DmlPlan {
  if (body.onConflictClause !== undefined) throw new SqlError('0A000', 'INSERT … ON CONFLICT is not supported yet');
  if (body.withClause !== undefined) throw new SqlError('0A000', 'WITH … INSERT is not supported yet');
  const table = tableOf(ctx, body.relation);
  const bind = bindOf(ctx, 'VALUES');
  let targets: number[];
  if (body.cols !== undefined) {
    targets = (body.cols as Node[]).map((col) => {
      const name = col.ResTarget.name as string;
      if (col.ResTarget.indirection !== undefined) throw new SqlError('0A000', 'INSERT into subfields or array elements is not supported');
      const index = table.columns.findIndex((column) => column.name === name);
      if (index < 0) throw new SqlError('42703', `column "${name}" of relation "${table.name}" does not exist`);
      return index;
    });
    const seen = new Set<number>();
    for (const target of targets) {
      if (seen.has(target)) throw new SqlError('42701', `column "${table.columns[target]!.name}" specified more than once`);
      seen.add(target);
    }
  } else {
    // Without a column list, the values fill the first columns; the rest take their defaults.
    const select = body.selectStmt?.SelectStmt;
    const width = select?.valuesLists !== undefined ? Math.max(...(select.valuesLists as Node[]).map((list) => (list.List.items as Node[]).length)) : table.columns.length;
    targets = table.columns.map((_, index) => index).slice(0, Math.min(width, table.columns.length));
    if (width > table.columns.length) throw new SqlError('42601', 'INSERT has more expressions than target columns');
  }
  const types = targets.map((column) => columnType(table.columns[column]!.type));
  let source: PlanNode;
  const select = body.selectStmt?.SelectStmt;
  if (select === undefined) {
    // INSERT … DEFAULT VALUES
    source = { width: 0, rows: async function* () { yield []; }, explain: () => ({ title: 'Result' }) };
    targets = [];
  } else if (select.valuesLists !== undefined && select.op === 'SETOP_NONE' && select.sortClause === undefined && select.limitCount === undefined) {
    const scope = new Scope([]);
    const rows = (select.valuesLists as Node[]).map((list) => {
      const items = list.List.items as Node[];
      if (items.length > targets.length) throw new SqlError('42601', 'INSERT has more expressions than target columns');
      if (items.length < targets.length) throw new SqlError('42601', 'INSERT has more target columns than expressions');
      return items.map((item, position) => {
        const column = targets[position]!;
        if (item.SetToDefault !== undefined) return defaultExpr(table, column, bind);
        return assignTo(compileExpr(item, scope, bind, types[position]!.type), types[position]!.type, types[position]!.typmod, table.columns[column]!.name);
      });
    });
    source = {
      width: targets.length,
      rows: async function* (_ctx: ExecContext, env: Env) {
        for (const exprs of rows) yield await project(exprs, [], env);
      },
      explain: () => ({ title: `Values Scan  (rows=${rows.length})` }),
    };
  } else {
    const planned = planQuery(body.selectStmt, undefined, ctx);
    if (planned.columns.length > targets.length) throw new SqlError('42601', 'INSERT has more expressions than target columns');
    const scope = new Scope(planned.columns.map((column, index) => ({ qualifier: undefined, name: column.name, type: column.type, typmod: column.typmod, index })));
    const exprs = planned.columns.map((_, position) => assignTo(columnRef(scope.columns[position]!), types[position]!.type, types[position]!.typmod, table.columns[targets[position]!]!.name));
    targets = targets.slice(0, planned.columns.length);
    const inner = planned.plan;
    source = {
      width: exprs.length,
      rows: async function* (execCtx: ExecContext, env: Env) {
        // The source is read completely first, so INSERT INTO t SELECT … FROM t sees only old rows.
        const buffered: Datum[][] = [];
        for await (const row of inner.rows(execCtx, env)) buffered.push(await project(exprs, row, env));
        yield* buffered;
      },
      explain: () => inner.explain(),
    };
  }
  const writer = new TableWriter(table, bind, targets);
  const counter: Counter = { count: 0 };
  const returning = returningOf(body.returningClause ?? body.returningList, tableScope(table, body.relation.alias?.aliasname ?? table.name), bindOf(ctx, 'RETURNING'));
  return { plan: new InsertNode(writer, source, returning?.exprs, counter), columns: returning?.columns, counter };
}

// ---------------------------------------------------------------- UPDATE / DELETE

/** The rows a WHERE selects from one table, with their row keys (planned like a SELECT, with index access). */
function targetScan(body: Node, ctx: QueryContext): { plan: PlanNode; table: TableDef; scope: Scope; recheck: Compiled | undefined } {
  const table = tableOf(ctx, body.relation);
  if (body.fromClause !== undefined && body.fromClause.length > 0) throw new SqlError('0A000', 'UPDATE … FROM is not supported yet');
  if (body.usingClause !== undefined && body.usingClause.length > 0) throw new SqlError('0A000', 'DELETE … USING is not supported yet');
  if (body.whereClause?.CurrentOfExpr !== undefined) throw new SqlError('0A000', 'WHERE CURRENT OF is not supported');
  const relation = { ...body.relation };
  const alias = body.relation.alias?.aliasname ?? table.name;
  const from = planFrom({ fromClause: [{ RangeVar: relation }], whereClause: body.whereClause }, undefined, ctx);
  let plan = from.plan;
  const scope = tableScope(table, alias);
  const bind = bindOf(ctx, 'WHERE');
  const all = conjuncts(body.whereClause).map((node) => coerce(compileExpr(node, scope, bind, Oid.bool), Oid.bool));
  for (const expr of all) if (expr.type !== Oid.bool) throw new SqlError('42804', `argument of WHERE must be type boolean, not type ${typeName(expr.type)}`);
  const recheck = andAll(all);
  if (from.remaining.length > 0 && recheck !== undefined) {
    const predicate = recheck;
    const inner = plan;
    plan = {
      width: inner.width,
      rows: async function* (execCtx: ExecContext, env: Env) {
        for await (const row of inner.rows(execCtx, env)) if ((await evaluate(predicate, row, env)) === true) yield row;
      },
      explain: () => inner.explain(),
    };
  }
  return { plan, table, scope, recheck };
}

async function collect(plan: PlanNode, ctx: ExecContext, env: Env): Promise<Datum[][]> {
  const rows: Datum[][] = [];
  for await (const row of plan.rows(ctx, env)) rows.push(row);
  return rows;
}

class UpdateNode implements PlanNode {
  readonly width: number;
  constructor(
    private readonly target: ReturnType<typeof targetScan>,
    private readonly sets: Array<{ column: number; expr: Compiled }>,
    private readonly writer: TableWriter,
    private readonly returning: Compiled[] | undefined,
    private readonly counter: Counter,
  ) {
    this.width = returning?.length ?? 0;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    this.counter.count = 0;
    const { table, recheck } = this.target;
    const types = this.writer.types;
    const candidates = await collect(this.target.plan, ctx, env);
    const anyAsync = this.sets.some((set) => set.expr.async) || recheck?.async === true;
    for (const candidate of candidates) {
      const key = candidate[table.columns.length] as Uint8Array;
      // Async SET expressions (subqueries) are evaluated on the row the scan found.
      const early = anyAsync ? await Promise.all(this.sets.map((set) => evaluate(set.expr, candidate, env))) : undefined;
      let newRow: Datum[] | undefined;
      let failure: unknown;
      const updated = await ctx.tx.update(table, key, (current) => {
        try {
          const row = storedRow(types, current, key);
          // D1: re-check the WHERE on the newest version.
          if (!anyAsync && recheck !== undefined && recheck.fn(row, env) !== true) return undefined;
          const next = row.slice(0, types.length);
          for (const [position, set] of this.sets.entries()) next[set.column] = early !== undefined ? early[position]! : set.expr.fn(row, env);
          newRow = next;
          return this.writer.storage(next);
        } catch (error) {
          failure = error;
          return undefined;
        }
      });
      if (failure !== undefined) throw failure;
      if (updated === undefined || newRow === undefined) continue;
      await this.writer.check(newRow, env);
      this.counter.count++;
      if (this.returning !== undefined) yield await project(this.returning, [...newRow, updated.key], env);
    }
  }

  explain(): ExplainLine {
    return { title: `Update on ${this.target.table.name}`, children: [this.target.plan.explain()] };
  }
}


export function planUpdate(body: Node, ctx: QueryContext): DmlPlan {
  const target = targetScan(body, ctx);
  const { table, scope } = target;
  const bind = bindOf(ctx, 'UPDATE');
  const sets: Array<{ column: number; expr: Compiled }> = [];
  for (const item of body.targetList as Node[]) {
    const res = item.ResTarget;
    if (res.indirection !== undefined) throw new SqlError('0A000', 'UPDATE of subfields or array elements is not supported');
    if (res.val?.MultiAssignRef !== undefined) throw new SqlError('0A000', 'UPDATE … SET (a, b) = … is not supported yet');
    const column = table.columns.findIndex((each) => each.name === res.name);
    if (column < 0) throw new SqlError('42703', `column "${res.name}" of relation "${table.name}" does not exist`);
    if (sets.some((set) => set.column === column)) throw new SqlError('42601', `multiple assignments to same column "${res.name}"`);
    const { type, typmod } = columnType(table.columns[column]!.type);
    const expr = res.val.SetToDefault !== undefined ? defaultExpr(table, column, bind) : assignTo(compileExpr(res.val, scope, bind, type), type, typmod, res.name);
    sets.push({ column, expr });
  }
  const writer = new TableWriter(table, bind, table.columns.map((_, index) => index));
  const counter: Counter = { count: 0 };
  const returning = returningOf(body.returningClause ?? body.returningList, scope, bindOf(ctx, 'RETURNING'));
  return { plan: new UpdateNode(target, sets, writer, returning?.exprs, counter), columns: returning?.columns, counter };
}

class DeleteNode implements PlanNode {
  readonly width: number;
  constructor(
    private readonly target: ReturnType<typeof targetScan>,
    private readonly types: TypeOid[],
    private readonly returning: Compiled[] | undefined,
    private readonly counter: Counter,
  ) {
    this.width = returning?.length ?? 0;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    this.counter.count = 0;
    const { table, recheck } = this.target;
    const candidates = await collect(this.target.plan, ctx, env);
    for (const candidate of candidates) {
      const key = candidate[table.columns.length] as Uint8Array;
      let row = candidate;
      if (ctx.tx.isolation === 'read committed' && recheck !== undefined) {
        // D1: lock, then re-check the newest version before deleting it.
        const locked = await ctx.tx.lockRow(table, key, 'update');
        if (locked === undefined) continue;
        row = storedRow(this.types, locked.values, key);
        if ((await evaluate(recheck, row, env)) !== true) continue;
      }
      if (!(await ctx.tx.delete(table, key))) continue;
      this.counter.count++;
      if (this.returning !== undefined) yield await project(this.returning, row, env);
    }
  }

  explain(): ExplainLine {
    return { title: `Delete on ${this.target.table.name}`, children: [this.target.plan.explain()] };
  }
}

export function planDelete(body: Node, ctx: QueryContext): DmlPlan {
  const target = targetScan(body, ctx);
  const types = target.table.columns.map((column) => columnType(column.type).type);
  const counter: Counter = { count: 0 };
  const returning = returningOf(body.returningClause ?? body.returningList, target.scope, bindOf(ctx, 'RETURNING'));
  return { plan: new DeleteNode(target, types, returning?.exprs, counter), columns: returning?.columns, counter };
}

// ---------------------------------------------------------------- SELECT … FOR UPDATE / FOR SHARE

export function planLockingSelect(stmt: Node, ctx: QueryContext): { plan: PlanNode; columns: OutputColumn[] } {
  const select = stmt.SelectStmt;
  const clause = select.lockingClause[0].LockingClause;
  if (clause.waitPolicy !== undefined && clause.waitPolicy !== 'LockWaitBlock') throw new SqlError('0A000', 'NOWAIT and SKIP LOCKED are not supported yet');
  const mode = clause.strength === 'LCS_FORUPDATE' || clause.strength === 'LCS_FORNOKEYUPDATE' ? 'update' : 'share';
  const from = (select.fromClause ?? []) as Node[];
  if (from.length !== 1 || from[0].RangeVar === undefined) throw new SqlError('0A000', 'FOR UPDATE/SHARE is supported on a single table only');
  const lockedCtx: QueryContext = { ...ctx, lock: mode } as QueryContext;
  const planned = planQuery({ SelectStmt: { ...select, lockingClause: undefined } }, undefined, lockedCtx);
  return { plan: planned.plan, columns: planned.columns };
}

/** Wraps a base table's scan: locks each row, re-reads its newest version and re-checks (D1). */
export class LockRowsNode implements PlanNode {
  readonly width: number;
  constructor(
    readonly child: PlanNode,
    private readonly table: TableDef,
    private readonly types: TypeOid[],
    private readonly mode: 'update' | 'share',
    private readonly recheck: Compiled | undefined,
  ) {
    this.width = child.width;
  }

  async *rows(ctx: ExecContext, env: Env): AsyncGenerator<Datum[]> {
    const candidates = await collect(this.child, ctx, env);
    for (const candidate of candidates) {
      const key = candidate[this.table.columns.length] as Uint8Array;
      const locked = await ctx.tx.lockRow(this.table, key, this.mode);
      if (locked === undefined) continue;
      const row = storedRow(this.types, locked.values, key);
      if (this.recheck !== undefined && (await evaluate(this.recheck, row, env)) !== true) continue;
      yield row;
    }
  }

  explain(): ExplainLine {
    return { title: 'LockRows', children: [this.child.explain()] };
  }
}

export { newQueryContext };
