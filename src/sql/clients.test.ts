// Real client libraries against a real Boreal cluster (storage processes + the writer
// instance): node-postgres and postgres.js with prepared statements, binary results, COPY,
// cancellation and transactions — the way applications use them.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { SqlCluster } from '../testing/sql-cluster.js';

let cluster: SqlCluster;

before(async () => {
  cluster = await SqlCluster.start({ cacheMb: 32 });
});

after(async () => {
  await cluster?.destroy();
});

test('node-postgres: parameters, named prepared statements, binary results, errors and transactions', async () => {
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  try {
    await client.query('CREATE TABLE np_items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2), seen timestamptz, big int8)');
    for (let id = 1; id <= 20; id++) {
      await client.query({ name: 'add-item', text: 'INSERT INTO np_items VALUES ($1, $2, $3, $4, $5)', values: [id, `item ${id}`, (id * 1.25).toFixed(2), new Date(Date.UTC(2024, 0, id)), BigInt(id) * 10_000_000_000n] });
    }
    const text = await client.query('SELECT id, name, price, big FROM np_items WHERE id = $1', [7]);
    assert.deepEqual(text.rows, [{ id: 7, name: 'item 7', price: '8.75', big: '70000000000' }]);
    const range = await client.query({ name: 'range', text: 'SELECT id FROM np_items WHERE id BETWEEN $1 AND $2 ORDER BY id', values: [3, 5] });
    assert.deepEqual(range.rows.map((row) => row.id), [3, 4, 5]);
    // Binary result format: node-postgres parses int4/text binary when asked.
    const binary = await client.query({ text: 'SELECT id, name FROM np_items WHERE id = $1', values: [2], binary: true } as unknown as pg.QueryConfig);
    assert.equal(binary.rows[0].name, 'item 2');
    assert.equal(Buffer.isBuffer(binary.rows[0].id) ? (binary.rows[0].id as Buffer).readInt32BE(0) : binary.rows[0].id, 2);
    const seen = await client.query('SELECT seen FROM np_items WHERE id = 3');
    assert.equal((seen.rows[0].seen as Date).toISOString(), '2024-01-03T00:00:00.000Z');
    await assert.rejects(client.query('INSERT INTO np_items VALUES ($1, $2)', [1, 'dup']), (error: { code?: string }) => error.code === '23505');
    await assert.rejects(client.query('SELECT nope FROM np_items'), (error: { code?: string }) => error.code === '42703');
    // A transaction that rolls back leaves nothing; one that commits is visible.
    await client.query('BEGIN');
    await client.query('UPDATE np_items SET name = $1 WHERE id = $2', ['changed', 1]);
    await client.query('ROLLBACK');
    assert.equal((await client.query('SELECT name FROM np_items WHERE id = 1')).rows[0].name, 'item 1');
    await client.query('BEGIN');
    await client.query('DELETE FROM np_items WHERE id > $1', [15]);
    await client.query('COMMIT');
    assert.equal((await client.query('SELECT count(*)::int AS n FROM np_items')).rows[0].n, 15);
  } finally {
    await client.query('DROP TABLE IF EXISTS np_items').catch(() => undefined);
    await client.end();
  }
});

test('postgres.js: tagged queries, sql.begin, COPY in and out, and cancel', async () => {
  const sql = postgres(cluster.url(), { max: 2, onnotice: () => undefined });
  try {
    await sql`CREATE TABLE pj_events (id serial PRIMARY KEY, kind text, amount int)`;
    await sql.begin(async (tx) => {
      await tx`INSERT INTO pj_events (kind, amount) VALUES (${'a'}, ${1}), (${'b'}, ${2})`;
      await tx`INSERT INTO pj_events ${tx([{ kind: 'c', amount: 3 }], 'kind', 'amount')}`;
    });
    const rows = await sql`SELECT id, kind, amount FROM pj_events ORDER BY id`;
    assert.deepEqual(rows.map((row) => [row.id, row.kind, row.amount]), [
      [1, 'a', 1],
      [2, 'b', 2],
      [3, 'c', 3],
    ]);
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`INSERT INTO pj_events (kind, amount) VALUES ('lost', 9)`;
        await tx`SELECT 1 / 0`;
      }),
      (error: { code?: string }) => error.code === '22012',
    );
    assert.equal((await sql`SELECT count(*)::int AS n FROM pj_events WHERE kind = 'lost'`)[0]!.n, 0);

    // COPY FROM STDIN through a writable stream, then COPY TO STDOUT through a readable one.
    const writable = await sql`COPY pj_events (kind, amount) FROM STDIN`.writable();
    await new Promise<void>((resolve, reject) => {
      writable.on('error', reject);
      writable.on('finish', () => resolve());
      for (let index = 0; index < 1000; index++) writable.write(`copied\t${index}\n`);
      writable.end();
    });
    assert.equal((await sql`SELECT count(*)::int AS n, sum(amount)::int AS total FROM pj_events WHERE kind = 'copied'`)[0]!.total, 499500);
    const readable = await sql`COPY (SELECT kind, amount FROM pj_events WHERE amount < 3 ORDER BY amount, kind) TO STDOUT`.readable();
    let copied = '';
    for await (const chunk of readable) copied += chunk.toString();
    assert.equal(copied, 'copied\t0\na\t1\ncopied\t1\nb\t2\ncopied\t2\n');

    // Cancel: a query waiting for a row lock is cancelled with 57014 and the lock holder goes on.
    const holder = await sql.reserve();
    await holder`BEGIN`;
    await holder`UPDATE pj_events SET amount = amount + 1 WHERE id = 1`;
    const waiting = sql`UPDATE pj_events SET amount = 0 WHERE id = 1`;
    const outcome = waiting.then(
      () => 'finished',
      (error: { code?: string }) => error.code,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    waiting.cancel();
    assert.equal(await outcome, '57014');
    await holder`COMMIT`;
    holder.release();
    assert.equal((await sql`SELECT amount FROM pj_events WHERE id = 1`)[0]!.amount, 2);
  } finally {
    await sql`DROP TABLE IF EXISTS pj_events`.catch(() => undefined);
    await sql.end();
  }
});

