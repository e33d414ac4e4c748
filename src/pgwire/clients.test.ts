// The connection with real clients over loopback TCP: node-postgres (pg), postgres.js and
// psql drive the extended protocol, binary results, row limits, error recovery at Sync,
// COPY in both directions, cancel and notices against the stub session (stub-session.ts);
// a raw client (raw-client.ts) sends what the libraries cannot be made to send. Each test
// starts its own server and stops it, and stays well under ten seconds.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import type { ConnectionLimits } from './connection.js';
import { PgServer } from './server.js';
import { StubDatabase, type StubSession } from './stub-session.js';
import { errorFields, frontend, RawClient } from './raw-client.js';

const testTimeoutMs = 15_000;

async function withServer(body: (port: number, database: StubDatabase) => Promise<void>, limits?: ConnectionLimits): Promise<void> {
  const database = new StubDatabase();
  const server = new PgServer({ auth: 'trust', users: new Map(), serverVersion: '15.8', maxConnections: 20, newSession: database.newSession, limits });
  const port = await server.listen(0);
  try {
    await body(port, database);
  } finally {
    await server.close();
  }
}

async function withPg(port: number, body: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await body(client);
  } finally {
    await client.end();
  }
}

interface PsqlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs psql -c; `onStart` gets the child (to signal it); stdin is closed after `input`. */
function psql(port: number, command: string, input = '', onStart?: (child: ReturnType<typeof spawn>) => void): Promise<PsqlResult> {
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', command], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
    onStart?.(child);
  });
}

/** Polls `condition` every 20 ms; fails after timeoutMs. */
async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Query options node-postgres takes at run time that its type declarations leave out. */
type PgQuery = pg.QueryConfig & { binary?: boolean; rows?: number };

function onlySession(database: StubDatabase): StubSession {
  assert.equal(database.sessions.length, 1);
  return database.sessions[0]!;
}

test('pg: unnamed and named prepared statements, text and binary results, array rows', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    await withPg(port, async (client) => {
      const unnamed = await client.query('select n from series($1)', [3]);
      assert.deepEqual(unnamed.rows, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      assert.equal(unnamed.command, 'SELECT');
      assert.equal(unnamed.rowCount, 3);

      const first = await client.query({ name: 'series', text: 'select n from series($1)', values: [2] });
      const second = await client.query({ name: 'series', text: 'select n from series($1)', values: [4] });
      assert.deepEqual(first.rows, [{ n: 1 }, { n: 2 }]);
      assert.deepEqual(
        second.rows.map((row: { n: number }) => row.n),
        [1, 2, 3, 4],
      );
      const session = onlySession(database);
      assert.equal(session.parses.filter((name) => name === 'series').length, 1, 'the named statement is parsed once and bound twice');

      const binary = await client.query({ text: 'select n from series($1)', values: [3], binary: true } as PgQuery);
      assert.equal(binary.fields[0]?.format, 'binary');
      assert.deepEqual(binary.rows, [{ n: 1 }, { n: 2 }, { n: 3 }]);

      const arrays = await client.query({ text: 'select n from series($1)', values: [2], rowMode: 'array' });
      assert.deepEqual(arrays.rows, [[1], [2]]);

      const simple = await client.query('select n from series(2); select n from series(1)');
      assert.deepEqual(
        (simple as unknown as pg.QueryResult[]).map((result) => result.rows),
        [[{ n: 1 }, { n: 2 }], [{ n: 1 }]],
      );
      const empty = await client.query('   ');
      assert.equal(empty.command, null);
    });
  });
});

test('pg: a row limit pages through PortalSuspended with Execute and Flush', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    await withPg(port, async (client) => {
      const paged = await client.query({ text: 'select n from series($1)', values: [5], rows: 2 } as PgQuery);
      assert.deepEqual(
        paged.rows.map((row: { n: number }) => row.n),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(onlySession(database).executeLimits, [2, 2, 2]);
      const after = await client.query('select n from series(1)');
      assert.deepEqual(after.rows, [{ n: 1 }]);
    });
  });
});

