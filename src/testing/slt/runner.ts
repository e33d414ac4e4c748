// Runs one parsed script on a session and counts what happened. Records run in order on
// one session, as the C runner does; the file's tables and views are dropped at the end
// so the next file on the same database starts empty (Boreal may have no CREATE DATABASE).

import { ConnectionLostError, type Outcome, type SqlSession } from './connection.js';
import { isSkipped, type QueryRecord, type SltRecord, type StatementRecord } from './parser.js';
import { compareResult, hashValues, resultValues } from './results.js';

export interface Failure {
  line: number;
  kind: 'statement' | 'query' | 'cleanup';
  sql: string;
  reason: string;
  expected: string;
  actual: string;
}

export interface FileResult {
  file: string;
  statementsOk: number;
  statementsFailed: number;
  statementsSkipped: number;
  queriesPassed: number;
  queriesFailed: number;
  queriesSkipped: number;
  /** Queries that took longer than the statement timeout (also counted as failed). */
  timeouts: number;
  /** Record kinds this runner cannot run, by keyword ("statement count"), with their count. */
  unsupported: Map<string, number>;
  halted: boolean;
  /** The connection was lost and could not be restored; the remaining records count as failed. */
  connectionLost: boolean;
  failures: Failure[];
  elapsedMs: number;
}

export interface RunOptions {
  /** Keep failure details (SQL, expected, actual) for printing. */
  keepFailures: boolean;
}

interface FileState {
  result: FileResult;
  hashThreshold: number;
  /** Hash of the first passing query with each label: every query with that label must agree. */
  labelHashes: Map<string, string>;
  createdTables: string[];
  createdViews: string[];
  options: RunOptions;
}

const createdRelationPattern = /^\s*create\s+(?:(?:temp|temporary)\s+)?(table|view)\s+(?:if\s+not\s+exists\s+)?("[^"]+"|[\w.$]+)/i;

export function emptyFileResult(file: string): FileResult {
  return {
    file,
    statementsOk: 0,
    statementsFailed: 0,
    statementsSkipped: 0,
    queriesPassed: 0,
    queriesFailed: 0,
    queriesSkipped: 0,
    timeouts: 0,
    unsupported: new Map(),
    halted: false,
    connectionLost: false,
    failures: [],
    elapsedMs: 0,
  };
}

export async function runScript(file: string, records: readonly SltRecord[], session: SqlSession, options: RunOptions): Promise<FileResult> {
  const started = performance.now();
  const state: FileState = { result: emptyFileResult(file), hashThreshold: 0, labelHashes: new Map(), createdTables: [], createdViews: [], options };
  let index = 0;
  try {
    for (; index < records.length; index++) {
      const record = records[index]!;
      if (await runRecord(state, record, session) === 'halt') {
        state.result.halted = true;
        break;
      }
    }
  } catch (error) {
    if (!(error instanceof ConnectionLostError)) throw error;
    state.result.connectionLost = true;
    countNotRun(state, records.slice(index), error.message);
  }
  if (!state.result.connectionLost) await dropCreatedRelations(state, session);
  state.result.elapsedMs = performance.now() - started;
  return state.result;
}

async function runRecord(state: FileState, record: SltRecord, session: SqlSession): Promise<'continue' | 'halt'> {
  const skipped = isSkipped(record.conditions);
  switch (record.kind) {
    case 'statement':
      if (skipped) state.result.statementsSkipped++;
      else await runStatement(state, record, session);
      return 'continue';
    case 'query':
      if (skipped) state.result.queriesSkipped++;
      else await runQuery(state, record, session);
      return 'continue';
    case 'halt':
      return skipped ? 'continue' : 'halt';
    case 'hash-threshold':
      if (!skipped) state.hashThreshold = record.threshold;
      return 'continue';
    case 'unsupported':
      state.result.unsupported.set(record.keyword, (state.result.unsupported.get(record.keyword) ?? 0) + 1);
      return 'continue';
    default: {
      const unreachable: never = record;
      throw new Error(`unknown record ${JSON.stringify(unreachable)}`);
    }
  }
}

