// Test support: PostgreSQL as the oracle. By default PGlite (PostgreSQL compiled to WASM,
// in process), one instance per test file; with BOREAL_TYPES_REFERENCE=postgres15 a real
// PostgreSQL 15 server (src/testing/postgres15.ts), to check what PGlite cannot tell us.
// `evaluate` runs many SQL expressions in one round trip and reports each one's text output
// (the type's output function, so char(n) keeps its padding) or its error; `binaryResults`
// runs a query with binary parameters and binary result format and returns the raw column
// bytes, so the binary formats are checked on real bytes.
//
// PGlite 0.5 is PostgreSQL 18; the tests avoid or pin the few inputs whose meaning changed
// after 15 (README.md lists them).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before } from 'node:test';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { concatBytes } from '../../common/index.js';
import { SqlError } from '../../pgwire/session.js';
import { startPostgres15, type Postgres15 } from '../../testing/postgres15.js';

export type Outcome =
  | { kind: 'value'; text: string | null }
  | { kind: 'error'; code: string; message: string; detail: string | null; hint: string | null };

const setupSql = `
create or replace function boreal_try(expression text, out result text, out is_null boolean,
                           out code text, out message text, out detail text, out hint text)
language plpgsql as $$
begin
  execute 'select format(''%s'', v), v is null from (select (' || expression || ') as v) s' into result, is_null;
exception when others then
  get stacked diagnostics code = returned_sqlstate, message = message_text,
                          detail = pg_exception_detail, hint = pg_exception_hint;
end $$;
`;

/** What the tests need from a PostgreSQL: SQL with parameters, and binary round trips. */
interface Backend {
  query<T>(sql: string, parameters: unknown[]): Promise<T[]>;
  binaryResults(sql: string, parameters: ReadonlyArray<{ oid: number; bytes: Uint8Array | null }>): Promise<Array<Array<Uint8Array | null>>>;
  close(): Promise<void>;
}

export class ReferencePostgres {
  private constructor(private readonly backend: Backend) {}