test('raw: Parse, Bind, Describe, Execute(2), Execute, Close and Sync get 1 2 T D D s D C 3 Z; Describe statement gets t T or t n', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port) => {
    const client = await RawClient.connect(port);
    try {
      const limited = await client.exchange([
        frontend.parse('s', 'select n from series($1)', [0]),
        frontend.bind('p', 's', [Buffer.from('3')]),
        frontend.describe('P', 'p'),
        frontend.execute('p', 2),
        frontend.execute('p', 0),
        frontend.close('P', 'p'),
        frontend.sync(),
      ]);
      assert.equal(limited.types, '12TDDsDC3Z');
      const rows = limited.frames.filter((frame) => frame.type === 'D').map((frame) => frame.body.subarray(6).toString());
      assert.deepEqual(rows, ['1', '2', '3']);
      assert.equal(limited.frames.find((frame) => frame.type === 'C')?.body.toString(), 'SELECT 3\0');

      const described = await client.exchange([frontend.describe('S', 's'), frontend.parse('f', 'fail'), frontend.describe('S', 'f'), frontend.close('S', 's'), frontend.sync()]);
      assert.equal(described.types, 'tT1tn3Z');
      const parameterDescription = described.frames[0]!.body;
      assert.deepEqual([...parameterDescription], [0, 1, 0, 0, 0, 23], 'one parameter, int4 (inferred from 0)');

      // Binary results in a portal: the int4 comes as four bytes, and Describe says format 1.
      const binary = await client.exchange([frontend.parse('', 'select n from series(1)'), frontend.bind('', '', [], [], [1]), frontend.describe('P', ''), frontend.execute(''), frontend.sync()]);
      assert.equal(binary.types, '12TDCZ');
      assert.equal(binary.frames[2]!.body.readInt16BE(binary.frames[2]!.body.length - 2), 1);
      assert.deepEqual([...binary.frames[3]!.body], [0, 1, 0, 0, 0, 4, 0, 0, 0, 1]);
    } finally {
      client.destroy();
    }
  });
});

test('errors: ErrorResponse, skip until Sync, one ReadyForQuery with the block status; the connection is usable afterwards (P1, P2)', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port) => {
    await withPg(port, async (client) => {
      await assert.rejects(client.query('fail'), { code: '42601', message: 'syntax error at or near "fail"' });
      await assert.rejects(client.query('fail', []), { code: '42601' });
      await assert.rejects(client.query('nonsense $1', [1]), { code: '42601', message: 'syntax error at or near "nonsense"' });
      await assert.rejects(client.query('select n from series($1)', ['x']), { code: '22P02' });
      const after = await client.query('select n from series($1)', [2]);
      assert.deepEqual(after.rows, [{ n: 1 }, { n: 2 }]);
    });
    const client = await RawClient.connect(port);
    try {
      // Parse fails: Bind, Describe and Execute are skipped, Sync answers once.
      const skipped = await client.exchange([frontend.parse('', 'nonsense'), frontend.bind('', ''), frontend.describe('P', ''), frontend.execute(''), frontend.sync(), frontend.query('select n from series(1)')], 2);
      assert.equal(skipped.types, 'EZTDCZ');
      assert.equal(errorFields(skipped.frames[0]!.body).get('C'), '42601');
      // In a block, a failed Execute leaves the status E until ROLLBACK.
      const begin = await client.exchange([frontend.query('begin')]);
      assert.equal(begin.frames.at(-1)!.body.toString(), 'T');
      const failed = await client.exchange([frontend.parse('', 'fail'), frontend.bind('', ''), frontend.execute(''), frontend.execute(''), frontend.sync()]);
      assert.equal(failed.types, '12EZ');
      assert.equal(failed.frames.at(-1)!.body.toString(), 'E');
      const refused = await client.exchange([frontend.query('select n from series(1)')]);
      assert.equal(errorFields(refused.frames[0]!.body).get('C'), '25P02');
      const rollback = await client.exchange([frontend.query('rollback')]);
      assert.equal(rollback.types, 'CZ');
      assert.equal(rollback.frames.at(-1)!.body.toString(), 'I');
    } finally {
      client.destroy();
    }
  });
});

