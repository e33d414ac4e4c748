// Test-only: a SessionHandler that understands a handful of fixed statements, enough to
// drive the connection through every path of the contract in session.ts with real
// clients. It is not a SQL engine and must not be imported by production code.
//
//   select n from series(<int> | $1)   n = 1..count as int4, text or binary per the portal
//   copy <table> from stdin            text lines appended to an in-memory table
//   copy <table> to stdout             the table's lines
//   sleep                              waits until cancelled, then 57014
//   fail                               42601 at execution
//   notice                             a NoticeResponse, then DO
//   begin | commit | rollback          the transaction status (E after an error in a block)
//
// Statements are matched case-insensitively, a simple-query string is split at ';'.

import type { FieldDescription } from './codec.js';
import { SqlError, type Output, type SessionHandler, type StatementDescription } from './session.js';

const INT4_OID = 23;
/** Rows between two Output.drain() calls. */
const ROWS_PER_DRAIN = 256;

type Plan =
  | { kind: 'series'; count: number | 'parameter' }
  | { kind: 'copyIn'; table: string }
  | { kind: 'copyOut'; table: string }
  | { kind: 'sleep' }
  | { kind: 'fail' }
  | { kind: 'notice' }
  | { kind: 'transaction'; tag: 'BEGIN' | 'COMMIT' | 'ROLLBACK' }
  | { kind: 'empty' };

function planOf(sql: string): Plan {
  const text = sql.trim().replace(/;$/, '').trim().replace(/\s+/g, ' ').toLowerCase();
  if (text === '') return { kind: 'empty' };
  let match = /^select n from series\((?:(\d+)|\$1)\)$/.exec(text);
  if (match !== null) return { kind: 'series', count: match[1] === undefined ? 'parameter' : Number(match[1]) };
  match = /^copy (\w+) from stdin$/.exec(text);
  if (match !== null) return { kind: 'copyIn', table: match[1]! };
  match = /^copy (\w+) to stdout$/.exec(text);
  if (match !== null) return { kind: 'copyOut', table: match[1]! };
  if (text === 'sleep' || text === 'fail' || text === 'notice') return { kind: text };
  if (text === 'begin' || text === 'commit' || text === 'rollback') return { kind: 'transaction', tag: text.toUpperCase() as 'BEGIN' | 'COMMIT' | 'ROLLBACK' };
  throw new SqlError('42601', `syntax error at or near "${text.split(' ')[0]}"`, { position: 1 });
}

function parameterCount(plan: Plan): number {
  return plan.kind === 'series' && plan.count === 'parameter' ? 1 : 0;
}

function fieldsOf(plan: Plan, format: 0 | 1): FieldDescription[] | undefined {
  if (plan.kind !== 'series') return undefined;
  return [{ name: 'n', tableOid: 0, columnNumber: 0, typeOid: INT4_OID, typeSize: 4, typeModifier: -1, format }];
}

/** The protocol's rule: no codes = all text, one code = all columns, else one per column. */
function formatAt(formats: number[], index: number): 0 | 1 {
  const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[index];
  return format === 1 ? 1 : 0;
}

function encodeInt4(value: number, format: 0 | 1): Uint8Array {
  if (format === 0) return Buffer.from(String(value));
  const bytes = Buffer.alloc(4);
  bytes.writeInt32BE(value);
  return bytes;
}

function decodeInt4(value: Uint8Array, format: 0 | 1): number {
  if (format === 1) {
    if (value.length !== 4) throw new SqlError('22P03', 'incorrect binary data format in bind parameter 1');
    return Buffer.from(value).readInt32BE();
  }
  const text = Buffer.from(value).toString('utf8');
  if (!/^\s*-?\d+\s*$/.test(text)) throw new SqlError('22P02', `invalid input syntax for type integer: "${text}"`);
  return Number(text);
}

interface Portal {
  plan: Plan;
  format: 0 | 1;
  /** series: how many rows in all, and the next value to send. */
  count: number;
  next: number;
}

/** What the sessions of one test share: tables, and each session for the test to inspect. */
export class StubDatabase {
  readonly tables = new Map<string, string[]>();
  readonly sessions: StubSession[] = [];

  readonly newSession = (): SessionHandler => {
    const session = new StubSession(this);
    this.sessions.push(session);
    return session;
  };
}

