// A session that runs the SQL of isolation specs directly on the engine, with PostgreSQL's
// transaction-block rules (implicit transactions, a failed block refusing statements with
// 25P02 until ROLLBACK, locks released as soon as a statement fails). It understands the
// small SQL the specs use: CREATE TABLE / INDEX, INSERT … VALUES, SELECT of columns,
// count(*) and sum() from one table with a WHERE of comparisons and ORDER BY, FOR UPDATE /
// FOR SHARE, UPDATE … SET col = expression, DELETE, transaction control and SET. It is the
// engine's test driver, not the SQL front end (issue 5), which runs the same specs over the wire.

import { loadModule, parseSync } from 'libpg-query';
import { encodeKey, type Value } from '../../engine/codec.js';
import type { Database, IsolationLevel, Row, TableDef, Transaction } from '../../engine/database.js';
import { EngineError, SqlState } from '../../engine/errors.js';
import type { SpecSession } from './spec.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the parse tree is walked structurally */
type Node = any;

let loaded: Promise<void> | undefined;
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

const unsupported = (what: string): EngineError => new EngineError('0A000' as never, `not supported by the engine test driver: ${what}`);

function constant(node: Node): Value {
  const value = node.A_Const;
  if (value === undefined) throw unsupported(JSON.stringify(node).slice(0, 80));
  if (value.isnull) return null;
  if (value.ival !== undefined) return value.ival.ival ?? 0;
  if (value.sval !== undefined) return value.sval.sval ?? '';
  if (value.boolval !== undefined) return value.boolval.boolval ?? false;
  if (value.fval !== undefined) return Number(value.fval.fval);
  throw unsupported('constant');
}

function columnName(node: Node): string {
  const fields = node.ColumnRef?.fields;
  if (fields === undefined) throw unsupported('expression');
  return fields[fields.length - 1].String.sval;
}

type Expr = (row: Value[]) => Value;

function compile(node: Node, table: TableDef): Expr {
  if (node.A_Const !== undefined) {
    const value = constant(node);
    return () => value;
  }
  if (node.ColumnRef !== undefined) {
    const name = columnName(node);
    const index = table.columns.findIndex((column) => column.name === name);
    if (index < 0) throw new EngineError('42703' as never, `column "${name}" does not exist`);
    return (row) => row[index]!;
  }
  if (node.TypeCast !== undefined) return compile(node.TypeCast.arg, table);
  if (node.A_Expr !== undefined) {
    const expr = node.A_Expr;
    const op = expr.name[0].String.sval as string;
    const left = compile(expr.lexpr, table);
    const right = compile(expr.rexpr, table);
    const both = (fn: (a: any, b: any) => Value): Expr => (row) => {
      const a = left(row);
      const b = right(row);
      return a === null || b === null ? null : fn(a, b);
    };
    switch (op) {
      case '=':
        return both((a, b) => a === b);
      case '<>':
        return both((a, b) => a !== b);
      case '<':
        return both((a, b) => a < b);
      case '<=':
        return both((a, b) => a <= b);
      case '>':
        return both((a, b) => a > b);
      case '>=':
        return both((a, b) => a >= b);
      case '+':
        return both((a, b) => a + b);
      case '-':
        return both((a, b) => a - b);
      case '*':
        return both((a, b) => a * b);
      default:
        throw unsupported(`operator ${op}`);
    }
  }
  if (node.BoolExpr !== undefined) {
    const args = node.BoolExpr.args.map((arg: Node) => compile(arg, table)) as Expr[];
    switch (node.BoolExpr.boolop) {
      case 'AND_EXPR':
        return (row) => {
          let result: Value = true;
          for (const arg of args) {
            const value = arg(row);
            if (value === false) return false;
            if (value === null) result = null;
          }
          return result;
        };
      case 'OR_EXPR':
        return (row) => {
          let result: Value = false;
          for (const arg of args) {
            const value = arg(row);
            if (value === true) return true;
            if (value === null) result = null;
          }
          return result;
        };
      default:
        return (row) => {
          const value = args[0]!(row);
          return value === null ? null : !value;
        };
    }
  }
  throw unsupported(Object.keys(node)[0] ?? 'node');
}