test('postgres.js: described-first parameters, prepared reuse, errors and cancel', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    const sql = postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', fetch_types: false, max: 1, connect_timeout: 5, onnotice: () => undefined });
    try {
      const rows = await sql`select n from series(${3})`;
      assert.deepEqual([...rows], [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const again = await sql`select n from series(${2})`;
      assert.deepEqual([...again], [{ n: 1 }, { n: 2 }]);
      await assert.rejects(sql`fail`, (error: { code?: string }) => error.code === '42601');
      const sleeping = sql`sleep`.execute();
      await eventually(() => database.sessions[0]?.sleeping === true, 'the sleep to start');
      void sleeping.cancel();
      await assert.rejects(sleeping, (error: { code?: string; message?: string }) => error.code === '57014' && /canceling statement due to user request/.test(error.message ?? ''));
      const after = await sql`select n from series(${1})`;
      assert.deepEqual([...after], [{ n: 1 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

test('psql: COPY FROM STDIN and COPY TO STDOUT, small and large, under small inbound and output limits (P4, P5)', { timeout: testTimeoutMs }, async () => {
  // Small inbound limits, so a COPY of a few hundred kilobytes pauses the socket many times.
  const limits: ConnectionLimits = { inboundBytesMax: 16 * 1024, inboundBytesResume: 4 * 1024, outputBatchBytesMax: 8 * 1024, drainCallsPerYield: 4 };
  await withServer(async (port, database) => {
    const copied = await psql(port, 'COPY t FROM STDIN', 'alpha\nbeta\ngamma\n');
    assert.equal(copied.stderr, '');
    assert.equal(copied.stdout, 'COPY 3\n');
    const out = await psql(port, 'COPY t TO STDOUT');
    assert.equal(out.stdout, 'alpha\nbeta\ngamma\n');

    const lines = Array.from({ length: 50_000 }, (_, index) => `row ${index}`);
    const big = await psql(port, 'COPY big FROM STDIN', `${lines.join('\n')}\n`);
    assert.equal(big.stdout, 'COPY 50000\n');
    assert.deepEqual(database.tables.get('big'), lines);
    const bigOut = await psql(port, 'COPY big TO STDOUT');
    assert.equal(bigOut.stdout, `${lines.join('\n')}\n`);

    const missing = await psql(port, 'COPY nowhere TO STDOUT');
    assert.match(missing.stderr, /relation "nowhere" does not exist/);
  }, limits);
});

test('pg: CopyFail from the client fails the COPY with 57014, and the connection goes on', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    await withPg(port, async (client) => {
      // node-postgres answers a CopyInResponse it has no stream for with CopyFail.
      await assert.rejects(client.query('copy t from stdin'), { code: '57014', message: 'COPY from stdin failed: No source stream defined' });
      assert.equal(database.tables.get('t'), undefined);
      const after = await client.query('select n from series(1)');
      assert.deepEqual(after.rows, [{ n: 1 }]);
    });
  });
});

test('raw: COPY data pipelined behind its Query reaches the copy; Flush and Sync are ignored in it; another message fails it with 08P01 (P1, P4)', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    const client = await RawClient.connect(port);
    try {
      // Everything in one write, before the server has said CopyInResponse.
      const pipelined = await client.exchange(
        [frontend.query('copy p from stdin'), frontend.copyData('x\ny'), frontend.flush(), frontend.sync(), frontend.copyData('\nz\n'), frontend.copyDone(), frontend.query('copy p to stdout')],
        2,
      );
      assert.equal(pipelined.types, 'GCZHdddcCZ');
      assert.deepEqual(database.tables.get('p'), ['x', 'y', 'z']);

      const interrupted = await client.exchange([frontend.query('copy q from stdin'), frontend.copyData('1\n'), frontend.parse('', 'select n from series(1)'), frontend.copyData('2\n'), frontend.copyDone()]);
      assert.equal(interrupted.types, 'GEZ');
      const fields = errorFields(interrupted.frames[1]!.body);
      assert.equal(fields.get('C'), '08P01');
      assert.equal(fields.get('M'), 'unexpected message type 0x50 during COPY from stdin');
      assert.equal(database.tables.get('q'), undefined);

      // The CopyData and CopyDone that followed were ignored; the connection still works.
      const after = await client.exchange([frontend.query('select n from series(2)')]);
      assert.equal(after.types, 'TDDCZ');

      const failed = await client.exchange([frontend.query('copy r from stdin'), frontend.copyData('1\n'), frontend.copyFail('client gave up')]);
      assert.equal(failed.types, 'GEZ');
      assert.equal(errorFields(failed.frames[1]!.body).get('M'), 'COPY from stdin failed: client gave up');
      assert.equal(errorFields(failed.frames[1]!.body).get('C'), '57014');
    } finally {
      client.destroy();
    }
  });
});

test('psql: Ctrl-C sends a CancelRequest that stops the running statement with 57014', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    const result = await psql(port, 'sleep', '', (child) => {
      void eventually(() => database.sessions.some((session) => session.sleeping), 'the sleep to start').then(() => child.kill('SIGINT'));
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /ERROR: {2}canceling statement due to user request/);
  });
});

