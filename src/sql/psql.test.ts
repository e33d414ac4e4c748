// psql (PostgreSQL 15's client) against a real Boreal cluster: a script of DDL and DML with
// psql's own formatting, and the \d family commands that read pg_catalog.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { SqlCluster } from '../testing/sql-cluster.js';

let cluster: SqlCluster;

before(async () => {
  cluster = await SqlCluster.start({ cacheMb: 32 });
});

after(async () => {
  await cluster?.destroy();
});

function psql(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(cluster.writer.port), '-U', 'postgres', 'postgres', ...args], {
    env: { ...process.env, PGPASSWORD: cluster.password },
    encoding: 'utf8',
    input,
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('a psql script: DDL, DML, expanded output, variables and an error that stops it', () => {
  const script = [
    'CREATE TABLE psql_items (id serial PRIMARY KEY, name text NOT NULL, qty int DEFAULT 1);',
    'CREATE INDEX psql_items_name ON psql_items (name);',
    "INSERT INTO psql_items (name, qty) VALUES ('a', 2), ('b', 3);",
    '\\set wanted 3',
    'SELECT name FROM psql_items WHERE qty = :wanted;',
    '\\x on',
    'SELECT id, name, qty FROM psql_items WHERE id = 1;',
    '\\x off',
    'SELECT count(*) AS n FROM psql_items \\gset',
    '\\echo rows: :n',
    'SELECT 1/0;',
    "SELECT 'not reached';",
  ].join('\n');
  const result = psql(['-f', '-'], script);
  assert.equal(result.status, 3, result.stderr);
  assert.match(result.stdout, /CREATE TABLE/);
  assert.match(result.stdout, /INSERT 0 2/);
  assert.match(result.stdout, / name \n------\n b\n\(1 row\)/);
  assert.match(result.stdout, /-\[ RECORD 1 \]\nid   \| 1\nname \| a\nqty  \| 2/);
  assert.match(result.stdout, /rows: 2/);
  assert.match(result.stderr, /ERROR: {2}division by zero/);
  assert.doesNotMatch(result.stdout, /not reached/);
});

test('psql \\dt, \\di, \\dn, \\l and \\du list what pg_catalog holds', () => {
  const tables = psql(['-c', '\\dt']);
  assert.equal(tables.status, 0, tables.stderr);
  assert.match(tables.stdout, /public \| psql_items \| table \| postgres/);
  const indexes = psql(['-c', '\\di']);
  assert.equal(indexes.status, 0, indexes.stderr);
  assert.match(indexes.stdout, /public \| psql_items_name +\| index \| postgres \| psql_items/);
  assert.match(indexes.stdout, /public \| psql_items_pkey +\| index \| postgres \| psql_items/);
  const schemas = psql(['-c', '\\dn']);
  assert.equal(schemas.status, 0, schemas.stderr);
  assert.match(schemas.stdout, /public/);
  const databases = psql(['-c', '\\l']);
  assert.equal(databases.status, 0, databases.stderr);
  assert.match(databases.stdout, /postgres +\| postgres \| UTF8/);
  const roles = psql(['-c', '\\du']);
  assert.equal(roles.status, 0, roles.stderr);
  assert.match(roles.stdout, /postgres +\| Superuser/);
});

test('psql \\d <table> describes columns, defaults, indexes and constraints', () => {
  const created = psql(['-c', "CREATE TABLE psql_described (a int PRIMARY KEY, b text NOT NULL DEFAULT 'x', c numeric(5,2) CHECK (c > 0), d varchar(8) UNIQUE); CREATE INDEX psql_described_b ON psql_described (b, a);"]);
  assert.equal(created.status, 0, created.stderr);
  const described = psql(['-c', '\\d psql_described']);
  assert.equal(described.status, 0, described.stderr);
  assert.match(described.stdout, /Table "public\.psql_described"/);
  assert.match(described.stdout, / a +\| integer +\| +\| not null \| *\n/);
  assert.match(described.stdout, / b +\| text +\| +\| not null \| 'x'/);
  assert.match(described.stdout, / c +\| numeric\(5,2\) +\| +\| +\| *\n/);
  assert.match(described.stdout, / d +\| character varying\(8\) +\| +\| +\| *\n/);
  assert.match(described.stdout, /Indexes:\n +"psql_described_pkey" PRIMARY KEY, btree \(a\)\n +"psql_described_b" btree \(b, a\)\n +"psql_described_d_key" UNIQUE CONSTRAINT, btree \(d\)/);
  assert.match(described.stdout, /Check constraints:\n +"psql_described_c_check" CHECK \(c > 0\)/);
  const missing = psql(['-c', '\\d no_such_table']);
  assert.match(missing.stderr, /Did not find any relation named "no_such_table"/);
});