/** For WHERE pk = constant: the row key, so the statement reads one row instead of scanning. */
function pointKey(where: Node, table: TableDef): Uint8Array | undefined {
  if (table.primaryKey?.length !== 1 || where?.A_Expr === undefined) return undefined;
  const expr = where.A_Expr;
  if (expr.name[0].String.sval !== '=' || expr.lexpr.ColumnRef === undefined || expr.rexpr.A_Const === undefined) return undefined;
  if (columnName(expr.lexpr) !== table.columns[table.primaryKey[0]!]!.name) return undefined;
  return encodeKey([constant(expr.rexpr)]);
}

function formatRows(rows: Value[][]): string {
  if (rows.length === 0) return '(no rows)';
  return rows.map((row) => row.map((value) => (value === null ? 'NULL' : typeof value === 'boolean' ? (value ? 't' : 'f') : String(value))).join('|')).join(' ; ');
}

function typeName(node: Node): string {
  const names = node.names.map((name: Node) => name.String.sval as string);
  return names[names.length - 1];
}

function duration(value: Value): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)\s*(ms|s|min)?$/.exec(String(value).trim());
  if (match === null) throw new EngineError(SqlState.invalidParameterValue, `invalid value for a timeout: "${value}"`);
  return Number(match[1]) * (match[2] === 's' ? 1000 : match[2] === 'min' ? 60_000 : 1);
}

export class EngineSession implements SpecSession {
  private tx: Transaction | undefined;
  private explicit = false;
  private failed = false;
  private lockTimeoutMs = 0;
  private statementTimeoutMs = 0;
  private deadlockTimeoutMs: number | undefined;
  private defaultIsolation: IsolationLevel = 'read committed';

  constructor(private readonly db: Database) {}

  isWaiting(): boolean {
    return this.tx !== undefined && this.db.locks.isWaiting(this.tx);
  }

  async close(): Promise<void> {
    this.tx?.rollback();
    this.tx = undefined;
  }

  /** Runs a string of statements; returns the last one's outcome. */
  async run(sql: string): Promise<string> {
    await loadParser();
    let parsed: Node;
    try {
      parsed = parseSync(sql);
    } catch (error) {
      throw new EngineError('42601' as never, (error as Error).message);
    }
    let result = 'ok';
    for (const { stmt } of parsed.stmts) result = await this.statement(stmt);
    return result;
  }

