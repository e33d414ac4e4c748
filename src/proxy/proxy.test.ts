// The proxy's rules (proxy.ts X1-X4) with real clients and two stub PostgreSQL servers
// standing in for instances: routing by endpoint, waiting through a switch, dropping
// connections to a retired writer, and cancel through the proxy.

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { listenOn } from '../net/listen.js';
import { PgServer } from '../pgwire/server.js';
import { StubDatabase } from '../pgwire/stub-session.js';
import { Proxy, type Topology } from './proxy.js';

async function instance(): Promise<{ server: PgServer; database: StubDatabase; port: number }> {
  const database = new StubDatabase();
  const server = new PgServer({ auth: 'trust', users: new Map(), serverVersion: '15.8', maxConnections: 20, newSession: database.newSession });
  return { server, database, port: await server.listen(0) };
}

function topology(version: number, writer: number | undefined, readers: number[]): Topology {
  return {
    version,
    writer: writer === undefined ? undefined : { id: `i-${writer}`, address: { host: '127.0.0.1', port: writer } },
    readers: readers.map((port) => ({ id: `i-${port}`, address: { host: '127.0.0.1', port } })),
  };
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('routing by endpoint, waiting through a switch, dropping the retired writer, cancel', { timeout: 30000 }, async () => {
  const a = await instance();
  const b = await instance();
  const proxy = new Proxy({ waitMs: 5000 });
  const writerPort = await proxy.listen('writer', 0);
  const readerPort = await proxy.listen('reader', 0);
  const url = (port: number): string => `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    // X1: the cluster endpoint reaches the writer (a), the reader endpoint the readers (b).
    proxy.setTopology(topology(1, a.port, [b.port]));
    const writerClient = new pg.Client(url(writerPort));
    writerClient.on('error', () => undefined);
    await writerClient.connect();
    assert.deepEqual((await writerClient.query('select n from series(2)')).rows.map((row: { n: number }) => row.n), [1, 2]);
    assert.equal(a.server.connectionCount, 1);
    const readerClient = new pg.Client(url(readerPort));
    await readerClient.connect();
    await readerClient.query('select n from series(1)');
    assert.equal(b.server.connectionCount, 1);
    await readerClient.end();
    // With no reader, the reader endpoint falls back to the writer.
    proxy.setTopology(topology(2, a.port, []));
    const fallback = new pg.Client(url(readerPort));
    await fallback.connect();
    assert.equal(a.server.connectionCount, 2);
    await fallback.end();

    // X4: a cancel through the proxy reaches the instance that runs the statement.
    const sql = postgres(url(writerPort), { max: 1, fetch_types: false, onnotice: () => undefined });
    const sleeping = sql`sleep`.execute();
    await eventually(() => a.database.sessions.some((session) => session.sleeping), 'the sleep to start');
    void sleeping.cancel();
    await assert.rejects(sleeping, (error: { code?: string }) => error.code === '57014');
    assert.equal(proxy.stats.cancelsForwarded, 1);
    await sql.end();

    // X2: with no writer, a new connection waits, and lands on the writer that appears.
    proxy.setTopology(topology(3, undefined, [b.port]));
    // X3: the connection to the retired writer was dropped, once.
    await eventually(() => a.server.connectionCount === 0, 'the old writer connection to close');
    await assert.rejects(writerClient.query('select n from series(1)'));
    const waiting = new pg.Client(url(writerPort));
    const connected = waiting.connect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(b.server.connectionCount, 0, 'nothing was routed while there was no writer');
    proxy.setTopology(topology(4, b.port, []));
    await connected;
    await waiting.query('select n from series(1)');
    assert.equal(b.server.connectionCount, 1);
    await waiting.end();

    // X2: an instance that refuses is retried until the wait runs out; then 57P03.
    proxy.setTopology(topology(5, 1, []));
    const started = Date.now();
    const refused = new pg.Client({ connectionString: url(writerPort) });
    const quick = new Proxy({ waitMs: 400 });
    const quickPort = await quick.listen('writer', 0);
    quick.setTopology(topology(1, 1, []));
    await assert.rejects(new pg.Client(url(quickPort)).connect(), (error: { code?: string }) => error.code === '57P03');
    assert.ok(Date.now() - started >= 300);
    await quick.close();
    const late = refused.connect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.setTopology(topology(6, a.port, []));
    await late;
    await refused.end();
    await writerClient.end().catch(() => undefined);
  } finally {
    await proxy.close();
    await a.server.close();
    await b.server.close();
  }
});

test('X2: an instance that closes a connection before answering (a writer being killed) counts as refusing: the client is routed again, not dropped', { timeout: 30000 }, async () => {
  const a = await instance();
  // Stand-ins for a dying instance's listening socket: handshakes complete, then the
  // connection is closed with a FIN, or reset, before a byte of answer.
  const closing = net.createServer((socket) => socket.end());
  const resetting = net.createServer((socket) => socket.resetAndDestroy());
  const closingPort = await listenOn(closing, 0, '127.0.0.1');
  const resettingPort = await listenOn(resetting, 0, '127.0.0.1');
  const proxy = new Proxy({ waitMs: 5000 });
  const writerPort = await proxy.listen('writer', 0);
  try {
    let version = 1;
    for (const dyingPort of [closingPort, resettingPort]) {
      proxy.setTopology(topology(version++, dyingPort, []));
      const waited = proxy.stats.waited;
      const client = new pg.Client(`postgres://postgres@127.0.0.1:${writerPort}/postgres`);
      const connected = client.connect();
      // Closed after the handshake (routed again) or reset before the proxy saw it complete
      // (refused): either way the client waits, with no other instance to go to.
      await eventually(() => proxy.stats.waited > waited, 'the dying instance to close the routed connection');
      // The client has seen nothing; it waits for the next topology and lands there.
      proxy.setTopology(topology(version++, a.port, []));
      await connected;
      assert.deepEqual((await client.query('select n from series(1)')).rows.map((row: { n: number }) => row.n), [1]);
      await client.end();
    }
    assert.ok(proxy.stats.rerouted >= 1, 'a connection closed after its handshake was routed again');
  } finally {
    await proxy.close();
    await a.server.close();
    closing.close();
    resetting.close();
  }
});