test('a sort, hash or grouping larger than boreal.max_rows_in_memory fails with 53200; the session and its neighbours go on (X1)', async () => {
  const client = new pg.Client({ connectionString: cluster.url() });
  const neighbour = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  await neighbour.connect();
  try {
    await client.query('SET boreal.max_rows_in_memory = 100');
    const statements = [
      'SELECT g FROM generate_series(1, 1000) g ORDER BY g DESC',
      'SELECT DISTINCT g FROM generate_series(1, 1000) g',
      'SELECT g % 500, count(*) FROM generate_series(1, 1000) g GROUP BY 1',
      'SELECT count(*) FROM generate_series(1, 1000) a JOIN generate_series(1, 1000) b ON a = b',
      'SELECT g FROM generate_series(1, 1000) g UNION SELECT g FROM generate_series(1, 1000) g',
    ];
    for (const sql of statements) {
      await assert.rejects(client.query(sql), (error: { code?: string; detail?: string }) => error.code === '53200' && /boreal\.max_rows_in_memory/.test(error.detail ?? ''), sql);
      assert.equal((await neighbour.query(sql.replace('ORDER BY g DESC', 'ORDER BY g DESC LIMIT 1'))).rowCount! > 0, true, sql);
    }
    // Below the limit the same kinds of work run; the session is still usable.
    assert.deepEqual((await client.query('SELECT g FROM generate_series(1, 50) g ORDER BY g DESC LIMIT 2')).rows, [{ g: 50 }, { g: 49 }]);
    await assert.rejects(client.query('SET boreal.max_rows_in_memory = 0'), (error: { code?: string }) => error.code === '22023');
    await client.query('RESET boreal.max_rows_in_memory');
    assert.equal((await client.query('SELECT count(*) AS n FROM (SELECT DISTINCT g FROM generate_series(1, 1000) g) d')).rows[0].n, '1000');
  } finally {
    await client.end();
    await neighbour.end();
  }
});

test('EXPLAIN names the access path and shows index conditions with their values, as PostgreSQL does', async () => {
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  try {
    await client.query('CREATE TABLE ex_items (id int PRIMARY KEY, name text, qty int)');
    await client.query('CREATE INDEX ex_items_name ON ex_items (name)');
    const plan = async (sql: string, values: unknown[] = []): Promise<string[]> => (await client.query(sql, values)).rows.map((row: Record<string, string>) => row['QUERY PLAN']!);
    assert.deepEqual((await plan('EXPLAIN SELECT qty FROM ex_items WHERE id = 5')).slice(0, 2), ['Index Scan using ex_items_pkey on ex_items', '  Index Cond: (id = 5)']);
    assert.deepEqual((await plan('EXPLAIN SELECT qty FROM ex_items WHERE id >= $1 AND id < $2', [3, 9])).slice(0, 2), ['Index Scan using ex_items_pkey on ex_items', '  Index Cond: ((id >= $1) AND (id < $2))']);
    assert.deepEqual((await plan("EXPLAIN SELECT qty FROM ex_items WHERE name = 'it''s'")).slice(0, 2), ['Index Scan using ex_items_name on ex_items', "  Index Cond: (name = 'it''s'::text)"]);
    assert.equal((await plan('EXPLAIN SELECT qty FROM ex_items WHERE qty = 1'))[0], 'Seq Scan on ex_items');
  } finally {
    await client.end();
  }
});