  private async statement(stmt: Node): Promise<string> {
    if (stmt.TransactionStmt !== undefined) return this.transactionControl(stmt.TransactionStmt);
    if (this.failed) throw new EngineError('25P02' as never, 'current transaction is aborted, commands ignored until end of transaction block');
    if (stmt.VariableSetStmt !== undefined) return this.set(stmt.VariableSetStmt);
    const implicit = this.tx === undefined;
    const tx = (this.tx ??= this.db.begin({ isolation: this.defaultIsolation }));
    const controller = new AbortController();
    const timer = this.statementTimeoutMs > 0 ? setTimeout(() => controller.abort(new EngineError(SqlState.queryCanceled, 'canceling statement due to statement timeout')), this.statementTimeoutMs) : undefined;
    try {
      tx.beginStatement({ signal: controller.signal, lockTimeoutMs: this.lockTimeoutMs, deadlockTimeoutMs: this.deadlockTimeoutMs });
      const result = await this.execute(tx, stmt);
      if (implicit) {
        this.tx = undefined;
        await tx.commit();
      }
      return result;
    } catch (error) {
      // As PostgreSQL: the transaction aborts at once (its locks go); a block stays failed until ROLLBACK.
      tx.rollback();
      this.tx = undefined;
      if (!implicit && this.explicit) {
        this.failed = true;
        this.tx = undefined;
      }
      throw error;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  private async transactionControl(node: Node): Promise<string> {
    const kind = node.kind as string;
    if (kind === 'TRANS_STMT_BEGIN' || kind === 'TRANS_STMT_START') {
      if (this.explicit) return 'ok'; // PostgreSQL warns and goes on
      let isolation = this.defaultIsolation;
      for (const option of node.options ?? []) {
        if (option.DefElem.defname === 'transaction_isolation') isolation = constant(option.DefElem.arg) as IsolationLevel;
      }
      this.tx = this.db.begin({ isolation });
      this.explicit = true;
      return 'ok';
    }
    if (kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_ROLLBACK') {
      const tx = this.tx;
      this.tx = undefined;
      this.explicit = false;
      const wasFailed = this.failed;
      this.failed = false;
      if (tx === undefined) return wasFailed && kind === 'TRANS_STMT_COMMIT' ? 'ROLLBACK' : 'ok';
      if (kind === 'TRANS_STMT_ROLLBACK') {
        tx.rollback();
        return 'ok';
      }
      await tx.commit();
      return 'ok';
    }
    if (this.tx === undefined && !this.failed) throw new EngineError(SqlState.noActiveSqlTransaction, `${kind.replace('TRANS_STMT_', '')} can only be used in transaction blocks`);
    const name = node.savepoint_name as string;
    if (kind === 'TRANS_STMT_SAVEPOINT') {
      if (this.failed) throw new EngineError('25P02' as never, 'current transaction is aborted, commands ignored until end of transaction block');
      this.tx!.savepoint(name);
      return 'ok';
    }
    if (kind === 'TRANS_STMT_RELEASE') {
      this.tx!.release(name);
      return 'ok';
    }
    if (kind === 'TRANS_STMT_ROLLBACK_TO') {
      if (this.failed) throw unsupported('ROLLBACK TO after an error (the block is already rolled back in this driver)');
      this.tx!.rollbackTo(name);
      return 'ok';
    }
    throw unsupported(kind);
  }

  private set(node: Node): string {
    const name = node.name as string;
    const value = node.args === undefined ? null : constant(node.args[0]);
    if (name === 'lock_timeout') this.lockTimeoutMs = value === null ? 0 : duration(value);
    else if (name === 'statement_timeout') this.statementTimeoutMs = value === null ? 0 : duration(value);
    else if (name === 'deadlock_timeout') this.deadlockTimeoutMs = value === null ? undefined : duration(value);
    else if (name === 'default_transaction_isolation') this.defaultIsolation = (value ?? 'read committed') as IsolationLevel;
    else if (name === 'transaction_isolation') throw unsupported('SET TRANSACTION');
    else throw unsupported(`SET ${name}`);
    return 'ok';
  }

  private async execute(tx: Transaction, stmt: Node): Promise<string> {
    if (stmt.CreateStmt !== undefined) return this.createTable(tx, stmt.CreateStmt);
    if (stmt.IndexStmt !== undefined) {
      const index = stmt.IndexStmt;
      const table = await tx.table(index.relation.relname);
      const columns = index.indexParams.map((param: Node) => table.columns.findIndex((column) => column.name === param.IndexElem.name));
      await tx.createIndex(table.name, { name: index.idxname ?? `${table.name}_idx`, columns, unique: index.unique ?? false });
      return 'ok';
    }
    if (stmt.InsertStmt !== undefined) {
      const insert = stmt.InsertStmt;
      const table = await tx.table(insert.relation.relname);
      const targets: number[] = insert.cols === undefined ? table.columns.map((_, index) => index) : insert.cols.map((col: Node) => table.columns.findIndex((column) => column.name === col.ResTarget.name));
      for (const list of insert.selectStmt.SelectStmt.valuesLists) {
        const values: Value[] = table.columns.map(() => null);
        list.List.items.forEach((item: Node, index: number) => (values[targets[index]!] = constant(item)));
        await tx.insert(table, values);
      }
      return 'ok';
    }
    if (stmt.SelectStmt !== undefined) return this.select(tx, stmt.SelectStmt);
    if (stmt.UpdateStmt !== undefined) {
      const update = stmt.UpdateStmt;
      const table = await tx.table(update.relation.relname);
      const where = update.whereClause === undefined ? () => true : compile(update.whereClause, table);
      const sets = update.targetList.map((target: Node) => [table.columns.findIndex((column) => column.name === target.ResTarget.name), compile(target.ResTarget.val, table)] as const);
      for (const row of await this.rows(tx, table, update.whereClause)) {
        if (where(row.values) !== true) continue;
        await tx.update(table, row.key, (current) => {
          if (where(current) !== true) return undefined; // re-checked on the newest version (READ COMMITTED)
          const next = current.slice();
          for (const [column, expr] of sets) next[column] = expr(current);
          return next;
        });
      }
      return 'ok';
    }
    if (stmt.DeleteStmt !== undefined) {
      const del = stmt.DeleteStmt;
      const table = await tx.table(del.relation.relname);
      const where = del.whereClause === undefined ? () => true : compile(del.whereClause, table);
      for (const row of await this.rows(tx, table, del.whereClause)) if (where(row.values) === true) await tx.delete(table, row.key);
      return 'ok';
    }
    if (stmt.DropStmt !== undefined) {
      for (const object of stmt.DropStmt.objects) {
        const names = object.List.items.map((item: Node) => item.String.sval as string);
        await tx.dropTable(names[names.length - 1], { ifExists: stmt.DropStmt.missing_ok ?? false });
      }
      return 'ok';
    }
    throw unsupported(Object.keys(stmt)[0] ?? 'statement');
  }

  private async rows(tx: Transaction, table: TableDef, where: Node): Promise<Row[]> {
    const key = pointKey(where, table);
    if (key !== undefined) {
      const row = await tx.get(table, key);
      return row === undefined ? [] : [row];
    }
    const rows: Row[] = [];
    for await (const row of tx.scan(table)) rows.push(row);
    return rows;
  }

  private async createTable(tx: Transaction, create: Node): Promise<string> {
    const columns: Array<{ name: string; type: string; notNull: boolean; default: string | null }> = [];
    let primaryKey: number[] | undefined;
    const unique: Array<{ columns: number[] }> = [];
    for (const element of create.tableElts) {
      if (element.ColumnDef !== undefined) {
        const def = element.ColumnDef;
        const index = columns.length;
        columns.push({ name: def.colname, type: typeName(def.typeName), notNull: false, default: null });
        for (const constraint of def.constraints ?? []) {
          const kind = constraint.Constraint.contype;
          if (kind === 'CONSTR_PRIMARY') primaryKey = [index];
          else if (kind === 'CONSTR_NOTNULL') columns[index]!.notNull = true;
          else if (kind === 'CONSTR_UNIQUE') unique.push({ columns: [index] });
          else throw unsupported(kind);
        }
      } else if (element.Constraint !== undefined) {
        const constraint = element.Constraint;
        const keys = constraint.keys.map((key: Node) => columns.findIndex((column) => column.name === key.String.sval));
        if (constraint.contype === 'CONSTR_PRIMARY') primaryKey = keys;
        else if (constraint.contype === 'CONSTR_UNIQUE') unique.push({ columns: keys });
        else throw unsupported(constraint.contype);
      }
    }
    for (const column of primaryKey ?? []) columns[column]!.notNull = true;
    await tx.createTable({ name: create.relation.relname, columns, ...(primaryKey === undefined ? {} : { primaryKey }), unique });
    return 'ok';
  }

  private async select(tx: Transaction, select: Node): Promise<string> {
    if (select.fromClause === undefined) {
      return formatRows([select.targetList.map((target: Node) => constant(target.ResTarget.val))]);
    }
    const table = await tx.table(select.fromClause[0].RangeVar.relname);
    const where = select.whereClause === undefined ? () => true : compile(select.whereClause, table);
    const locking = select.lockingClause?.[0]?.LockingClause;
    let rows = (await this.rows(tx, table, select.whereClause)).filter((row) => where(row.values) === true);
    if (locking !== undefined) {
      const mode = locking.strength === 'LCS_FORUPDATE' || locking.strength === 'LCS_FORNOKEYUPDATE' ? 'update' : 'share';
      const locked: Row[] = [];
      for (const row of rows) {
        const current = await tx.lockRow(table, row.key, mode);
        if (current !== undefined && where(current.values) === true) locked.push(current);
      }
      rows = locked;
    }
    for (const sort of [...(select.sortClause ?? [])].reverse()) {
      const expr = compile(sort.SortBy.node, table);
      const descending = sort.SortBy.sortby_dir === 'SORTBY_DESC';
      rows.sort((a, b) => {
        const x = expr(a.values) as any;
        const y = expr(b.values) as any;
        const order = x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1;
        return descending ? -order : order;
      });
    }
    const targets = select.targetList.map((target: Node) => target.ResTarget.val);
    const aggregate = targets.some((target: Node) => target.FuncCall !== undefined);
    if (aggregate) {
      const values = targets.map((target: Node) => {
        const call = target.FuncCall;
        const fn = call.funcname[call.funcname.length - 1].String.sval;
        if (fn === 'count') return rows.length;
        if (fn === 'sum') {
          const expr = compile(call.args[0], table);
          const present = rows.map((row) => expr(row.values)).filter((value) => value !== null) as number[];
          return present.length === 0 ? null : present.reduce((sum, value) => sum + value, 0);
        }
        throw unsupported(`function ${fn}`);
      });
      return formatRows([values]);
    }
    const projections: Expr[] = targets.flatMap((target: Node) => (target.ColumnRef?.fields?.[0]?.A_Star !== undefined ? table.columns.map((_, index) => (row: Value[]) => row[index]!) : [compile(target, table)]));
    return formatRows(rows.map((row) => projections.map((projection) => projection(row.values))));
  }
}
