// The sqllogictest parser, value formatting, sorting and hashing on small inline scripts,
// and a whole script run on a fake session. Hashes were computed independently with
// coreutils: printf '1\nx\n2\nNULL\n3\n(empty)\n' | md5sum.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Outcome, SqlSession } from './connection.js';
import { globToPattern, selectFiles } from './files.js';
import { isSkipped, parseScript, type QueryRecord, type SltRecord } from './parser.js';
import { compareResult, formatValue, hashLine, printfFixed3, resultValues } from './results.js';
import { runScript } from './runner.js';

const hashOfSixValues = 'cc6571cdb71b1a71967efc76a335a58f'; // 1 x 2 NULL 3 (empty)
const hashOfOneTwoThree = 'c0710d6b4f15dfa88f600b0e6b624077'; // 1 2 3

const script = [
  '# a comment line',
  'hash-threshold 8',
  '',
  'statement ok',
  'CREATE TABLE t1(a INTEGER, b TEXT)',
  '',
  'onlyif mysql # MySQL only',
  'statement ok',
  'INSERT INTO t1 VALUES(1, "x")',
  '',
  'statement error',
  'INSERT INTO nowhere VALUES(1)',
  '',
  'query IT rowsort label-1',
  'SELECT a,',
  '# a comment inside a record is dropped too',
  '       b FROM t1',
  '----',
  '6 values hashing to ' + hashOfSixValues,
  '',
  'skipif postgresql',
  'query I nosort',
  'SELECT 1',
  '----',
  '2',
  '',
  'query I valuesort',
  'SELECT a FROM t1',
  '----',
  '1',
  '2',
  '3',
  '',
  'statement count 3',
  'DELETE FROM t1',
  '',
  'skipif sqlite',
  'halt',
  '',
  'query I nosort',
  'SELECT 99',
  '----',
  '99',
  '',
].join('\r\n');

test('slt parser: records, conditions, CRLF, comments, expected blocks', () => {
  const records = parseScript(script);
  assert.deepEqual(
    records.map((record) => record.kind),
    ['hash-threshold', 'statement', 'statement', 'statement', 'query', 'query', 'query', 'unsupported', 'halt', 'query'],
  );
  assert.deepEqual(records[0], { kind: 'hash-threshold', threshold: 8, line: 2, conditions: [] });
  assert.deepEqual(records[1], { kind: 'statement', expectError: false, sql: 'CREATE TABLE t1(a INTEGER, b TEXT)', line: 4, conditions: [] });
  assert.deepEqual(records[2]!.conditions, [{ kind: 'onlyif', engine: 'mysql' }]);
  assert.equal(records[2]!.line, 8);
  assert.equal((records[3] as { expectError: boolean }).expectError, true);
  const hashed = records[4] as QueryRecord;
  assert.deepEqual(hashed.types, ['I', 'T']);
  assert.equal(hashed.sort, 'rowsort');
  assert.equal(hashed.label, 'label-1');
  assert.equal(hashed.sql, 'SELECT a,\n       b FROM t1');
  assert.deepEqual(hashed.expected, { kind: 'hash', count: 6, md5: hashOfSixValues });
  const listed = records[6] as QueryRecord;
  assert.equal(listed.label, undefined);
  assert.deepEqual(listed.expected, { kind: 'values', values: ['1', '2', '3'] });
  assert.deepEqual(records[7], { kind: 'unsupported', keyword: 'statement count', reason: "statement mode 'count'", line: 34, conditions: [] });
  assert.deepEqual(records[8]!.conditions, [{ kind: 'skipif', engine: 'sqlite' }]);
});

test('slt parser: a query without results may omit the separator; unknown sort modes are unsupported', () => {
  const records = parseScript('query I nosort\nSELECT 1 WHERE false\n\nquery I sortwhat\nSELECT 1\n----\n1\n\nquery X nosort\nSELECT 1\n');
  assert.deepEqual((records[0] as QueryRecord).expected, { kind: 'values', values: [] });
  assert.equal((records[0] as QueryRecord).sql, 'SELECT 1 WHERE false');
  assert.equal(records[1]!.kind, 'unsupported');
  assert.equal(records[2]!.kind, 'unsupported');
});

test('slt conditions: we are postgresql', () => {
  assert.equal(isSkipped([]), false);
  assert.equal(isSkipped([{ kind: 'skipif', engine: 'postgresql' }]), true);
  assert.equal(isSkipped([{ kind: 'skipif', engine: 'mysql' }]), false);
  assert.equal(isSkipped([{ kind: 'onlyif', engine: 'postgresql' }]), false);
  assert.equal(isSkipped([{ kind: 'onlyif', engine: 'mssql' }]), true);
  assert.equal(isSkipped([{ kind: 'skipif', engine: 'mysql' }, { kind: 'onlyif', engine: 'oracle' }]), true);
});

