// Test support: PostgreSQL as the oracle, in process (PGlite, PostgreSQL compiled to WASM).
// One instance per test file. `evaluate` runs many SQL expressions in one round trip and
// reports each one's text output (the type's output function, so char(n) keeps its padding)
// or its error; `binaryResults` runs a query over the extended protocol with binary result
// format and returns the raw column bytes, so the binary formats are checked on real bytes.
//
// PGlite 0.5 is PostgreSQL 18; the tests avoid the few inputs whose meaning changed after 15
// (non-decimal integer literals, underscores in numbers) — see README.md.

import { PGlite } from '@electric-sql/pglite';
import { SqlError } from '../../pgwire/session.js';

export type Outcome =
  | { kind: 'value'; text: string | null }
  | { kind: 'error'; code: string; message: string; detail: string | null; hint: string | null };

const setupSql = `
create function boreal_try(expression text, out result text, out is_null boolean,
                           out code text, out message text, out detail text, out hint text)
language plpgsql as $$
begin
  execute 'select format(''%s'', v), v is null from (select (' || expression || ') as v) s' into result, is_null;
exception when others then
  get stacked diagnostics code = returned_sqlstate, message = message_text,
                          detail = pg_exception_detail, hint = pg_exception_hint;
end $$;
`;

export class ReferencePostgres {
  private constructor(private readonly database: PGlite) {}

  static async start(): Promise<ReferencePostgres> {
    const database = await PGlite.create();
    await database.exec(setupSql);
    return new ReferencePostgres(database);
  }

  async close(): Promise<void> {
    await this.database.close();
  }

  /** Each expression's output text (null for NULL) or error, in order. */
  async evaluate(expressions: readonly string[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    const batchSize = 2000;
    for (let start = 0; start < expressions.length; start += batchSize) {
      const batch = expressions.slice(start, start + batchSize);
      const result = await this.database.query<{ result: string | null; is_null: boolean | null; code: string | null; message: string | null; detail: string | null; hint: string | null }>(
        'select (boreal_try(e)).* from unnest($1::text[]) with ordinality as t(e, n) order by n',
        [batch],
      );
      for (const row of result.rows) {
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
    return (await this.database.query<T>(sql, parameters)).rows;
  }

  /**
   * Runs `sql` (with parameters given as binary values of the stated OIDs) asking for binary
   * results; returns each row's column bytes, or throws the server's error as a SqlError.
   */
  async binaryResults(sql: string, parameters: ReadonlyArray<{ oid: number; bytes: Uint8Array | null }> = []): Promise<Array<Array<Uint8Array | null>>> {
    const request = concat([parseMessage(sql, parameters.map((p) => p.oid)), bindMessage(parameters.map((p) => p.bytes)), executeMessage(), syncMessage()]);
    const response = await this.database.execProtocolRaw(request);
    return readDataRows(response);
  }
}

function emptyToNull(text: string | null): string | null {
  return text === null || text === '' ? null : text;
}

/** A successful outcome's text, or 'ERROR code: message' — the comparable form of either. */
export function describeOutcome(outcome: Outcome): string {
  if (outcome.kind === 'value') return outcome.text === null ? 'NULL' : `'${outcome.text}'`;
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

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const cString = (text: string): Uint8Array => concat([encoder.encode(text), Uint8Array.of(0)]);

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
  return message('P', concat([cString(''), cString(sql), int16(parameterOids.length), ...parameterOids.map(int32)]));
}

function bindMessage(parameters: ReadonlyArray<Uint8Array | null>): Uint8Array {
  const values = parameters.flatMap((bytes) => (bytes === null ? [int32(-1)] : [int32(bytes.length), bytes]));
  // All parameters binary (one format code for all), all results binary.
  const formats = parameters.length === 0 ? [int16(0)] : [int16(1), int16(1)];
  return message('B', concat([cString(''), cString(''), ...formats, int16(parameters.length), ...values, int16(1), int16(1)]));
}

const executeMessage = (): Uint8Array => message('E', concat([cString(''), int32(0)]));
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