  static async start(): Promise<ReferencePostgres> {
    const backend = process.env.BOREAL_TYPES_REFERENCE === 'postgres15' ? await startServerBackend() : await startPgliteBackend();
    await backend.query(setupSql, []);
    return new ReferencePostgres(backend);
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  /** Each expression's output text (null for NULL) or error, in order. */
  async evaluate(expressions: readonly string[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    const batchSize = 2000;
    for (let start = 0; start < expressions.length; start += batchSize) {
      const batch = expressions.slice(start, start + batchSize);
      const rows = await this.backend.query<{ result: string | null; is_null: boolean | null; code: string | null; message: string | null; detail: string | null; hint: string | null }>(
        'select (boreal_try(e)).* from unnest($1::text[]) with ordinality as t(e, n) order by n',
        [batch],
      );
      for (const row of rows) {
        if (row.code !== null) {
          outcomes.push({ kind: 'error', code: row.code, message: row.message ?? '', detail: emptyToNull(row.detail), hint: emptyToNull(row.hint) });
        } else {
          outcomes.push({ kind: 'value', text: row.is_null === true ? null : row.result });
        }
      }
    }
    return outcomes;
  }

  async query<T>(sql: string, parameters: unknown[] = []): Promise<T[]> {
    return this.backend.query<T>(sql, parameters);
  }

  /**
   * Runs `sql` with parameters given as binary values of the stated OIDs, asking for binary
   * results; returns each row's column bytes, or throws the server's error as a SqlError.
   */
  async binaryResults(sql: string, parameters: ReadonlyArray<{ oid: number; bytes: Uint8Array | null }> = []): Promise<Array<Array<Uint8Array | null>>> {
    return this.backend.binaryResults(sql, parameters);
  }
}

/**
 * A fresh PGlite spends most of its start in initdb (about 6 s); a data directory dumped once
 * and loaded afterwards starts in under a second. The dump is cached in the temporary
 * directory under the PGlite version, written whole then renamed, and ignored if unusable.
 */
async function createPglite(): Promise<PGlite> {
  const packageDirectory = path.dirname(path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')));
  const version = (JSON.parse(fs.readFileSync(path.join(packageDirectory, 'package.json'), 'utf8')) as { version: string }).version;
  const cachePath = path.join(os.tmpdir(), `boreal-types-pglite-${version}.tar`);
  if (fs.existsSync(cachePath)) {
    try {
      return await PGlite.create({ loadDataDir: new Blob([fs.readFileSync(cachePath)]) });
    } catch {
      // A damaged or foreign dump: start from scratch and replace it.
    }
  }
  const database = await PGlite.create();
  await database.exec(setupSql);
  const dump = await database.dumpDataDir('none');
  const temporaryPath = `${cachePath}.${process.pid}`;
  fs.writeFileSync(temporaryPath, new Uint8Array(await dump.arrayBuffer()));
  fs.renameSync(temporaryPath, cachePath);
  return database;
}

async function startPgliteBackend(): Promise<Backend> {
  const database = await createPglite();
  return {
    query: async <T>(sql: string, parameters: unknown[]) => (parameters.length === 0 ? (await database.exec(sql)).at(-1)?.rows ?? [] : (await database.query(sql, parameters)).rows) as T[],
    binaryResults: async (sql, parameters) => {
      const request = concatBytes([parseMessage(sql, parameters.map((p) => p.oid)), bindMessage(parameters.map((p) => p.bytes)), executeMessage(), syncMessage()]);
      return readDataRows(await database.execProtocolRaw(request));
    },
    close: () => database.close(),
  };
}

async function startServerBackend(): Promise<Backend> {
  const server: Postgres15 = await startPostgres15();
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  const sendFunctions = new Map<number, string>();
  // node-postgres decodes binary result columns as UTF-8 text, losing bytes. So results come
  // back as text and each value is turned into its binary form by the type's own send
  // function on the server (text output read back by the input function is the same value
  // for every type tested). Parameters go out in binary: node-postgres sends Buffers so.
  const send = async (typeOid: number, text: string): Promise<Uint8Array> => {
    let function_ = sendFunctions.get(typeOid);
    if (function_ === undefined) {
      const rows = (await client.query<{ send: string; name: string }>("select typsend::text as send, 'pg_catalog.' || quote_ident(typname) as name from pg_type where oid = $1", [typeOid])).rows;
      function_ = `${rows[0]!.send}($1::${rows[0]!.name})`;
      sendFunctions.set(typeOid, function_);
    }
    const rows = (await client.query<{ bytes: Buffer }>(`select ${function_} as bytes`, [text])).rows;
    return new Uint8Array(rows[0]!.bytes);
  };
  return {
    query: async <T>(sql: string, parameters: unknown[]) => (await client.query(sql, parameters)).rows as T[],
    binaryResults: async (sql, parameters) => {
      let result: pg.QueryResult;
      try {
        result = await client.query({
          text: sql,
          values: parameters.map((p) => (p.bytes === null ? null : Buffer.from(p.bytes))),
          rowMode: 'array',
          types: { getTypeParser: () => (value: string) => value },
        } as pg.QueryConfig);
      } catch (error) {
        const { code, message, detail } = error as { code: string; message: string; detail?: string };
        throw new SqlError(code, message, detail === undefined ? {} : { detail });
      }
      const rows: Array<Array<Uint8Array | null>> = [];
      for (const row of result.rows as Array<Array<string | null>>) {
        const columns: Array<Uint8Array | null> = [];
        for (const [index, value] of row.entries()) columns.push(value === null ? null : await send(result.fields[index]!.dataTypeID, value));
        rows.push(columns);
      }
      return rows;
    },
    close: async () => {
      await client.end();
      await server.stop();
    },
  };
}

function emptyToNull(text: string | null): string | null {
  return text === null || text === '' ? null : text;
}

/** A successful outcome's text, or 'ERROR code: message' — the comparable form of either. */
export function describeOutcome(outcome: Outcome): string {
  if (outcome.kind === 'value') return outcome.text === null ? 'NULL' : `'${outcome.text}'`;
  // PostgreSQL 16 capitalized the setting's name in this hint; 15, our reference, did not.
  const hint = outcome.hint?.replace('different "DateStyle" setting', 'different "datestyle" setting') ?? null;
  outcome = { ...outcome, hint };
  return `ERROR ${outcome.code}: ${outcome.message}${outcome.detail === null ? '' : ` DETAIL: ${outcome.detail}`}${outcome.hint === null ? '' : ` HINT: ${outcome.hint}`}`;
}

/** Runs our implementation of one case the way describeOutcome prints PostgreSQL's. */
export function describeOurs(run: () => string | null): string {
  try {
    const text = run();
    return text === null ? 'NULL' : `'${text}'`;
  } catch (error) {
    if (!(error instanceof SqlError)) throw error;
    const { detail, hint } = error.extra;
    return `ERROR ${error.code}: ${error.message}${detail === undefined ? '' : ` DETAIL: ${detail}`}${hint === undefined ? '' : ` HINT: ${hint}`}`;
  }
}

/** A SQL string literal for any text (standard_conforming_strings on). */
export function sqlLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** array_send of a text[] (one dimension, no NULLs), to pass many values in one parameter. */
export function textArrayBinary(texts: readonly string[]): Uint8Array {
  const encoded = texts.map((text) => encoder.encode(text));
  const bytes = new Uint8Array(20 + encoded.reduce((sum, item) => sum + 4 + item.length, 0));
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 1); // dimensions
  view.setInt32(4, 0); // no NULLs
  view.setInt32(8, 25); // element type: text
  view.setInt32(12, texts.length);
  view.setInt32(16, 1); // lower bound
  let offset = 20;
  for (const item of encoded) {
    view.setInt32(offset, item.length);
    bytes.set(item, offset + 4);
    offset += 4 + item.length;
  }
  return bytes;
}

// --- A minimal frontend encoder and backend decoder for the extended protocol ----------

const encoder = new TextEncoder();

function message(type: string, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(5 + body.length);
  bytes[0] = type.charCodeAt(0);
  new DataView(bytes.buffer).setInt32(1, 4 + body.length);
  bytes.set(body, 5);
  return bytes;
}


const cString = (text: string): Uint8Array => concatBytes([encoder.encode(text), Uint8Array.of(0)]);

function int16(value: number): Uint8Array {
  const bytes = new Uint8Array(2);
  new DataView(bytes.buffer).setInt16(0, value);
  return bytes;
}

function int32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value);
  return bytes;
}