test('pg: a NoticeResponse reaches the client', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port) => {
    await withPg(port, async (client) => {
      const notices: string[] = [];
      client.on('notice', (notice) => notices.push(`${notice.severity}: ${notice.message}`));
      const result = await client.query('notice');
      assert.equal(result.command, 'DO');
      assert.deepEqual(notices, ['NOTICE: hello from the stub session']);
    });
  });
});

test('a client that never reads stalls only itself: its session waits in drain, others run, and it ends when the client goes (P5)', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    const stalled = await RawClient.connect(port);
    const stalledSession = onlySession(database);
    // Stop reading: the kernel buffers fill, then the server's socket buffer, then drain waits.
    stalled.socket.pause();
    stalled.send(frontend.query('select n from series(2000000)'));
    let previous = -1;
    await eventually(
      () => {
        const steady = stalledSession.rowsSent > 0 && stalledSession.rowsSent === previous;
        previous = stalledSession.rowsSent;
        return steady;
      },
      'the stalled session to stop producing rows',
      8000,
    );
    assert.ok(stalledSession.rowsSent < 2_000_000, `the session waits in drain (${stalledSession.rowsSent} rows sent)`);

    const started = Date.now();
    await withPg(port, async (client) => {
      const result = await client.query('select n from series($1)', [1000]);
      assert.equal(result.rowCount, 1000);
    });
    const viaPsql = await psql(port, 'select n from series(3)');
    assert.equal(viaPsql.stdout, '1\n2\n3\n');
    assert.ok(Date.now() - started < 3000, 'other clients are served promptly');
    assert.equal(stalledSession.rowsSent, previous, 'the stalled session is still waiting');

    stalled.destroy();
    await eventually(() => stalledSession.closed, 'the stalled session to be closed');
    assert.ok(stalledSession.rowsSent < 2_000_000, 'its statement was stopped, not run to the end');
    assert.deepEqual(stalledSession.errors, ['08006'], 'drain failed with "connection to client lost"');
  });
});

test('a raw socket that closes mid-COPY ends the copy with 08006 and closes its session', { timeout: testTimeoutMs }, async () => {
  await withServer(async (port, database) => {
    const client = await RawClient.connect(port);
    const session = onlySession(database);
    client.send(frontend.query('copy gone from stdin'), frontend.copyData('1\n'));
    await client.waitFor((types) => types.endsWith('G'));
    client.destroy();
    await eventually(() => session.closed, 'the session to be closed');
    assert.equal(database.tables.get('gone'), undefined);
    assert.deepEqual(session.errors, ['08006'], 'the copy-in iterator threw "unexpected EOF on client connection"');
    // The server still accepts connections.
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.destroy();
  });
});
