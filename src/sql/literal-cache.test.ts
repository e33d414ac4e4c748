// The literal normalizer behind the simple-query plan cache (LC1, LC2). What the cached
// plans return is checked against PostgreSQL by the differential tests (spec/sql/literals.sql
// and every other simple-protocol query).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModule, parseSync } from 'libpg-query';
import { normalizeLiterals, shapeIsSafe } from './literal-cache.js';
import type { Node } from './expr.js';

test('integer literals become $n; everything else stays as written', () => {
  assert.deepEqual(normalizeLiterals('SELECT abalance FROM pgbench_accounts WHERE aid = 4711;'), { shape: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', literals: ['4711'] });
  assert.deepEqual(normalizeLiterals('UPDATE t SET b = b + -12 WHERE a=3'), { shape: 'UPDATE t SET b = b + -$1 WHERE a=$2', literals: ['12', '3'] });
  // Identifiers with digits, qualified names, decimals, exponents and strings are not literals.
  assert.deepEqual(normalizeLiterals(`SELECT t1.c2, 1.5, 1e3, .5, 'x 7 ''8''', "col 9" FROM t1 WHERE x = 2`), { shape: `SELECT t1.c2, 1.5, 1e3, .5, 'x 7 ''8''', "col 9" FROM t1 WHERE x = $1`, literals: ['2'] });
  // Beyond int4, the literal stays in the shape (PostgreSQL types it int8 or numeric).
  assert.deepEqual(normalizeLiterals('SELECT 2147483647, 2147483648, 99999999999'), { shape: 'SELECT $1, 2147483648, 99999999999', literals: ['2147483647'] });
});

test('what the scanner is not sure of gets no shape (LC1)', () => {
  for (const sql of [
    'SELECT 1 -- a comment 2',
    'SELECT /* 1 */ 2',
    'SELECT $1 + 1',
    'SELECT $$a 1$$, 2',
    "SELECT E'\\' 1', 2",
    "SELECT 'a\\', 1",
    "SELECT 'unterminated 1",
    'SELECT name FROM t', // no literal: nothing to gain
  ]) {
    assert.equal(normalizeLiterals(sql), undefined, sql);
  }
});

test('a shape is refused where a literal\'s position matters (LC1)', async () => {
  await loadModule();
  const stmt = (sql: string): Node => (parseSync(sql) as { stmts: Array<{ stmt: Node }> }).stmts[0]!.stmt;
  // (A type modifier such as varchar($2) does not even parse: such a shape is refused there.)
  for (const sql of ['SELECT a FROM t ORDER BY $1', 'SELECT a FROM t ORDER BY -$1', 'SELECT a, count(*) FROM t GROUP BY $1', 'SELECT DISTINCT ON ($1) a FROM t', 'CREATE TABLE t (a int DEFAULT $1)', 'EXPLAIN SELECT $1']) {
    assert.equal(shapeIsSafe(stmt(sql)), false, sql);
  }
  for (const sql of ['SELECT a FROM t WHERE b = $1 ORDER BY a + $2 LIMIT $3', 'INSERT INTO t VALUES ($1, $2)', 'UPDATE t SET a = a + $1 WHERE b = $2', 'DELETE FROM t WHERE a IN ($1, $2)', 'SELECT $1::text']) {
    assert.equal(shapeIsSafe(stmt(sql)), true, sql);
  }
});

test('a bare transaction-control statement is its own shape; one with options is not (LC4)', async () => {
  for (const sql of ['BEGIN;', 'begin', ' END; ', 'COMMIT', 'ROLLBACK;', 'START TRANSACTION']) assert.deepEqual(normalizeLiterals(sql), { shape: sql, literals: [] }, sql);
  for (const sql of ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'COMMIT AND CHAIN', 'ROLLBACK TO s', 'BEGIN; COMMIT', 'ENDX']) assert.equal(normalizeLiterals(sql), undefined, sql);
  await loadModule();
  const stmt = (sql: string): Node => (parseSync(sql) as { stmts: Array<{ stmt: Node }> }).stmts[0]!.stmt;
  assert.equal(shapeIsSafe(stmt('BEGIN')), true);
  assert.equal(shapeIsSafe(stmt('END')), true);
});