export class StubSession implements SessionHandler {
  /** For tests: rows this session has handed to its Output. */
  rowsSent = 0;
  /** For tests: every Parse (statement name) and every Execute's row limit, in order. */
  readonly parses: string[] = [];
  readonly executeLimits: number[] = [];
  /** For tests: the SQLSTATE (or message) of every statement that failed, in order. */
  readonly errors: string[] = [];
  /** For tests: a `sleep` is waiting; close() was called. */
  sleeping = false;
  closed = false;

  private status: 'I' | 'T' | 'E' = 'I';
  private readonly statements = new Map<string, { plan: Plan; paramTypes: number[] }>();
  private readonly portals = new Map<string, Portal>();
  private running = false;
  private cancelRequested = false;
  private wakeSleeper: (() => void) | undefined;

  constructor(private readonly database: StubDatabase) {}

  async simpleQuery(sql: string, out: Output): Promise<void> {
    const parts = sql.split(';').filter((part) => part.trim() !== '');
    if (parts.length === 0) return out.emptyQuery();
    for (const part of parts) {
      await this.statement(async () => {
        const plan = planOf(part);
        this.refuseInFailedBlock(plan);
        const fields = fieldsOf(plan, 0);
        if (fields !== undefined) out.rowDescription(fields);
        const count = plan.kind === 'series' && plan.count !== 'parameter' ? plan.count : 0;
        await this.run({ plan, format: 0, count, next: 1 }, 0, out);
      });
    }
  }

  async parse(name: string, sql: string, paramTypes: number[]): Promise<void> {
    this.parses.push(name);
    if (name !== '' && this.statements.has(name)) throw new SqlError('42P05', `prepared statement "${name}" already exists`);
    const plan = planOf(sql);
    const types = Array.from({ length: parameterCount(plan) }, (_, index) => paramTypes[index] || INT4_OID);
    this.statements.set(name, { plan, paramTypes: types });
  }

  async bind(portal: string, statement: string, paramFormats: number[], params: Array<Uint8Array | null>, resultFormats: number[]): Promise<void> {
    const prepared = this.statements.get(statement);
    if (prepared === undefined) throw new SqlError('26000', `prepared statement "${statement}" does not exist`);
    if (params.length !== prepared.paramTypes.length) throw new SqlError('08P01', `bind message supplies ${params.length} parameters, but prepared statement "${statement}" requires ${prepared.paramTypes.length}`);
    const columns = fieldsOf(prepared.plan, 0)?.length ?? 0;
    if (resultFormats.length > 1 && resultFormats.length !== columns) throw new SqlError('08P01', `bind message has ${resultFormats.length} result formats but query has ${columns} columns`);
    if (portal !== '' && this.portals.has(portal)) throw new SqlError('42P03', `cursor "${portal}" already exists`);
    const plan = prepared.plan;
    let count = 0;
    if (plan.kind === 'series') {
      const parameter = params[0];
      count = plan.count !== 'parameter' ? plan.count : parameter === null || parameter === undefined ? 0 : decodeInt4(parameter, formatAt(paramFormats, 0));
    }
    this.portals.set(portal, { plan, format: formatAt(resultFormats, 0), count, next: 1 });
  }

  describeStatement(name: string): StatementDescription {
    const prepared = this.statements.get(name);
    if (prepared === undefined) throw new SqlError('26000', `prepared statement "${name}" does not exist`);
    return { paramTypes: prepared.paramTypes, fields: fieldsOf(prepared.plan, 0) };
  }

  describePortal(name: string): FieldDescription[] | undefined {
    const portal = this.portals.get(name);
    if (portal === undefined) throw new SqlError('34000', `portal "${name}" does not exist`);
    return fieldsOf(portal.plan, portal.format);
  }

  async execute(portalName: string, maxRows: number, out: Output): Promise<'complete' | 'suspended'> {
    this.executeLimits.push(maxRows);
    const portal = this.portals.get(portalName);
    if (portal === undefined) throw new SqlError('34000', `portal "${portalName}" does not exist`);
    return this.statement(() => this.run(portal, maxRows, out));
  }

  closeStatement(name: string): void {
    this.statements.delete(name);
  }

  closePortal(name: string): void {
    this.portals.delete(name);
  }

  async sync(): Promise<void> {
    this.portals.delete('');
  }