function parseMessage(sql: string, parameterOids: readonly number[]): Uint8Array {
  return message('P', concatBytes([cString(''), cString(sql), int16(parameterOids.length), ...parameterOids.map(int32)]));
}

function bindMessage(parameters: ReadonlyArray<Uint8Array | null>): Uint8Array {
  const values = parameters.flatMap((bytes) => (bytes === null ? [int32(-1)] : [int32(bytes.length), bytes]));
  // All parameters binary (one format code for all), all results binary.
  const formats = parameters.length === 0 ? [int16(0)] : [int16(1), int16(1)];
  return message('B', concatBytes([cString(''), cString(''), ...formats, int16(parameters.length), ...values, int16(1), int16(1)]));
}

const executeMessage = (): Uint8Array => message('E', concatBytes([cString(''), int32(0)]));
const syncMessage = (): Uint8Array => message('S', new Uint8Array(0));

function readDataRows(response: Uint8Array): Array<Array<Uint8Array | null>> {
  const view = new DataView(response.buffer, response.byteOffset, response.byteLength);
  const rows: Array<Array<Uint8Array | null>> = [];
  let offset = 0;
  while (offset < response.length) {
    const type = String.fromCharCode(response[offset]!);
    const length = view.getInt32(offset + 1);
    const body = response.subarray(offset + 5, offset + 1 + length);
    if (type === 'D') rows.push(readDataRow(body));
    if (type === 'E') throw readError(body);
    offset += 1 + length;
  }
  return rows;
}

function readDataRow(body: Uint8Array): Array<Uint8Array | null> {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const columns: Array<Uint8Array | null> = [];
  let offset = 2;
  for (let column = 0; column < view.getInt16(0); column++) {
    const length = view.getInt32(offset);
    offset += 4;
    columns.push(length < 0 ? null : body.slice(offset, offset + length));
    offset += Math.max(length, 0);
  }
  return columns;
}

function readError(body: Uint8Array): SqlError {
  const fields = new Map<string, string>();
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset]!);
    const end = body.indexOf(0, offset + 1);
    fields.set(code, new TextDecoder().decode(body.subarray(offset + 1, end)));
    offset = end + 1;
  }
  const detail = fields.get('D');
  return new SqlError(fields.get('C') ?? 'XX000', fields.get('M') ?? '', detail === undefined ? {} : { detail });
}

/** A differential case: SQL for PostgreSQL and the same computation on our side. */
export interface ReferenceCase {
  sql: string;
  ours: () => string | null;
}

/**
 * The shared set-up of the type tests: one reference PostgreSQL for the file (started in
 * before, closed in after), a replayable seed (TYPES_TEST_SEED), fast-check sampling from
 * it, and the comparison of cases with PostgreSQL's outcomes.
 */
export function referenceSuite(): {
  seed: number;
  sample: <T>(arbitrary: fc.Arbitrary<T>, count: number, offset?: number) => T[];
  reference: () => ReferencePostgres;
  assertSameAsPostgres: (cases: readonly ReferenceCase[]) => Promise<void>;
} {
  let postgres: ReferencePostgres | undefined;
  const seed = Number(process.env.TYPES_TEST_SEED ?? Date.now() % 1_000_000);
  before(async () => {
    postgres = await ReferencePostgres.start();
  });
  after(async () => {
    await postgres?.close();
  });
  const reference = (): ReferencePostgres => {
    assert.ok(postgres !== undefined, 'the reference PostgreSQL is started in before()');
    return postgres;
  };
  return {
    seed,
    sample: (arbitrary, count, offset = 0) => fc.sample(arbitrary, { seed: seed + offset, numRuns: count }),
    reference,
    assertSameAsPostgres: async (cases) => {
      const outcomes = await reference().evaluate(cases.map((each) => each.sql));
      const differences: string[] = [];
      cases.forEach((each, index) => {
        const expected = describeOutcome(outcomes[index]!);
        const actual = describeOurs(each.ours);
        if (expected !== actual) differences.push(`${each.sql}\n    postgres: ${expected}\n    ours:     ${actual}`);
      });
      assert.deepEqual(differences.slice(0, 12), [], `seed ${seed}: ${differences.length} of ${cases.length} differ`);
    },
  };
}
