// Many connections on a real writer instance: 1,000 idle clients are accepted and together
// cost the writer under 200 MB of RSS; a configured max_connections refuses the next
// client with 53300 while the others keep working.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import pg from 'pg';
import { SqlCluster } from '../testing/sql-cluster.js';

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  assert.ok(match !== null, 'VmRSS is readable');
  return Number(match[1]) * 1024;
}

test('1,000 idle connections are accepted and cost the writer under 200 MB together', { timeout: 240_000 }, async () => {
  const cluster = await SqlCluster.start({ cacheMb: 16, maxConnections: 1100 });
  const clients: pg.Client[] = [];
  try {
    const pid = cluster.writer.process!.pid!;
    const warm = new pg.Client({ connectionString: cluster.url() });
    await warm.connect();
    await warm.query('SELECT 1');
    await warm.end();
    global.gc?.();
    const before = rssBytes(pid);
    for (let batch = 0; batch < 10; batch++) {
      const opened = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const client = new pg.Client({ connectionString: cluster.url() });
          client.on('error', () => undefined);
          await client.connect();
          return client;
        }),
      );
      clients.push(...opened);
    }
    assert.equal(clients.length, 1000);
    // Every connection is a live session.
    const [first, last] = [clients[0]!, clients[999]!];
    assert.equal((await first.query('SELECT 41 + 1 AS answer')).rows[0].answer, 42);
    assert.equal((await last.query('SELECT count(*)::int AS n FROM pg_stat_activity')).rows[0].n, 1000);
    const after = rssBytes(pid);
    const growth = after - before;
    console.log(`writer RSS: ${(before / 2 ** 20).toFixed(1)} MB idle, ${(after / 2 ** 20).toFixed(1)} MB with 1,000 connections (+${(growth / 2 ** 20).toFixed(1)} MB, ${(growth / 1000 / 1024).toFixed(1)} KB each)`);
    assert.ok(growth < 200 * 2 ** 20, `1,000 connections cost ${(growth / 2 ** 20).toFixed(1)} MB`);
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await cluster.destroy();
  }
});

test('max_connections refuses the next client with 53300 and the others keep working', { timeout: 120_000 }, async () => {
  const cluster = await SqlCluster.start({ cacheMb: 16, maxConnections: 5 });
  const clients: pg.Client[] = [];
  try {
    for (let index = 0; index < 5; index++) {
      const client = new pg.Client({ connectionString: cluster.url() });
      await client.connect();
      clients.push(client);
    }
    const extra = new pg.Client({ connectionString: cluster.url() });
    extra.on('error', () => undefined);
    await assert.rejects(extra.connect(), (error: { code?: string; message: string }) => {
      assert.equal(error.code, '53300');
      assert.match(error.message, /too many clients/);
      return true;
    });
    for (const client of clients) assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    // A slot frees when a client leaves.
    await clients.pop()!.end();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = new pg.Client({ connectionString: cluster.url() });
    await again.connect();
    clients.push(again);
    assert.equal((await again.query('SELECT 2 AS two')).rows[0].two, 2);
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await cluster.destroy();
  }
});
