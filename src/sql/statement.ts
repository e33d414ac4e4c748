// Statement dispatch: turns one parsed statement into a PreparedPlan — either a query
// (rows, described by columns, tagged by a count) or a utility action. Plans are made once
// per Parse and reused by every Execute while the catalog generation is unchanged.

import { SqlError, type Output } from '../pgwire/session.js';
import type { IsolationLevel, Transaction } from '../engine/database.js';
import { Oid } from './oid.js';
import type { Env, Node, Params } from './expr.js';
import { newQueryContext, planQuery, StatementCatalog, type OutputColumn } from './planner.js';
import type { ExecContext, ExplainLine, PlanNode } from './exec.js';
import { planDelete, planInsert, planUpdate, planLockingSelect } from './dml.js';
import { runDdl } from './ddl.js';
import { planCopy } from './copy.js';
import type { Datum } from './typesys.js';
import type { SqlSession } from './session.js';

export type PreparedPlan =
  | { kind: 'utility'; columns: undefined; run: (out: Output, signal: AbortSignal) => Promise<string | undefined> }
  | { kind: 'query'; columns: OutputColumn[] | undefined; generation: number; execute: (ctx: ExecContext, env: Env) => AsyncIterable<Datum[]>; tag: (rows: number) => string; planNode?: PlanNode };

export function installSubqueries(ctx: ExecContext, env: Env): void {
  env.nextval = (name, schema) => ctx.tx.nextval(name, schema);
  env.runSubquery = async (plan, inner, limit) => {
    const rows: Datum[][] = [];
    for await (const row of (plan as PlanNode).rows(ctx, inner)) {
      rows.push(row);
      if (rows.length >= limit) break;
    }
    return rows;
  };
}

function queryPlan(plan: PlanNode, columns: OutputColumn[] | undefined, generation: number, tag: (rows: number) => string): PreparedPlan {
  return {
    kind: 'query',
    columns,
    generation,
    execute: (ctx, env) => {
      installSubqueries(ctx, env);
      return plan.rows(ctx, env);
    },
    tag,
    planNode: plan,
  };
}

const utility = (run: (out: Output, signal: AbortSignal) => Promise<string | undefined>): PreparedPlan => ({ kind: 'utility', columns: undefined, run });

const textColumn = (name: string): OutputColumn => ({ name, type: Oid.text, typmod: -1, tableOid: 0, columnNumber: 0 });

/** A query plan that yields fixed rows computed at execution. */
function rowsPlan(columns: OutputColumn[], rows: () => Datum[][], tag: string, generation: number): PreparedPlan {
  return {
    kind: 'query',
    columns,
    generation,
    execute: () =>
      (async function* () {
        yield* rows();
      })(),
    tag: () => tag,
  };
}