test('slt formatting: I truncates toward zero, R is %.3f with half-even ties, T maps non-printables to @', () => {
  assert.equal(formatValue('I', null), 'NULL');
  assert.equal(formatValue('R', null), 'NULL');
  assert.equal(formatValue('T', null), 'NULL');
  assert.equal(formatValue('I', '42'), '42');
  assert.equal(formatValue('I', '-0'), '0');
  assert.equal(formatValue('I', '12.9000'), '12');
  assert.equal(formatValue('I', '-12.9'), '-12');
  assert.equal(formatValue('I', '-0.5'), '0');
  assert.equal(formatValue('I', '9223372036854775807'), '9223372036854775807');
  assert.equal(formatValue('I', '123456789012345678901234.5'), '9223372036854775807');
  assert.equal(formatValue('I', '1e+20'), '9223372036854775807');
  assert.equal(formatValue('I', '2.5e3'), '2500');
  assert.equal(formatValue('I', '12abc'), '12');
  assert.equal(formatValue('I', 'abc'), '0');
  assert.equal(formatValue('I', ''), '0');
  assert.equal(formatValue('R', '1'), '1.000');
  assert.equal(formatValue('R', '12.50000000000000000000'), '12.500');
  assert.equal(formatValue('R', '-3.14159'), '-3.142');
  assert.equal(formatValue('R', '0.0625'), '0.062');
  assert.equal(formatValue('R', '0.1875'), '0.188');
  assert.equal(formatValue('R', '-0.0625'), '-0.062');
  // 0.0005 is just above 0.0005 as a double: no tie, rounds up.
  assert.equal(formatValue('R', '0.0005'), '0.001');
  assert.equal(formatValue('R', '1e22'), '10000000000000000000000.000');
  assert.equal(formatValue('R', 'Infinity'), 'inf');
  assert.equal(printfFixed3(-0), '-0.000');
  assert.equal(formatValue('T', ''), '(empty)');
  assert.equal(formatValue('T', 'a b'), 'a b');
  assert.equal(formatValue('T', 'a\tb\n'), 'a@b@');
  assert.equal(formatValue('T', 'é'), '@@');
  assert.equal(formatValue('T', '12.5'), '12.5');
});

test('slt sorting: rowsort compares rows column by column as strings, valuesort sorts every value', () => {
  const rows = [
    ['9', 'b'],
    ['10', 'z'],
    ['9', 'a'],
    [null, 'c'],
  ];
  assert.deepEqual(resultValues(['I', 'T'], rows, 'nosort'), ['9', 'b', '10', 'z', '9', 'a', 'NULL', 'c']);
  assert.deepEqual(resultValues(['I', 'T'], rows, 'rowsort'), ['10', 'z', '9', 'a', '9', 'b', 'NULL', 'c']);
  assert.deepEqual(resultValues(['I', 'T'], rows, 'valuesort'), ['10', '9', '9', 'NULL', 'a', 'b', 'c', 'z']);
});

test('slt hashing: md5 of each value followed by a newline', () => {
  const values = resultValues(['I', 'T'], [['3', ''], ['1', 'x'], ['2', null]], 'rowsort');
  assert.deepEqual(values, ['1', 'x', '2', 'NULL', '3', '(empty)']);
  assert.equal(hashLine(values), `6 values hashing to ${hashOfSixValues}`);
  assert.equal(hashLine(['1', '2', '3']), `3 values hashing to ${hashOfOneTwoThree}`);
  assert.deepEqual(compareResult({ kind: 'hash', count: 6, md5: hashOfSixValues }, values, 0), { matches: true });
  assert.equal(compareResult({ kind: 'hash', count: 6, md5: hashOfOneTwoThree }, values, 0).matches, false);
  assert.deepEqual(compareResult({ kind: 'values', values: ['1', '2', '3'] }, ['1', '2', '3'], 0), { matches: true });
  assert.equal(compareResult({ kind: 'values', values: ['1', '2', '3'] }, ['1', '2'], 0).matches, false);
  // Above the threshold a value list is compared by hash: same verdicts.
  assert.deepEqual(compareResult({ kind: 'values', values: ['1', '2', '3'] }, ['1', '2', '3'], 2), { matches: true });
  const wrong = compareResult({ kind: 'values', values: ['1', '2', '3'] }, ['1', '2', '4'], 2);
  assert.equal(wrong.matches, false);
  assert.match(wrong.matches ? '' : wrong.expectedText, new RegExp(`^3 values hashing to ${hashOfOneTwoThree}$`));
});

