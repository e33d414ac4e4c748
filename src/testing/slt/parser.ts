// The sqllogictest script format (SQLite's sqllogictest, as its C runner reads it), parsed
// into records. Pure: text in, records out.
//
// A script is a list of records separated by blank lines. Lines whose first character is
// `#` are comments and are dropped wherever they appear, as the C runner's line reader
// does; on a keyword line, `#` also starts a trailing comment ("onlyif mysql # DIV ...").
// A record may start with any number of `skipif <db>` / `onlyif <db>` condition lines.
// Files may use CRLF line ends.

export const ENGINE_NAME = 'postgresql';

export type ColumnType = 'I' | 'R' | 'T';
export type SortMode = 'nosort' | 'rowsort' | 'valuesort';

export interface Condition {
  kind: 'skipif' | 'onlyif';
  engine: string;
}

export type Expected = { kind: 'values'; values: string[] } | { kind: 'hash'; count: number; md5: string };

interface RecordBase {
  /** 1-based line of the record's keyword line (after its conditions). */
  line: number;
  conditions: Condition[];
}

export interface StatementRecord extends RecordBase {
  kind: 'statement';
  expectError: boolean;
  sql: string;
}

export interface QueryRecord extends RecordBase {
  kind: 'query';
  types: ColumnType[];
  sort: SortMode;
  label: string | undefined;
  sql: string;
  expected: Expected;
}

export interface HaltRecord extends RecordBase {
  kind: 'halt';
}

export interface HashThresholdRecord extends RecordBase {
  kind: 'hash-threshold';
  threshold: number;
}

/** A record this runner does not know how to run; kept so the run can report it. */
export interface UnsupportedRecord extends RecordBase {
  kind: 'unsupported';
  /** The first line's first tokens, e.g. "statement count" or "query X". */
  keyword: string;
  reason: string;
}

export type SltRecord = StatementRecord | QueryRecord | HaltRecord | HashThresholdRecord | UnsupportedRecord;

interface Line {
  number: number;
  text: string;
}

const hashLinePattern = /^(\d+) values hashing to ([0-9a-f]{32})$/;
const columnTypesPattern = /^[IRT]+$/;

export function parseScript(text: string): SltRecord[] {
  const records: SltRecord[] = [];
  for (const block of splitRecords(text)) {
    const record = parseRecord(block);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** Groups the non-comment lines into blocks of consecutive non-blank lines. */
export function splitRecords(text: string): Line[][] {
  const blocks: Line[][] = [];
  let block: Line[] = [];
  const rawLines = text.split('\n');
  for (let index = 0; index < rawLines.length; index++) {
    let line = rawLines[index]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith('#')) continue;
    if (line.trim() === '') {
      if (block.length > 0) blocks.push(block);
      block = [];
      continue;
    }
    block.push({ number: index + 1, text: line });
  }
  if (block.length > 0) blocks.push(block);
  return blocks;
}

/** Whitespace-separated tokens up to a `#` comment. */
export function tokenize(line: string): string[] {
  const tokens: string[] = [];
  for (const token of line.trim().split(/\s+/)) {
    if (token.startsWith('#')) break;
    if (token !== '') tokens.push(token);
  }
  return tokens;
}

function parseRecord(block: Line[]): SltRecord | undefined {
  const conditions: Condition[] = [];
  let at = 0;
  for (; at < block.length; at++) {
    const tokens = tokenize(block[at]!.text);
    const keyword = tokens[0];
    if (keyword !== 'skipif' && keyword !== 'onlyif') break;
    conditions.push({ kind: keyword, engine: tokens[1] ?? '' });
  }
  const head = block[at];
  if (head === undefined) return undefined;
  const tokens = tokenize(head.text);
  const base: RecordBase = { line: head.number, conditions };
  const body = block.slice(at + 1);
  switch (tokens[0]) {
    case 'statement':
      return parseStatement(base, tokens, body);
    case 'query':
      return parseQuery(base, tokens, body);
    case 'halt':
      return { ...base, kind: 'halt' };
    case 'hash-threshold': {
      const threshold = Number(tokens[1]);
      if (!Number.isInteger(threshold) || threshold < 0) return unsupported(base, tokens, `bad threshold '${tokens[1] ?? ''}'`);
      return { ...base, kind: 'hash-threshold', threshold };
    }
    default:
      return unsupported(base, tokens, 'unknown record kind');
  }
}

function unsupported(base: RecordBase, tokens: string[], reason: string): UnsupportedRecord {
  return { ...base, kind: 'unsupported', keyword: tokens.slice(0, 2).join(' '), reason };
}

function parseStatement(base: RecordBase, tokens: string[], body: Line[]): SltRecord {
  const mode = tokens[1];
  if (mode !== 'ok' && mode !== 'error') return unsupported(base, tokens, `statement mode '${mode ?? ''}'`);
  return { ...base, kind: 'statement', expectError: mode === 'error', sql: body.map((line) => line.text).join('\n') };
}

function parseQuery(base: RecordBase, tokens: string[], body: Line[]): SltRecord {
  const typeLetters = tokens[1] ?? '';
  if (!columnTypesPattern.test(typeLetters)) return unsupported(base, tokens, `column types '${typeLetters}'`);
  const sort = tokens[2] ?? 'nosort';
  if (sort !== 'nosort' && sort !== 'rowsort' && sort !== 'valuesort') return unsupported(base, tokens, `sort mode '${sort}'`);
  const separator = body.findIndex((line) => line.text === '----');
  // A query with no results may omit the separator.
  const sqlLines = separator < 0 ? body : body.slice(0, separator);
  const resultLines = separator < 0 ? [] : body.slice(separator + 1);
  return {
    ...base,
    kind: 'query',
    types: [...typeLetters] as ColumnType[],
    sort,
    label: tokens[3],
    sql: sqlLines.map((line) => line.text).join('\n'),
    expected: parseExpected(resultLines.map((line) => line.text)),
  };
}

function parseExpected(lines: string[]): Expected {
  const only = lines.length === 1 ? hashLinePattern.exec(lines[0]!) : null;
  if (only !== null) return { kind: 'hash', count: Number(only[1]), md5: only[2]! };
  return { kind: 'values', values: lines };
}

/** `skipif postgresql` skips; `onlyif X` skips unless X is us. */
export function isSkipped(conditions: readonly Condition[], engine: string = ENGINE_NAME): boolean {
  for (const condition of conditions) {
    if (condition.kind === 'skipif' && condition.engine === engine) return true;
    if (condition.kind === 'onlyif' && condition.engine !== engine) return true;
  }
  return false;
}
