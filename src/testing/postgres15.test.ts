// The PostgreSQL 15 helper: a real server starts on a free loopback port, answers as
// PostgreSQL 15 with trust authentication, honours the settings it was given, and
// leaves nothing behind when stopped.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import pg from 'pg';
import { POSTGRES15_BIN_DIRECTORY, startPostgres15 } from './postgres15.js';

const installed = fs.existsSync(`${POSTGRES15_BIN_DIRECTORY}/postgres`);

test('postgres15: starts, serves PostgreSQL 15, stops and removes its directory', { skip: installed ? false : 'postgresql-15 is not installed' }, async () => {
  const server = await startPostgres15({ maxConnections: 20, settings: { work_mem: '8MB' } });
  try {
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
    assert.ok(fs.existsSync(server.directory));
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const version = await client.query<{ version: string }>('select version()');
      assert.match(version.rows[0]!.version, /PostgreSQL 15/);
      const settings = await client.query<{ name: string; setting: string }>(
        "select name, setting from pg_settings where name in ('fsync', 'max_connections', 'work_mem') order by name",
      );
      assert.deepEqual(
        settings.rows.map((row) => [row.name, row.setting]),
        [
          ['fsync', 'off'],
          ['max_connections', '20'],
          ['work_mem', '8192'],
        ],
      );
      const user = await client.query<{ current_user: string }>('select current_user');
      assert.equal(user.rows[0]!.current_user, 'postgres');
    } finally {
      await client.end();
    }
  } finally {
    await server.stop();
  }
  assert.equal(fs.existsSync(server.directory), false);
  assert.throws(() => process.kill(server.pid, 0), /ESRCH/);
  // stop() is idempotent.
  await server.stop();
});

test('postgres15: two servers side by side get different ports', { skip: installed ? false : 'postgresql-15 is not installed' }, async () => {
  const [first, second] = await Promise.all([startPostgres15(), startPostgres15()]);
  try {
    assert.notEqual(first.port, second.port);
    assert.notEqual(first.directory, second.directory);
  } finally {
    await Promise.all([first.stop(), second.stop()]);
  }
});

test('postgres15: missing binaries name the Debian package', async () => {
  await assert.rejects(startPostgres15({ binDirectory: '/nonexistent/postgresql/15/bin' }), /install the Debian package postgresql-15/);
});
