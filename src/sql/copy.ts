// COPY … FROM STDIN and COPY … TO STDOUT in text and CSV formats (PostgreSQL's rules:
// text uses a delimiter (tab), \N for NULL and backslash escapes; CSV uses quotes, an
// unquoted empty field for NULL, and an optional header line).

import { SqlError, type Output } from '../pgwire/session.js';
import type { Env, Node, Params } from './expr.js';
import { bindContext, newQueryContext, planQuery, type StatementCatalog } from './planner.js';
import type { Transaction } from '../engine/database.js';
import { TableWriter } from './dml.js';
import { installSubqueries, type PreparedPlan } from './statement.js';
import { columnType, textIn, textOut, type Datum } from './typesys.js';
import type { SqlSession } from './session.js';
import type { PlanNode } from './exec.js';

interface CopyOptions {
  format: 'text' | 'csv';
  delimiter: string;
  null: string;
  header: boolean;
  quote: string;
  escape: string;
}

function copyOptions(options: Node[] | undefined): CopyOptions {
  const result: CopyOptions = { format: 'text', delimiter: '\t', null: '\\N', header: false, quote: '"', escape: '"' };
  let delimiterSet = false;
  let nullSet = false;
  for (const option of options ?? []) {
    const name = option.DefElem.defname as string;
    const arg = option.DefElem.arg;
    const value = (arg?.String?.sval ?? arg?.A_Const?.sval?.sval ?? (arg?.Boolean !== undefined ? String(arg.Boolean.boolval === true) : arg?.Integer !== undefined ? String(arg.Integer.ival ?? 0) : undefined)) as string | undefined;
    switch (name) {
      case 'format':
        if (value === 'binary') throw new SqlError('0A000', 'COPY in binary format is not supported yet');
        if (value !== 'text' && value !== 'csv') throw new SqlError('22023', `COPY format "${value}" not recognized`);
        result.format = value;
        break;
      case 'delimiter':
        if (value === undefined || value.length !== 1) throw new SqlError('0A000', 'COPY delimiter must be a single one-byte character');
        result.delimiter = value;
        delimiterSet = true;
        break;
      case 'null':
        result.null = value ?? '';
        nullSet = true;
        break;
      case 'header':
        result.header = value === undefined || value === 'true' || value === 'on' || value === '1';
        break;
      case 'quote':
        result.quote = value ?? '"';
        break;
      case 'escape':
        result.escape = value ?? '"';
        break;
      case 'freeze':
      case 'encoding':
        break;
      default:
        throw new SqlError('0A000', `COPY option "${name}" is not supported yet`);
    }
  }
  if (result.format === 'csv') {
    if (!delimiterSet) result.delimiter = ',';
    if (!nullSet) result.null = '';
  } else if (result.header) throw new SqlError('0A000', 'COPY HEADER available only in CSV mode');
  return result;
}

/** A COPY runs as one statement of the session's transaction, with subqueries and nextval available. */
function startCopy(session: SqlSession, signal: AbortSignal): { tx: Transaction; env: Env } {
  const tx = session.transaction();
  tx.beginStatement({ signal });
  const env = session.copyEnv();
  installSubqueries({ tx, signal }, env);
  return { tx, env };
}

export function planCopy(session: SqlSession, body: Node, catalog: StatementCatalog, params: Params): PreparedPlan {
  if (body.filename !== undefined) throw new SqlError('0A000', 'COPY to or from a server file is not supported; use STDIN/STDOUT (psql \\copy)');
  if (body.is_program) throw new SqlError('0A000', 'COPY … PROGRAM is not supported');
  if (body.whereClause !== undefined) throw new SqlError('0A000', 'COPY … WHERE is not supported yet');
  const options = copyOptions(body.options);
  if (body.is_from) return copyFrom(session, body, catalog, options, params);
  return copyTo(session, body, catalog, options, params);
}

/** Rows COPY FROM hands the engine at once. */
const COPY_BATCH_ROWS = 256;