  transactionStatus(): 'I' | 'T' | 'E' {
    return this.status;
  }

  cancel(): void {
    // As in PostgreSQL, a cancel that arrives between statements does nothing.
    if (!this.running) return;
    this.cancelRequested = true;
    this.wakeSleeper?.();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Runs one statement: refuses it in a failed block, marks the block failed on error. */
  private async statement<T>(body: () => Promise<T>): Promise<T> {
    this.running = true;
    this.cancelRequested = false;
    try {
      return await body();
    } catch (error) {
      this.errors.push(error instanceof SqlError ? error.code : String(error));
      if (this.status === 'T') this.status = 'E';
      throw error;
    } finally {
      this.running = false;
    }
  }

  private refuseInFailedBlock(plan: Plan): void {
    if (this.status === 'E' && !(plan.kind === 'transaction' && plan.tag !== 'BEGIN')) {
      throw new SqlError('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
    }
  }

  private checkCancel(): void {
    if (this.cancelRequested) throw new SqlError('57014', 'canceling statement due to user request');
  }

  private async run(portal: Portal, maxRows: number, out: Output): Promise<'complete' | 'suspended'> {
    const plan = portal.plan;
    this.refuseInFailedBlock(plan);
    switch (plan.kind) {
      case 'series':
        return this.series(portal, maxRows, out);
      case 'copyIn':
        await this.copyIn(plan.table, out);
        return 'complete';
      case 'copyOut': {
        const lines = this.database.tables.get(plan.table);
        if (lines === undefined) throw new SqlError('42P01', `relation "${plan.table}" does not exist`);
        out.copyOutStart('text', [0]);
        for (const line of lines) out.copyData(Buffer.from(`${line}\n`));
        out.copyDone();
        out.commandComplete(`COPY ${lines.length}`);
        return 'complete';
      }
      case 'sleep':
        this.sleeping = true;
        try {
          if (!this.cancelRequested) await new Promise<void>((resolve) => (this.wakeSleeper = resolve));
        } finally {
          this.sleeping = false;
          this.wakeSleeper = undefined;
        }
        this.checkCancel();
        throw new Error('sleep woke without a cancel');
      case 'fail':
        throw new SqlError('42601', 'syntax error at or near "fail"', { position: 1 });
      case 'notice':
        out.notice({ severity: 'NOTICE', code: '00000', message: 'hello from the stub session' });
        out.commandComplete('DO');
        return 'complete';
      case 'transaction': {
        // COMMIT of a failed block rolls it back, and says so (as PostgreSQL does).
        const tag = plan.tag === 'COMMIT' && this.status === 'E' ? 'ROLLBACK' : plan.tag;
        this.status = plan.tag === 'BEGIN' ? 'T' : 'I';
        out.commandComplete(tag);
        return 'complete';
      }
      case 'empty':
        out.emptyQuery();
        return 'complete';
    }
  }

  private async series(portal: Portal, maxRows: number, out: Output): Promise<'complete' | 'suspended'> {
    let sent = 0;
    while (portal.next <= portal.count) {
      if (maxRows > 0 && sent === maxRows) return 'suspended';
      out.dataRow([encodeInt4(portal.next, portal.format)]);
      portal.next += 1;
      sent += 1;
      this.rowsSent += 1;
      if (sent % ROWS_PER_DRAIN === 0) {
        await out.drain();
        this.checkCancel();
      }
    }
    out.commandComplete(`SELECT ${portal.count}`);
    return 'complete';
  }

  private async copyIn(table: string, out: Output): Promise<void> {
    const decoder = new TextDecoder();
    const lines: string[] = [];
    let partial = '';
    for await (const chunk of out.copyIn('text', [0])) {
      const pieces = (partial + decoder.decode(chunk, { stream: true })).split('\n');
      partial = pieces.pop()!;
      lines.push(...pieces);
    }
    partial += decoder.decode();
    if (partial !== '') lines.push(partial);
    // "\." alone on a line is the old end-of-data marker; it is not a row.
    const rows = lines.filter((line, index) => !(line === '\\.' && index === lines.length - 1));
    const existing = this.database.tables.get(table) ?? [];
    existing.push(...rows);
    this.database.tables.set(table, existing);
    out.commandComplete(`COPY ${rows.length}`);
  }
}