/** Answers from a table of SQL → outcome; records every statement it was sent. */
class FakeSession implements SqlSession {
  readonly sent: string[] = [];
  constructor(private readonly answers: Map<string, Outcome>) {}
  async execute(sql: string): Promise<Outcome> {
    this.sent.push(sql);
    return this.answers.get(sql) ?? { kind: 'rows', columnCount: 0, rows: [] };
  }
  async close(): Promise<void> {}
}

const rowsOf = (rows: (string | null)[][]): Outcome => ({ kind: 'rows', columnCount: rows[0]?.length ?? 1, rows });

test('slt runner: counts, skips, halt, hash comparison, labels and cleanup on a fake session', async () => {
  const answers = new Map<string, Outcome>([
    ['INSERT INTO nowhere VALUES(1)', { kind: 'error', message: 'relation "nowhere" does not exist', sqlState: '42P01', timedOut: false }],
    ['SELECT a,\n       b FROM t1', rowsOf([['3', ''], ['2', null], ['1', 'x']])],
    ['SELECT a FROM t1', rowsOf([['3'], ['1'], ['2']])],
  ]);
  const session = new FakeSession(answers);
  const result = await runScript('fixture.test', parseScript(script), session, { keepFailures: true });
  assert.equal(result.statementsOk, 2);
  assert.equal(result.statementsFailed, 0);
  assert.equal(result.statementsSkipped, 1);
  assert.equal(result.queriesPassed, 2);
  assert.equal(result.queriesFailed, 0);
  assert.equal(result.queriesSkipped, 1);
  assert.equal(result.halted, true);
  assert.deepEqual([...result.unsupported], [['statement count', 1]]);
  assert.deepEqual(result.failures, []);
  // The query after halt never ran; the created table was dropped at the end.
  assert.equal(session.sent.includes('SELECT 99'), false);
  assert.equal(session.sent.at(-1), 'DROP TABLE IF EXISTS t1');
});

test('slt runner: wrong results, errors, column counts and label disagreements fail', async () => {
  const records: SltRecord[] = parseScript(
    [
      'statement ok',
      'CREATE TABLE t2(x INTEGER)',
      '',
      'statement ok',
      'CREATE VIEW v2 AS SELECT x FROM t2',
      '',
      'statement error',
      'SELECT 1',
      '',
      'query I nosort label-a',
      'SELECT 1',
      '----',
      '1',
      '',
      'query I nosort label-a',
      'SELECT 2',
      '----',
      '2',
      '',
      'query II nosort',
      'SELECT 3',
      '----',
      '3',
      '',
      'query I nosort',
      'SELECT broken',
      '----',
      '1',
      '',
    ].join('\n'),
  );
  const session = new FakeSession(
    new Map<string, Outcome>([
      ['SELECT 1', rowsOf([['1']])],
      ['SELECT 2', rowsOf([['2']])],
      ['SELECT 3', rowsOf([['3']])],
      ['SELECT broken', { kind: 'error', message: 'timed out', sqlState: undefined, timedOut: true }],
    ]),
  );
  const result = await runScript('failing.test', records, session, { keepFailures: true });
  assert.equal(result.statementsOk, 2);
  assert.equal(result.statementsFailed, 1);
  assert.equal(result.queriesPassed, 1);
  assert.equal(result.queriesFailed, 3);
  assert.equal(result.timeouts, 1);
  assert.deepEqual(
    result.failures.map((failure) => failure.reason),
    [
      'statement succeeded, expected an error',
      'result differs from an earlier query labelled label-a',
      'query returned 1 columns, expected 2 (II)',
      'query failed',
    ],
  );
  assert.deepEqual(session.sent.slice(-2), ['DROP VIEW IF EXISTS v2', 'DROP TABLE IF EXISTS t2']);
});

test('slt file globs', () => {
  const files = ['select1.test', 'select2.test', 'evidence/in1.test', 'random/expr/slt_good_1.test', 'index/view/10/slt_good_0.test'];
  assert.deepEqual(selectFiles(files, ['select*.test']), ['select1.test', 'select2.test']);
  assert.deepEqual(selectFiles(files, ['random/**', 'index']), ['random/expr/slt_good_1.test', 'index/view/10/slt_good_0.test']);
  assert.deepEqual(selectFiles(files, ['**/slt_good_?.test']), ['random/expr/slt_good_1.test', 'index/view/10/slt_good_0.test']);
  assert.equal(globToPattern('index/*/10/*.test').test('index/view/10/slt_good_0.test'), true);
  assert.equal(globToPattern('*.test').test('random/expr/slt_good_1.test'), false);
});
