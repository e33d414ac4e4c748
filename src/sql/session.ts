// One client session of the SQL layer: transaction blocks, statement dispatch, prepared
// statements and portals, settings. The wire protocol (src/pgwire) calls it through the
// SessionHandler contract.
//
// Transaction-block states (PostgreSQL's, as clients see them in ReadyForQuery):
//   idle (I) --BEGIN--> block (T) --error--> failed (E) --ROLLBACK / ROLLBACK TO--> ...
//   idle: each statement (or each simple-query string, or each Sync-delimited batch of
//   extended messages) runs in an implicit transaction that commits at its end.
//
// Invariants:
//  SE1. A failed block refuses every statement but ROLLBACK / COMMIT / ROLLBACK TO with
//       25P02; its engine transaction is rolled back at once unless a savepoint may
//       still resume it.
//  SE2. An implicit transaction never outlives its statement batch: it commits when the
//       batch succeeds and rolls back when a statement fails.
//  SE3. statement_timeout and CancelRequest abort only the running statement (57014).

import { loadModule, parseSync } from 'libpg-query';
import type { FieldDescription } from '../pgwire/codec.js';
import { SqlError, type Output, type SessionHandler, type StatementDescription } from '../pgwire/session.js';
import type { Database, IsolationLevel, Transaction } from '../engine/database.js';
import { EngineError } from '../engine/errors.js';
import { StorageError, utf8Bytes } from '../common/index.js';
import { Oid } from './oid.js';
import { Params, type Env, type Node } from './expr.js';
import { Settings } from './settings.js';
import { binaryIn, binaryOut, textIn, textOut, typeSize, type Datum } from './typesys.js';
import { prepareStatement, type PreparedPlan } from './statement.js';
import { normalizeLiterals, shapeIsSafe, type Normalized } from './literal-cache.js';
import { catalogLookup } from './catalog-functions.js';

/** A query's planned shape and its literals as parameter values (see literal-cache.ts). */
type Shaped = { statement: PreparedStatement; params: Datum[] };

/** A shape's plan with the query's literals bound as its int4 parameters. */
function shapedWith(statement: PreparedStatement, normalized: Normalized): Shaped {
  return { statement, params: normalized.literals.map((literal) => textIn(Oid.int4, literal, -1)) };
}

let parserLoaded: Promise<void> | undefined;
let parserReady = false;
export function loadSqlParser(): Promise<void> {
  parserLoaded ??= loadModule().then(() => void (parserReady = true));
  return parserLoaded;
}

export interface SessionOptions {
  db: Database;
  user: string;
  database: string;
  /** A reader instance: read-only transactions. */
  reader: boolean;
  /** The backend process id the client was given (pg_backend_pid(), pg_stat_activity). */
  processId: number;
  /** Server-wide defaults of settings (the instance's parameter group, a reader's read-only mode). */
  settings?: Record<string, string>;
}

interface PreparedStatement {
  sql: string;
  stmt: Node;
  paramTypes: number[];
  prepared: PreparedPlan;
}

interface Portal {
  statement: PreparedStatement;
  params: Datum[];
  resultFormats: number[];
  /** Rows still to send when the portal was suspended. */
  iterator: AsyncIterator<Datum[]> | undefined;
  sent: number;
  done: boolean;
}

/** Converts any error from below into a SqlError with PostgreSQL's SQLSTATE. */
export function toSqlError(error: unknown): SqlError {
  if (error instanceof SqlError) return error;
  if (error instanceof EngineError) return new SqlError(error.sqlState, error.message, error.detail !== undefined ? { detail: error.detail } : {});
  if (error instanceof StorageError) return new SqlError('58030', `storage error: ${error.message}`);
  if (error instanceof Error && error.name === 'AbortError') return new SqlError('57014', 'canceling statement due to user request');
  if (error instanceof Error && /Maximum call stack/.test(error.message)) return new SqlError('54001', 'stack depth limit exceeded');
  return new SqlError('XX000', error instanceof Error ? error.message : String(error));
}