export async function prepareStatement(session: SqlSession, stmt: Node, text: string, params: Params, tx: Transaction | undefined): Promise<PreparedPlan> {
  const [kind] = Object.keys(stmt) as [string];
  const body = stmt[kind];
  const generation = session.db.catalogGeneration;
  const catalog = tx !== undefined ? new StatementCatalog(tx) : undefined;
  switch (kind) {
    case 'SelectStmt': {
      await catalog!.preload(stmt);
      if (body.lockingClause !== undefined) {
        const planned = planLockingSelect(stmt, newQueryContext(catalog!, params));
        return queryPlan(planned.plan, planned.columns, generation, (rows) => `SELECT ${rows}`);
      }
      const planned = planQuery(stmt, undefined, newQueryContext(catalog!, params));
      return queryPlan(planned.plan, planned.columns, generation, (rows) => `SELECT ${rows}`);
    }
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt': {
      await catalog!.preload(stmt);
      const ctx = newQueryContext(catalog!, params);
      const planned = kind === 'InsertStmt' ? planInsert(body, ctx) : kind === 'UpdateStmt' ? planUpdate(body, ctx) : planDelete(body, ctx);
      const verb = kind === 'InsertStmt' ? 'INSERT 0' : kind === 'UpdateStmt' ? 'UPDATE' : 'DELETE';
      return queryPlan(planned.plan, planned.columns, generation, () => `${verb} ${planned.counter.count}`);
    }
    case 'TransactionStmt':
      return transactionStatement(session, body);
    case 'VariableSetStmt':
      return utility(async (out) => setStatement(session, body, out));
    case 'VariableShowStmt': {
      const name = body.name as string;
      if (name === 'all') throw new SqlError('0A000', 'SHOW ALL is not supported yet');
      const value = name.toLowerCase() === 'transaction isolation level' ? session.settings.get('transaction_isolation') : session.settings.get(name);
      const header = name.toLowerCase() === 'transaction isolation level' ? 'transaction_isolation' : session.settings.displayName(name);
      return rowsPlan([textColumn(header)], () => [[value]], 'SHOW', generation);
    }
    case 'ExplainStmt':
      return explainStatement(session, body, params, tx!, generation);
    case 'VacuumStmt':
      // VACUUM and ANALYZE are accepted: vacuum runs by itself, and statistics are gathered as tables are read.
      return utility(async () => (body.is_vacuumcmd ? 'VACUUM' : 'ANALYZE'));
    case 'CopyStmt':
      await catalog!.preload(stmt);
      return planCopy(session, body, catalog!, params);
    case 'DeallocateStmt':
      return utility(async () => 'DEALLOCATE');
    case 'DiscardStmt':
      return utility(async () => 'DISCARD ALL');
    case 'CheckPointStmt':
      return utility(async () => 'CHECKPOINT');
    case 'CreateStmt':
    case 'IndexStmt':
    case 'DropStmt':
    case 'CreateSchemaStmt':
    case 'TruncateStmt':
    case 'AlterTableStmt':
    case 'CreateSeqStmt':
    case 'ViewStmt':
    case 'CreateTableAsStmt':
    case 'RenameStmt':
    case 'CommentStmt':
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'CreateFunctionStmt':
    case 'CreateTrigStmt':
    case 'CreateExtensionStmt':
    case 'CreateRoleStmt':
    case 'GrantStmt':
    case 'AlterSeqStmt':
      return utility(async (out) => runDdl(session, kind, body, text, out));
    default:
      throw new SqlError('0A000', `${statementName(kind)} is not supported yet`);
  }
}

function statementName(kind: string): string {
  return kind.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

function optionValue(option: Node): string {
  const arg = option.DefElem.arg;
  if (arg?.A_Const !== undefined) return String(arg.A_Const.sval?.sval ?? arg.A_Const.ival?.ival ?? '');
  if (arg?.String !== undefined) return arg.String.sval;
  return '';
}

function transactionOptions(options: Node[] | undefined): { isolation?: IsolationLevel; readOnly?: boolean } {
  const result: { isolation?: IsolationLevel; readOnly?: boolean } = {};
  for (const option of options ?? []) {
    const name = option.DefElem.defname as string;
    if (name === 'transaction_isolation') {
      const level = optionValue(option).toLowerCase();
      result.isolation = (level === 'read uncommitted' ? 'read committed' : level) as IsolationLevel;
    } else if (name === 'transaction_read_only') result.readOnly = option.DefElem.arg?.A_Const?.ival?.ival === 1;
    else if (name === 'transaction_deferrable') continue;
  }
  return result;
}

function transactionStatement(session: SqlSession, body: Node): PreparedPlan {
  switch (body.kind as string) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START':
      return utility(async (out) => {
        await session.beginBlock(transactionOptions(body.options), out);
        return 'BEGIN';
      });
    case 'TRANS_STMT_COMMIT':
      if (body.chain) throw new SqlError('0A000', 'COMMIT AND CHAIN is not supported yet');
      return utility(async (out) => session.commitBlock(out));
    case 'TRANS_STMT_ROLLBACK':
      return utility(async (out) => {
        session.rollbackBlock(out);
        return 'ROLLBACK';
      });
    case 'TRANS_STMT_SAVEPOINT':
      return utility(async () => {
        session.savepoint(body.savepoint_name);
        return 'SAVEPOINT';
      });
    case 'TRANS_STMT_RELEASE':
      return utility(async () => {
        session.release(body.savepoint_name);
        return 'RELEASE';
      });
    case 'TRANS_STMT_ROLLBACK_TO':
      return utility(async () => {
        session.rollbackToSavepoint(body.savepoint_name);
        return 'ROLLBACK';
      });
    default:
      throw new SqlError('0A000', `${String(body.kind).replace('TRANS_STMT_', '')} TRANSACTION is not supported`);
  }
}