async function runStatement(state: FileState, record: StatementRecord, session: SqlSession): Promise<void> {
  trackCreatedRelation(state, record.sql);
  const outcome = await session.execute(record.sql);
  const failed = outcome.kind === 'error';
  if (failed === record.expectError) {
    state.result.statementsOk++;
    return;
  }
  state.result.statementsFailed++;
  if (outcome.kind === 'error' && outcome.timedOut) state.result.timeouts++;
  recordFailure(state, {
    line: record.line,
    kind: 'statement',
    sql: record.sql,
    reason: record.expectError ? 'statement succeeded, expected an error' : 'statement failed',
    expected: record.expectError ? 'error' : 'ok',
    actual: outcome.kind === 'error' ? describeError(outcome) : 'ok',
  });
}

async function runQuery(state: FileState, record: QueryRecord, session: SqlSession): Promise<void> {
  const outcome = await session.execute(record.sql);
  const fail = (reason: string, expected: string, actual: string): void => {
    state.result.queriesFailed++;
    recordFailure(state, { line: record.line, kind: 'query', sql: record.sql, reason, expected, actual });
  };
  const expectedText = record.expected.kind === 'hash' ? `${record.expected.count} values hashing to ${record.expected.md5}` : record.expected.values.join('\n');
  if (outcome.kind === 'error') {
    if (outcome.timedOut) state.result.timeouts++;
    fail('query failed', expectedText, describeError(outcome));
    return;
  }
  if (outcome.columnCount !== record.types.length) {
    fail(`query returned ${outcome.columnCount} columns, expected ${record.types.length} (${record.types.join('')})`, expectedText, '');
    return;
  }
  const values = resultValues(record.types, outcome.rows, record.sort);
  const comparison = compareResult(record.expected, values, state.hashThreshold);
  if (!comparison.matches) {
    fail('wrong result', comparison.expectedText, comparison.actualText);
    return;
  }
  if (record.label !== undefined && !checkLabel(state, record.label, values)) {
    fail(`result differs from an earlier query labelled ${record.label}`, expectedText, '');
    return;
  }
  state.result.queriesPassed++;
}

/**
 * Queries that share a label must return the same values. Only passing queries set a
 * label's hash, so a wrong answer is counted once, by its own comparison.
 */
function checkLabel(state: FileState, label: string, values: readonly string[]): boolean {
  const hash = hashValues(values);
  const earlier = state.labelHashes.get(label);
  if (earlier === undefined) {
    state.labelHashes.set(label, hash);
    return true;
  }
  return earlier === hash;
}

function trackCreatedRelation(state: FileState, sql: string): void {
  const match = createdRelationPattern.exec(sql);
  if (match === null) return;
  const list = match[1]!.toLowerCase() === 'view' ? state.createdViews : state.createdTables;
  if (!list.includes(match[2]!)) list.push(match[2]!);
}

/** Views first (newest first, a view may read another), then tables; IF EXISTS because the file may have dropped them. */
async function dropCreatedRelations(state: FileState, session: SqlSession): Promise<void> {
  const drops = [
    ...[...state.createdViews].reverse().map((name) => `DROP VIEW IF EXISTS ${name}`),
    ...[...state.createdTables].reverse().map((name) => `DROP TABLE IF EXISTS ${name}`),
  ];
  for (const sql of drops) {
    const outcome = await session.execute(sql);
    if (outcome.kind === 'error') {
      // A leftover table would change the next file's results: always keep these.
      state.result.failures.push({ line: 0, kind: 'cleanup', sql, reason: 'cleanup failed', expected: 'ok', actual: describeError(outcome) });
    }
  }
}

function countNotRun(state: FileState, records: readonly SltRecord[], message: string): void {
  for (const record of records) {
    if (record.kind === 'statement' && !isSkipped(record.conditions)) state.result.statementsFailed++;
    if (record.kind === 'query' && !isSkipped(record.conditions)) state.result.queriesFailed++;
    if (record.kind === 'halt' && !isSkipped(record.conditions)) break;
  }
  state.result.failures.push({ line: records[0]?.line ?? 0, kind: 'statement', sql: '', reason: 'connection lost; the rest of the file was not run', expected: '', actual: message });
}

function recordFailure(state: FileState, failure: Failure): void {
  if (state.options.keepFailures) state.result.failures.push(failure);
}

function describeError(outcome: Extract<Outcome, { kind: 'error' }>): string {
  return outcome.sqlState === undefined ? `error: ${outcome.message}` : `error ${outcome.sqlState}: ${outcome.message}`;
}