function copyFrom(session: SqlSession, body: Node, catalog: StatementCatalog, options: CopyOptions, params: Params): PreparedPlan {
  const table = catalog.table(body.relation.schemaname, body.relation.relname);
  if (table === undefined) throw new SqlError('42P01', `relation "${body.relation.relname}" does not exist`);
  const targets: number[] = body.attlist === undefined ? table.columns.map((_, index) => index) : (body.attlist as Node[]).map((item) => {
    const name = item.String.sval as string;
    const index = table.columns.findIndex((column) => column.name === name);
    if (index < 0) throw new SqlError('42703', `column "${name}" of relation "${table.name}" does not exist`);
    return index;
  });
  const writer = new TableWriter(table, bindContext(newQueryContext(catalog, params)), targets);
  const types = targets.map((column) => columnType(table.columns[column]!.type));
  return {
    kind: 'utility',
    columns: undefined,
    run: async (out: Output, signal: AbortSignal) => {
      const { tx, env } = startCopy(session, signal);
      let count = 0;
      let lineNumber = 0;
      const parser = new LineSplitter(options);
      const handle = async (fields: Array<string | null>): Promise<void> => {
        lineNumber++;
        if (options.header && lineNumber === 1) return;
        if (fields.length !== targets.length) {
          throw new SqlError('22P04', fields.length < targets.length ? `missing data for column "${table.columns[targets[fields.length]!]!.name}"` : 'extra data after last expected column', { detail: `COPY ${table.name}, line ${lineNumber}` });
        }
        const values: Datum[] = fields.map((field, position) => (field === null ? null : textIn(types[position]!.type, field, types[position]!.typmod)));
        batch.push(await writer.complete(values, env));
        count++;
        if (batch.length >= COPY_BATCH_ROWS) await write();
      };
      // Rows go to the trees in batches (several to a mini-transaction).
      const batch: Datum[][] = [];
      const write = async (): Promise<void> => {
        signal.throwIfAborted();
        await writer.insertMany({ tx, signal }, batch.splice(0), env);
      };
      for await (const chunk of out.copyIn('text', targets.map(() => 0))) {
        for (const fields of parser.push(Buffer.from(chunk).toString('utf8'))) {
          if (fields === 'end') break;
          await handle(fields);
        }
      }
      for (const fields of parser.end()) if (fields !== 'end') await handle(fields);
      await write();
      return `COPY ${count}`;
    },
  };
}

/** Splits COPY input into rows of fields; a CSV field may span lines inside quotes. */
class LineSplitter {
  private pending = '';
  private finished = false;

  constructor(private readonly options: CopyOptions) {}

  *push(text: string): Generator<Array<string | null> | 'end'> {
    this.pending += text;
    for (;;) {
      if (this.finished) return;
      const end = this.rowEnd();
      if (end < 0) return;
      const line = this.pending.slice(0, end).replace(/\r$/, '');
      this.pending = this.pending.slice(end + 1);
      if (line === '\\.') {
        this.finished = true;
        yield 'end';
        return;
      }
      yield this.options.format === 'csv' ? parseCsv(line, this.options) : parseText(line, this.options);
    }
  }

  *end(): Generator<Array<string | null> | 'end'> {
    if (!this.finished && this.pending.length > 0) {
      const line = this.pending.replace(/\r?\n?$/, '');
      this.pending = '';
      if (line !== '\\.') yield this.options.format === 'csv' ? parseCsv(line, this.options) : parseText(line, this.options);
    }
  }

  /** Index of the newline that ends the next row (outside CSV quotes), or -1. */
  private rowEnd(): number {
    if (this.options.format !== 'csv') return this.pending.indexOf('\n');
    let quoted = false;
    for (let index = 0; index < this.pending.length; index++) {
      const char = this.pending[index]!;
      if (quoted && char === this.options.escape && this.pending[index + 1] === this.options.quote && this.options.escape !== this.options.quote) {
        index++;
        continue;
      }
      if (char === this.options.quote) quoted = !quoted;
      else if (char === '\n' && !quoted) return index;
    }
    return -1;
  }
}

const TEXT_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function parseText(line: string, options: CopyOptions): Array<string | null> {
  const fields: Array<string | null> = [];
  let current = '';
  let raw = '';
  const finish = (): void => {
    fields.push(raw === options.null ? null : current);
    current = '';
    raw = '';
  };
  for (let index = 0; index < line.length; index++) {
    const char = line[index]!;
    if (char === options.delimiter) {
      finish();
      continue;
    }
    if (char === '\\' && index + 1 < line.length) {
      const next = line[++index]!;
      raw += char + next;
      if (TEXT_ESCAPES[next] !== undefined) current += TEXT_ESCAPES[next];
      else if (/[0-7]/.test(next)) {
        let digits = next;
        while (digits.length < 3 && /[0-7]/.test(line[index + 1] ?? '')) digits += line[++index];
        raw += digits.slice(1);
        current += String.fromCharCode(parseInt(digits, 8));
      } else if (next === 'x' && /[0-9a-fA-F]/.test(line[index + 1] ?? '')) {
        let digits = '';
        while (digits.length < 2 && /[0-9a-fA-F]/.test(line[index + 1] ?? '')) digits += line[++index];
        raw += digits;
        current += String.fromCharCode(parseInt(digits, 16));
      } else current += next;
      continue;
    }
    raw += char;
    current += char;
  }
  finish();
  return fields;
}