export function parseSql(sql: string): Array<{ stmt: Node; text: string }> {
  let tree: { stmts: Array<{ stmt: Node; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (error) {
    const details = (error as { sqlDetails?: { message: string; cursorPosition?: number } }).sqlDetails;
    const message = details?.message ?? (error as Error).message;
    const position = details?.cursorPosition !== undefined ? details.cursorPosition + 1 : undefined;
    const code = /unterminated|syntax error|at end of input|at or near/.test(message) ? '42601' : '42601';
    throw new SqlError(code, message, position !== undefined ? { position } : {});
  }
  return tree.stmts.map((raw) => {
    const start = raw.stmt_location ?? 0;
    const text = raw.stmt_len === undefined || raw.stmt_len === 0 ? sql.slice(start) : sql.slice(start, start + raw.stmt_len);
    return { stmt: raw.stmt, text: text.trim() };
  });
}

/** Output formats of plans whose results go out as text (the simple protocol's case). */
const textOutputs = new WeakMap<PreparedPlan, { fields: FieldDescription[] | undefined; encoders: Array<(value: Datum) => Uint8Array> }>();

/** Query shapes a session keeps plans for (it forgets them all when it has this many). */
const SHAPES_MAX = 256;

const registry = new WeakMap<Database, Set<SqlSession>>();

/** The sessions open on a database in this process (pg_stat_activity). */
export function sessionsOf(db: Database): Set<SqlSession> {
  let sessions = registry.get(db);
  if (sessions === undefined) registry.set(db, (sessions = new Set()));
  return sessions;
}

export class SqlSession implements SessionHandler {
  readonly settings: Settings;
  private tx: Transaction | undefined;
  /** BEGIN was issued: the transaction lasts until COMMIT/ROLLBACK. */
  private explicit = false;
  private failed = false;
  /** Savepoint names in the current block (to know whether a failed block can resume). */
  private savepoints: string[] = [];
  private implicitPending = false;
  private readonly statements = new Map<string, PreparedStatement>();
  /** Plans of query shapes (literal-cache.ts); for a shape that could not be planned, the catalog generation it was tried at. */
  private readonly shapes = new Map<string, PreparedStatement | number>();
  /** Catalog descriptions for pg_get_indexdef and friends, read in the current transaction. */
  private readonly catalog = catalogLookup(() => this.transaction());
  private readonly portals = new Map<string, Portal>();
  private running: AbortController | undefined;
  private controller = new AbortController();
  private extendedFailed = false;

  /** What the session is doing, for pg_stat_activity. */
  activity: { state: 'idle' | 'active' | 'idle in transaction' | 'idle in transaction (aborted)'; query: string; since: number } = { state: 'idle', query: '', since: Date.now() };

  constructor(readonly options: SessionOptions) {
    this.settings = new Settings(options.settings);
    sessionsOf(options.db).add(this);
  }

  /** Whether the session's transaction waits for a lock now. */
  get waitingForLock(): boolean {
    return this.tx !== undefined && this.db.locks.isWaiting(this.tx);
  }

  get db(): Database {
    return this.options.db;
  }

  transactionStatus(): 'I' | 'T' | 'E' {
    if (this.failed) return 'E';
    return this.explicit ? 'T' : 'I';
  }

  cancel(): void {
    this.running?.abort(new SqlError('57014', 'canceling statement due to user request'));
  }

  async close(): Promise<void> {
    sessionsOf(this.db).delete(this);
    this.cancel();
    this.tx?.rollback();
    this.tx = undefined;
  }

  // ---------------------------------------------------------------- transactions

  private isolation(): IsolationLevel {
    return this.settings.get('transaction_isolation') as IsolationLevel;
  }

  /** The transaction a statement runs in (an implicit one if no block is open). */
  transaction(): Transaction {
    if (this.tx === undefined) {
      const readOnly = this.options.reader || this.settings.get('transaction_read_only') === 'on';
      this.tx = this.db.begin({ isolation: this.isolation(), readOnly });
      if (!this.explicit) this.implicitPending = true;
    }
    return this.tx;
  }

  get inTransactionBlock(): boolean {
    return this.explicit;
  }

  async beginBlock(options: { isolation?: IsolationLevel; readOnly?: boolean }, out: Output): Promise<void> {
    if (this.explicit) {
      out.notice({ severity: 'WARNING', code: '25001', message: 'there is already a transaction in progress' });
      return;
    }
    this.settings.set('transaction_isolation', options.isolation ?? this.settings.get('default_transaction_isolation'), { local: true, inTransaction: true });
    if (options.readOnly !== undefined) this.settings.set('transaction_read_only', options.readOnly ? 'on' : 'off', { local: true, inTransaction: true });
    else if (this.settings.get('default_transaction_read_only') === 'on') this.settings.set('transaction_read_only', 'on', { local: true, inTransaction: true });
    if (this.tx !== undefined && this.implicitPending) {
      // BEGIN inside a multi-statement string: the implicit transaction becomes the block.
      this.implicitPending = false;
    }
    this.explicit = true;
    this.savepoints = [];
  }

  /** Changes the isolation of the block before its first query (SET TRANSACTION). */
  setTransactionCharacteristics(options: { isolation?: IsolationLevel; readOnly?: boolean }): void {
    if (this.tx?.snapshotLsn !== undefined && options.isolation !== undefined) throw new SqlError('25001', 'SET TRANSACTION ISOLATION LEVEL must be called before any query');
    if (options.isolation !== undefined) this.settings.set('transaction_isolation', options.isolation, { local: true, inTransaction: true });
    if (options.readOnly !== undefined) this.settings.set('transaction_read_only', options.readOnly ? 'on' : 'off', { local: true, inTransaction: true });
    if (this.tx !== undefined && this.tx.snapshotLsn === undefined) {
      this.tx.rollback();
      this.tx = undefined;
    }
  }

  async commitBlock(out: Output): Promise<'COMMIT' | 'ROLLBACK'> {
    if (!this.explicit) {
      out.notice({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' });
      return 'COMMIT';
    }
    if (this.failed) {
      this.endTransaction(false);
      return 'ROLLBACK';
    }
    await this.finishTransaction(true);
    return 'COMMIT';
  }

  rollbackBlock(out: Output): void {
    if (!this.explicit) out.notice({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' });
    this.endTransaction(false);
  }

  savepoint(name: string): void {
    if (!this.explicit) throw new SqlError('25P01', 'SAVEPOINT can only be used in transaction blocks');
    this.transaction().savepoint(name);
    this.savepoints.push(name);
  }

  release(name: string): void {
    if (!this.explicit) throw new SqlError('25P01', 'RELEASE SAVEPOINT can only be used in transaction blocks');
    this.transaction().release(name);
    const at = this.savepoints.lastIndexOf(name);
    this.savepoints.length = at;
  }

  rollbackToSavepoint(name: string): void {
    if (!this.explicit) throw new SqlError('25P01', 'ROLLBACK TO SAVEPOINT can only be used in transaction blocks');
    if (this.tx === undefined || !this.savepoints.includes(name)) throw new SqlError('3B001', `savepoint "${name}" does not exist`);
    this.tx.rollbackTo(name);
    this.savepoints.length = this.savepoints.lastIndexOf(name) + 1;
    this.failed = false;
  }

  private async finishTransaction(commit: boolean): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    this.implicitPending = false;
    try {
      if (tx !== undefined) {
        if (commit) await tx.commit();
        else tx.rollback();
      }
    } finally {
      this.explicit = false;
      this.failed = false;
      this.savepoints = [];
      this.settings.endTransaction(commit);
    }
  }

  private endTransaction(commit: boolean): void {
    void this.finishTransaction(commit);
  }

  /** A statement failed: SE1 / SE2. */
  private statementFailed(): void {
    if (this.explicit) {
      this.failed = true;
      if (this.savepoints.length === 0 && this.tx !== undefined) {
        // Nothing can resume this transaction: release its locks now, as PostgreSQL does.
        this.tx.rollback();
        this.tx = undefined;
      }
      return;
    }
    this.tx?.rollback();
    this.tx = undefined;
    this.implicitPending = false;
    this.settings.endTransaction(false);
  }

  /** End of a simple-query string or of an extended batch (Sync): SE2. */
  private async endImplicit(): Promise<void> {
    if (!this.explicit && this.tx !== undefined) await this.finishTransaction(true);
  }

  // ---------------------------------------------------------------- running statements

  /** The environment and abort signal for one statement (SE3). */
  private statementEnv(params: Datum[]): { env: Env; signal: AbortSignal; done: () => void } {
    // One controller serves statement after statement until one is aborted (creating one per
    // statement costs more than the statement on a point query).
    if (this.controller.signal.aborted) this.controller = new AbortController();
    const controller = this.controller;
    this.running = controller;
    const timeoutMs = this.settings.milliseconds('statement_timeout');
    const timer = timeoutMs > 0 ? setTimeout(() => controller.abort(new SqlError('57014', 'canceling statement due to statement timeout')), timeoutMs) : undefined;
    const env = this.newEnv(params);
    return {
      env,
      signal: controller.signal,
      done: () => {
        if (timer !== undefined) clearTimeout(timer);
        if (this.running === controller) this.running = undefined;
      },
    };
  }

  private guard(): void {
    if (this.failed) throw new SqlError('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
  }

  private allowedWhenFailed(stmt: Node): boolean {
    const tx = stmt.TransactionStmt;
    if (tx === undefined) return false;
    return ['TRANS_STMT_ROLLBACK', 'TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK_TO', 'TRANS_STMT_PREPARE'].includes(tx.kind);
  }

  async simpleQuery(sql: string, out: Output): Promise<void> {
    if (!parserReady) await loadSqlParser();
    const shaping = this.failed ? undefined : this.shapedStatement(sql);
    const shaped = shaping instanceof Promise ? await shaping : shaping;
    if (shaped !== undefined) {
      try {
        if (this.mustReplan(shaped.statement)) await this.revalidate(shaped.statement);
        await this.runPrepared({ ...shaped.statement, sql }, shaped.params, [], out, 0, true);
        await this.endImplicit();
      } catch (error) {
        this.statementFailed();
        throw toSqlError(error);
      }
      return;
    }
    let statements: Array<{ stmt: Node; text: string }>;
    try {
      statements = parseSql(sql);
    } catch (error) {
      if (this.explicit) this.statementFailed();
      throw error;
    }
    if (statements.length === 0) {
      out.emptyQuery();
      return;
    }
    try {
      for (const { stmt, text } of statements) {
        if (this.failed && !this.allowedWhenFailed(stmt)) this.guard();
        const prepared = await this.prepare(stmt, text, []);
        await this.runPrepared(prepared, [], [], out, 0, true);
      }
      await this.endImplicit();
    } catch (error) {
      this.statementFailed();
      throw toSqlError(error);
    }
  }

  /**
   * The plan of a query's shape (its integer literals as int4 parameters, see
   * literal-cache.ts) and the literals as parameter values; undefined when the query has no
   * shape or its shape cannot stand for it. A shape is planned on first sight.
   */
  private shapedStatement(sql: string): Shaped | undefined | Promise<Shaped | undefined> {
    // A transaction that changed the catalog plans everything afresh until it ends.
    if (this.tx?.changedCatalog) return undefined;
    const normalized = normalizeLiterals(sql);
    if (normalized === undefined) return undefined;
    const key = `${this.settings.get('search_path')}\u0000${normalized.shape}`;
    let statement = this.shapes.get(key);
    // A shape that could not be planned is tried again after DDL.
    if (typeof statement === 'number' && statement !== this.db.catalogGeneration) statement = undefined;
    // Planned already: no promise (a point query's whole path stays synchronous up to the engine).
    if (statement !== undefined) return typeof statement === 'number' ? undefined : shapedWith(statement, normalized);
    return this.planShape(key, normalized);
  }

  private async planShape(key: string, normalized: Normalized): Promise<Shaped | undefined> {
    let statement: PreparedStatement | number = this.db.catalogGeneration;
    try {
      const statements = parseSql(normalized.shape);
      if (statements.length === 1 && shapeIsSafe(statements[0]!.stmt)) {
        statement = await this.prepare(statements[0]!.stmt, statements[0]!.text, normalized.literals.map(() => Oid.int4));
      }
    } catch {
      // Not plannable as a shape (or not at all): the query takes the ordinary path.
    }
    if (this.shapes.size >= SHAPES_MAX) this.shapes.clear();
    this.shapes.set(key, statement);
    if (typeof statement === 'number') return undefined;
    return shapedWith(statement, normalized);
  }

  /** Plans a statement (utility statements plan to an action). */
  private async prepare(stmt: Node, text: string, paramTypes: number[]): Promise<PreparedStatement> {
    const params = new Params([...paramTypes]);
    const needsTx = !isTransactionControl(stmt);
    const tx = needsTx ? this.transaction() : undefined;
    const prepared = await prepareStatement(this, stmt, text, params, tx);
    return { sql: text, stmt, paramTypes: params.types.map((type) => (type === 0 ? Oid.text : type)), prepared };
  }

  /** Runs a prepared statement to completion or until maxRows rows were sent (a portal). */
  private async runPrepared(statement: PreparedStatement, params: Datum[], resultFormats: number[], out: Output, maxRows: number, describe: boolean, portal?: Portal): Promise<'complete' | 'suspended'> {
    const { env, signal, done } = this.statementEnv(params);
    this.activity = { state: 'active', query: statement.sql, since: Date.now() };
    try {
      const prepared = statement.prepared;
      if (prepared.kind === 'utility') {
        const tag = await prepared.run(out, signal);
        if (tag !== undefined) out.commandComplete(tag);
        return 'complete';
      }
      const tx = this.transaction();
      tx.beginStatement({ signal, lockTimeoutMs: this.settings.milliseconds('lock_timeout'), deadlockTimeoutMs: this.settings.milliseconds('deadlock_timeout') || undefined });
      const { fields, encoders } = this.outputFormat(prepared, resultFormats);
      if (describe && fields !== undefined) out.rowDescription(fields);
      let iterator = portal?.iterator;
      if (iterator === undefined) {
        iterator = prepared.execute({ tx, signal, rowsInMemoryMax: Number(this.settings.get('boreal.max_rows_in_memory')) }, env)[Symbol.asyncIterator]();
        if (portal !== undefined) portal.iterator = iterator;
      }
      let sent = 0;
      for (;;) {
        if (maxRows > 0 && sent >= maxRows) {
          if (portal !== undefined) portal.sent += sent;
          return 'suspended';
        }
        const next = await iterator.next();
        if (next.done) break;
        const row = next.value;
        const values: Array<Uint8Array | null> = new Array(encoders.length);
        for (let index = 0; index < encoders.length; index++) {
          const value = row[index]!;
          values[index] = value === null ? null : encoders[index]!(value);
        }
        out.dataRow(values);
        sent++;
        if (sent % 256 === 0) {
          signal.throwIfAborted();
          await out.drain();
        }
      }
      if (portal !== undefined) {
        portal.sent += sent;
        portal.done = true;
      }
      out.commandComplete(prepared.tag(portal?.sent ?? sent));
      return 'complete';
    } catch (error) {
      if (signal.aborted && !(error instanceof SqlError && error.code !== '57014')) throw toSqlError(signal.reason);
      throw error;
    } finally {
      done();
      const status = this.transactionStatus();
      this.activity = { state: status === 'I' ? 'idle' : status === 'T' ? 'idle in transaction' : 'idle in transaction (aborted)', query: statement.sql, since: Date.now() };
    }
  }

  /** Row description and value encoders of a plan's output (kept per plan for all-text results). */
  private outputFormat(prepared: PreparedPlan, resultFormats: number[]): { fields: FieldDescription[] | undefined; encoders: Array<(value: Datum) => Uint8Array> } {
    const allText = resultFormats.length === 0 || (resultFormats.length === 1 && resultFormats[0] === 0);
    const known = allText ? textOutputs.get(prepared) : undefined;
    if (known !== undefined) return known;
    const columns = prepared.columns;
    const made = {
      fields: columns === undefined ? undefined : describeColumns(columns, resultFormats),
      encoders: (columns ?? []).map((column, index) => encoderFor(column.type, formatOf(resultFormats, index))),
    };
    if (allText) textOutputs.set(prepared, made);
    return made;
  }

  // ---------------------------------------------------------------- extended protocol

  async parse(name: string, sql: string, paramTypes: number[]): Promise<void> {
    await loadSqlParser();
    try {
      if (name !== '' && this.statements.has(name)) throw new SqlError('42P05', `prepared statement "${name}" already exists`);
      const statements = parseSql(sql);
      if (statements.length > 1) throw new SqlError('42601', 'cannot insert multiple commands into a prepared statement');
      if (this.failed && (statements.length === 0 || !this.allowedWhenFailed(statements[0]!.stmt))) this.guard();
      const prepared: PreparedStatement =
        statements.length === 0 ? { sql, stmt: undefined, paramTypes: [], prepared: { kind: 'utility', run: async (out) => (out.emptyQuery(), undefined), columns: undefined } } : await this.prepare(statements[0]!.stmt, statements[0]!.text, paramTypes);
      this.statements.set(name, prepared);
    } catch (error) {
      this.extendedError();
      throw toSqlError(error);
    }
  }

  private extendedError(): void {
    this.extendedFailed = true;
    this.statementFailed();
  }

  async bind(portalName: string, statementName: string, paramFormats: number[], params: Array<Uint8Array | null>, resultFormats: number[]): Promise<void> {
    try {
      const statement = this.statements.get(statementName);
      if (statement === undefined) throw new SqlError('26000', `prepared statement "${statementName}" does not exist`);
      if (portalName !== '' && this.portals.has(portalName)) throw new SqlError('42P03', `cursor "${portalName}" already exists`);
      if (params.length !== statement.paramTypes.length) throw new SqlError('08P01', `bind message supplies ${params.length} parameters, but prepared statement "${statementName}" requires ${statement.paramTypes.length}`);
      if (this.failed && (statement.stmt === undefined || !this.allowedWhenFailed(statement.stmt))) this.guard();
      const values = params.map((bytes, index) => {
        if (bytes === null) return null;
        const type = statement.paramTypes[index]!;
        const format = formatOf(paramFormats, index);
        return format === 1 ? binaryIn(type, bytes) : textIn(type, Buffer.from(bytes).toString('utf8'), -1);
      });
      await this.revalidate(statement);
      this.portals.set(portalName, { statement, params: values, resultFormats, iterator: undefined, sent: 0, done: false });
    } catch (error) {
      this.extendedError();
      throw toSqlError(error);
    }
  }

  /** A cached plan made before a DDL committed is made again. */
  /** Whether a prepared statement's plan may be stale (the catalog changed since it was made). */
  private mustReplan(statement: PreparedStatement): boolean {
    if (statement.stmt === undefined || statement.prepared.kind === 'utility') return false;
    return statement.prepared.generation !== this.db.catalogGeneration || this.options.reader || this.tx?.changedCatalog === true;
  }

  private async revalidate(statement: PreparedStatement): Promise<void> {
    if (!this.mustReplan(statement)) return;
    const fresh = await this.prepare(statement.stmt, statement.sql, statement.paramTypes);
    statement.prepared = fresh.prepared;
  }

  describeStatement(name: string): StatementDescription {
    const statement = this.statements.get(name);
    if (statement === undefined) {
      this.extendedError();
      throw new SqlError('26000', `prepared statement "${name}" does not exist`);
    }
    const columns = statement.prepared.columns;
    return { paramTypes: statement.paramTypes, fields: columns === undefined ? undefined : describeColumns(columns, []) };
  }

  describePortal(name: string): FieldDescription[] | undefined {
    const portal = this.portals.get(name);
    if (portal === undefined) {
      this.extendedError();
      throw new SqlError('34000', `portal "${name}" does not exist`);
    }
    const columns = portal.statement.prepared.columns;
    return columns === undefined ? undefined : describeColumns(columns, portal.resultFormats);
  }

  async execute(portalName: string, maxRows: number, out: Output): Promise<'complete' | 'suspended'> {
    const portal = this.portals.get(portalName);
    try {
      if (portal === undefined) throw new SqlError('34000', `portal "${portalName}" does not exist`);
      if (portal.done) {
        out.commandComplete(portal.statement.prepared.kind === 'utility' ? 'SELECT 0' : portal.statement.prepared.tag(0));
        return 'complete';
      }
      if (this.failed && (portal.statement.stmt === undefined || !this.allowedWhenFailed(portal.statement.stmt))) this.guard();
      const result = await this.runPrepared(portal.statement, portal.params, portal.resultFormats, out, maxRows, false, portal);
      if (result === 'complete') portal.done = true;
      return result;
    } catch (error) {
      this.extendedError();
      throw toSqlError(error);
    }
  }

  closeStatement(name: string): void {
    this.statements.delete(name);
  }

  closePortal(name: string): void {
    this.portals.delete(name);
  }

  async sync(): Promise<void> {
    this.portals.delete('');
    for (const [name, portal] of this.portals) if (portal.done) this.portals.delete(name);
    this.extendedFailed = false;
    if (!this.explicit) {
      // Portals do not outlive the implicit transaction.
      this.portals.clear();
      await this.endImplicit();
    }
  }

  /** An environment for statements run outside runPrepared (COPY, internal statements). */
  copyEnv(): Env {
    return this.newEnv([]);
  }

  /** A statement's environment: its parameters, the session's pid, now() (µs since 2000-01-01). */
  private newEnv(params: Datum[]): Env {
    return {
      params,
      outer: [],
      processId: this.options.processId,
      catalog: this.catalog,
      now: BigInt(Date.now() - 946_684_800_000) * 1000n,
      runSubquery: async () => {
        throw new SqlError('XX000', 'subquery runner not installed');
      },
    };
  }

  /** Runs SQL inside the current transaction (for DDL that needs a query); returns its rows. */
  async runInternal(sql: string): Promise<Datum[][]> {
    const [statement] = parseSql(sql);
    const prepared = await this.prepare(statement!.stmt, statement!.text, []);
    if (prepared.prepared.kind !== 'query') throw new SqlError('XX000', 'internal statement is not a query');
    const tx = this.transaction();
    const signal = new AbortController().signal;
    tx.beginStatement({ signal });
    const rows: Datum[][] = [];
    for await (const row of prepared.prepared.execute({ tx, signal }, this.copyEnv())) rows.push(row);
    return rows;
  }

  /** Plans a query without running it (CREATE VIEW checks its query this way). */
  async checkQuery(sql: string): Promise<Array<{ name: string; type: number }>> {
    const [statement] = parseSql(sql);
    const prepared = await this.prepare(statement!.stmt, statement!.text, []);
    return prepared.prepared.columns ?? [];
  }

  /** ALTER TABLE ADD COLUMN with a DEFAULT or NOT NULL: existing rows get the default. */
  async fillNewColumn(table: { schema: string; name: string; columns: Array<{ name: string }> }, column: number): Promise<void> {
    await this.runInternal(`UPDATE ${quoteIdent(table.schema)}.${quoteIdent(table.name)} SET ${quoteIdent(table.columns[column]!.name)} = DEFAULT`);
  }

  /** ALTER TABLE ADD CHECK: every existing row must satisfy it (23514). */
  async validateCheck(table: { schema: string; name: string }, expression: string, name: string): Promise<void> {
    const rows = await this.runInternal(`SELECT 1 FROM ${quoteIdent(table.schema)}.${quoteIdent(table.name)} WHERE NOT (${expression}) LIMIT 1`);
    if (rows.length > 0) throw new SqlError('23514', `check constraint "${name}" of relation "${table.name}" is violated by some row`);
  }

}

export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function isTransactionControl(stmt: Node): boolean {
  return stmt.TransactionStmt !== undefined || stmt.VariableShowStmt !== undefined || stmt.VariableSetStmt !== undefined || stmt.DeallocateStmt !== undefined || stmt.DiscardStmt !== undefined;
}

export function formatOf(formats: number[], index: number): 0 | 1 {
  if (formats.length === 0) return 0;
  if (formats.length === 1) return formats[0] === 1 ? 1 : 0;
  return formats[index] === 1 ? 1 : 0;
}

function encoderFor(type: number, format: 0 | 1): (value: Datum) => Uint8Array {
  if (format === 1) return (value) => binaryOut(type, value);
  return (value) => utf8Bytes(textOut(type, value));
}

export function describeColumns(columns: Array<{ name: string; type: number; typmod: number; tableOid: number; columnNumber: number }>, formats: number[]): FieldDescription[] {
  return columns.map((column, index) => ({
    name: column.name,
    tableOid: column.tableOid,
    columnNumber: column.columnNumber,
    typeOid: column.type,
    typeSize: typeSize(column.type),
    typeModifier: column.typmod,
    format: formatOf(formats, index),
  }));
}
