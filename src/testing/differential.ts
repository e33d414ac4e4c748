// Differential SQL testing: the same statements on Boreal (over the wire, real processes)
// and on PostgreSQL (PGlite in-process, one backend), compared statement by statement:
// column names, column type OIDs, rows (as PostgreSQL's text output), and SQLSTATEs.
//
// Case files (spec/sql/*.sql) are plain SQL scripts. Rows are compared as sorted lists
// unless the statement's top-level query has an ORDER BY, so the order PostgreSQL happens
// to return unordered rows in does not matter. A comment line `-- order-insensitive`
// before a statement... is not needed; `-- skip-compare` skips comparing the next
// statement's rows (it still must succeed or fail the same way), for volatile output.

import * as fs from 'node:fs';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { loadModule, parseSync } from 'libpg-query';
import { after, before } from 'node:test';
import { SqlCluster } from './sql-cluster.js';

export interface Outcome {
  error?: string | undefined;
  fields?: Array<{ name: string; type: number }> | undefined;
  rows?: string[] | undefined;
  command?: string | undefined;
}

export interface Statement {
  sql: string;
  ordered: boolean;
  compareRows: boolean;
  line: number;
}

export async function readCases(file: string): Promise<Statement[]> {
  await loadModule();
  const text = fs.readFileSync(file, 'utf8');
  const tree = parseSync(text) as { stmts: Array<{ stmt: Record<string, { sortClause?: unknown }>; stmt_location?: number; stmt_len?: number }> };
  return tree.stmts.map((raw) => {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len === undefined || raw.stmt_len === 0 ? text.length : start + raw.stmt_len;
    const chunk = text.slice(start, end);
    const sql = chunk.replace(/^(\s*--[^\n]*\n)+/g, '').trim();
    const leading = chunk.slice(0, chunk.indexOf(sql));
    const select = raw.stmt.SelectStmt;
    return {
      sql,
      ordered: select?.sortClause !== undefined,
      compareRows: !/--\s*skip-compare/.test(leading),
      line: text.slice(0, start + leading.length).split('\n').length,
    };
  });
}

const rowText = (row: unknown[]): string => row.map((value) => (value === null ? 'NULL' : String(value))).join('|');

function normalize(statement: Statement, outcome: Outcome): Outcome {
  if (outcome.rows !== undefined && !statement.ordered) outcome.rows = [...outcome.rows].sort();
  if (!statement.compareRows) delete outcome.rows;
  return outcome;
}

/** Runs statements over a node-postgres connection with every value as text. */
export class WireTarget {
  private constructor(private readonly client: pg.Client) {}

  static async connect(url: string): Promise<WireTarget> {
    const client = new pg.Client({ connectionString: url, types: { getTypeParser: () => (value: string) => value } as never });
    await client.connect();
    client.on('error', () => undefined);
    return new WireTarget(client);
  }

  async run(statement: Statement): Promise<Outcome> {
    try {
      const result = await this.client.query({ text: statement.sql, rowMode: 'array' });
      const last = Array.isArray(result) ? result[result.length - 1] : result;
      return normalize(statement, {
        command: last.command,
        fields: last.fields.map((field: pg.FieldDef) => ({ name: field.name, type: field.dataTypeID })),
        rows: last.fields.length > 0 ? last.rows.map((row: unknown[]) => rowText(row)) : undefined,
      } as Outcome);
    } catch (error) {
      return { error: (error as { code?: string }).code ?? `client: ${(error as Error).message}` };
    }
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

const IDENTITY_OIDS = [16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 700, 701, 705, 1042, 1043, 1082, 1083, 1114, 1184, 1186, 1700, 2205, 3802, 1000, 1001, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1185, 1231];

/** PostgreSQL in WebAssembly (single backend), values as text. */
export class PgliteTarget {
  private constructor(private readonly db: PGlite) {}

  static async start(): Promise<PgliteTarget> {
    return new PgliteTarget(await PGlite.create());
  }

  async run(statement: Statement): Promise<Outcome> {
    const parsers: Record<number, (value: string) => string> = {};
    for (const oid of IDENTITY_OIDS) parsers[oid] = (value) => value;
    try {
      const results = await this.db.exec(statement.sql, { rowMode: 'array', parsers });
      const last = results[results.length - 1]!;
      return normalize(statement, {
        fields: last.fields.map((field) => ({ name: field.name, type: field.dataTypeID })),
        rows: last.fields.length > 0 ? (last.rows as unknown[][]).map((row) => rowText(row)) : undefined,
      });
    } catch (error) {
      return { error: (error as { code?: string }).code ?? `client: ${(error as Error).message}` };
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

export interface Difference {
  file: string;
  line: number;
  sql: string;
  boreal: Outcome;
  postgres: Outcome;
}

export function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.error !== undefined || b.error !== undefined) return a.error === b.error;
  return JSON.stringify(a.fields ?? []) === JSON.stringify(b.fields ?? []) && JSON.stringify(a.rows) === JSON.stringify(b.rows);
}

/**
 * The set-up both differential test files share: a Boreal cluster with a wire connection and
 * a PGlite instance, started in before() and ended in after(); the getters give them to tests.
 */
export function differentialSuite(): { boreal: () => WireTarget; postgres: () => PgliteTarget } {
  let cluster: SqlCluster | undefined;
  let boreal: WireTarget | undefined;
  let postgres: PgliteTarget | undefined;
  before(async () => {
    const started = await Promise.all([SqlCluster.start({ cacheMb: 32 }), PgliteTarget.start()]);
    [cluster, postgres] = started;
    boreal = await WireTarget.connect(started[0].url());
  });
  after(async () => {
    await boreal?.close();
    await postgres?.close();
    await cluster?.destroy();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the differential targets start in before()');
    return value;
  };
  return { boreal: () => started(boreal), postgres: () => started(postgres) };
}