function parseCsv(line: string, options: CopyOptions): Array<string | null> {
  const fields: Array<string | null> = [];
  let index = 0;
  for (;;) {
    let value = '';
    let quoted = false;
    while (index < line.length && line[index] !== options.delimiter) {
      const char = line[index]!;
      if (char === options.quote) {
        quoted = true;
        index++;
        while (index < line.length) {
          const inner = line[index]!;
          if (inner === options.escape && line[index + 1] === options.quote) {
            value += options.quote;
            index += 2;
            continue;
          }
          if (inner === options.quote) {
            index++;
            break;
          }
          value += inner;
          index++;
        }
        continue;
      }
      value += char;
      index++;
    }
    fields.push(!quoted && value === options.null ? null : value);
    if (index >= line.length) break;
    index++; // the delimiter
  }
  return fields;
}

function copyTo(session: SqlSession, body: Node, catalog: StatementCatalog, options: CopyOptions, params: Params): PreparedPlan {
  const ctx = newQueryContext(catalog, params);
  let plan: PlanNode;
  let types: number[];
  let header: string[];
  if (body.query !== undefined) {
    const planned = planQuery(body.query, undefined, ctx);
    plan = planned.plan;
    types = planned.columns.map((column) => column.type);
    header = planned.columns.map((column) => column.name);
  } else {
    const table = catalog.table(body.relation.schemaname, body.relation.relname);
    if (table === undefined) throw new SqlError('42P01', `relation "${body.relation.relname}" does not exist`);
    const columns = body.attlist === undefined ? table.columns.map((column) => column.name) : (body.attlist as Node[]).map((item) => item.String.sval as string);
    const select = { SelectStmt: { targetList: columns.map((name) => ({ ResTarget: { val: { ColumnRef: { fields: [{ String: { sval: name } }] } } } })), fromClause: [{ RangeVar: body.relation }], limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } };
    const planned = planQuery(select, undefined, ctx);
    plan = planned.plan;
    types = planned.columns.map((column) => column.type);
    header = columns;
  }
  return {
    kind: 'utility',
    columns: undefined,
    run: async (out: Output, signal: AbortSignal) => {
      const { tx, env } = startCopy(session, signal);
      out.copyOutStart('text', types.map(() => 0));
      if (options.header) out.copyData(Buffer.from(`${header.map((name) => csvField(name, options, false)).join(options.delimiter)}\n`));
      let count = 0;
      let batch: string[] = [];
      for await (const row of plan.rows({ tx, signal }, env)) {
        const fields = row.slice(0, types.length).map((value, index) => {
          if (value === null) return options.null;
          const text = textOut(types[index]!, value);
          return options.format === 'csv' ? csvField(text, options, text === options.null) : escapeText(text, options.delimiter);
        });
        batch.push(`${fields.join(options.delimiter)}\n`);
        count++;
        if (batch.length >= 256) {
          out.copyData(Buffer.from(batch.join('')));
          batch = [];
          await out.drain();
          signal.throwIfAborted();
        }
      }
      if (batch.length > 0) out.copyData(Buffer.from(batch.join('')));
      out.copyDone();
      return `COPY ${count}`;
    },
  };
}

function escapeText(text: string, delimiter: string): string {
  let out = '';
  for (const char of text) {
    if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (char === delimiter) out += `\\${char}`;
    else out += char;
  }
  return out;
}

function csvField(text: string, options: CopyOptions, force: boolean): string {
  const needs = force || text.includes(options.delimiter) || text.includes(options.quote) || text.includes('\n') || text.includes('\r') || text === '\\.';
  if (!needs) return text;
  return options.quote + text.split(options.quote).join(options.escape + options.quote) + options.quote;
}