function setStatement(session: SqlSession, body: Node, out: Output): string {
  const report = (change: { name: string; value: string } | undefined): void => {
    if (change !== undefined) out.parameterStatus(change.name, change.value);
  };
  const local = body.is_local === true;
  const inTransaction = session.inTransactionBlock;
  switch (body.kind as string) {
    case 'VAR_SET_VALUE':
    case 'VAR_SET_CURRENT': {
      const name = body.name as string;
      const values = ((body.args ?? []) as Node[]).map((arg) => {
        const constant = arg.A_Const;
        if (constant?.sval !== undefined) return constant.sval.sval as string;
        if (constant?.ival !== undefined) return String(constant.ival.ival ?? 0);
        if (constant?.fval !== undefined) return String(constant.fval.fval);
        if (constant?.boolval !== undefined) return constant.boolval.boolval ? 'on' : 'off';
        if (arg.TypeCast !== undefined) return String(arg.TypeCast.arg.A_Const?.sval?.sval ?? '');
        return '';
      });
      if (local && !inTransaction) {
        // SET LOCAL outside a block has no effect (PostgreSQL warns).
        return 'SET';
      }
      report(session.settings.set(name, values.join(', '), { local, inTransaction }));
      return 'SET';
    }
    case 'VAR_SET_DEFAULT':
    case 'VAR_RESET':
      report(session.settings.reset(body.name, { inTransaction }));
      return body.kind === 'VAR_RESET' ? 'RESET' : 'SET';
    case 'VAR_RESET_ALL':
      return 'RESET';
    case 'VAR_SET_MULTI': {
      // SET TRANSACTION … / SET SESSION CHARACTERISTICS AS TRANSACTION …
      const options = transactionOptions(body.args);
      if (body.name === 'TRANSACTION') {
        if (!inTransaction) return 'SET'; // PostgreSQL warns and does nothing outside a block
        session.setTransactionCharacteristics(options);
      } else {
        if (options.isolation !== undefined) session.settings.set('default_transaction_isolation', options.isolation, { local: false, inTransaction });
        if (options.readOnly !== undefined) session.settings.set('default_transaction_read_only', options.readOnly ? 'on' : 'off', { local: false, inTransaction });
      }
      return 'SET';
    }
    default:
      throw new SqlError('0A000', `SET ${body.kind} is not supported`);
  }
}

async function explainStatement(session: SqlSession, body: Node, params: Params, tx: Transaction, generation: number): Promise<PreparedPlan> {
  for (const option of (body.options ?? []) as Node[]) {
    if (option.DefElem.defname === 'analyze') throw new SqlError('0A000', 'EXPLAIN ANALYZE is not supported yet');
  }
  const inner = await prepareStatement(session, body.query, '', params, tx);
  if (inner.kind === 'utility') throw new SqlError('0A000', 'EXPLAIN of a utility statement is not supported');
  const plan = inner.planNode;
  const lines = plan !== undefined ? renderExplain(plan.explain()) : ['Result'];
  return rowsPlan([textColumn('QUERY PLAN')], () => lines.map((line) => [line]), 'EXPLAIN', generation);
}

export function renderExplain(line: ExplainLine, depth = 0): string[] {
  const pad = depth === 0 ? '' : `${' '.repeat(depth * 6 - 4)}->  `;
  const out = [pad + line.title];
  for (const detail of line.details ?? []) out.push(`${' '.repeat(depth === 0 ? 2 : depth * 6)}${detail}`);
  for (const child of line.children ?? []) out.push(...renderExplain(child, depth + 1));
  return out;
}
