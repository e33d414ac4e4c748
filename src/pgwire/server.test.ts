// The protocol layer with real clients: psql (PostgreSQL 15's, from Debian) connects over
// TCP, is refused SSL and goes on in clear, authenticates with SCRAM-SHA-256, md5 or a
// cleartext password, and runs simple queries; wrong passwords, too many connections,
// garbage bytes and extended-query errors get PostgreSQL's answers without disturbing
// other connections. The session handler here is a stub that evaluates SELECT of
// constants; the SQL layer replaces it.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { test } from 'node:test';
import { loadModule, parseSync } from 'libpg-query';
import { encodeBackend, FrontendDecoder } from './codec.js';
import type { AuthMethod } from './connection.js';
import { PgServer } from './server.js';
import { SqlError, type SessionHandler } from './session.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the parse tree is walked structurally */
function stubSession(): SessionHandler {
  let status: 'I' | 'T' | 'E' = 'I';
  const extended = (): never => {
    throw new SqlError('0A000', 'the stub session only runs simple queries');
  };
  return {
    async simpleQuery(sql, out) {
      await loadModule();
      let statements: any[];
      try {
        statements = (parseSync(sql) as any).stmts;
      } catch (error) {
        throw new SqlError('42601', (error as Error).message);
      }
      for (const { stmt } of statements) {
        if (stmt.TransactionStmt !== undefined) {
          const kind = stmt.TransactionStmt.kind as string;
          status = kind === 'TRANS_STMT_BEGIN' ? 'T' : 'I';
          out.commandComplete(kind === 'TRANS_STMT_BEGIN' ? 'BEGIN' : kind === 'TRANS_STMT_COMMIT' ? 'COMMIT' : 'ROLLBACK');
          continue;
        }
        const targets = stmt.SelectStmt?.targetList as any[] | undefined;
        if (targets === undefined || stmt.SelectStmt.fromClause !== undefined) {
          if (status === 'T') status = 'E';
          throw new SqlError('0A000', 'the stub session only evaluates SELECT of constants');
        }
        const values = targets.map((target) => target.ResTarget.val.A_Const);
        out.rowDescription(targets.map((target, index) => ({ name: target.ResTarget.name ?? '?column?', tableOid: 0, columnNumber: 0, typeOid: values[index].sval !== undefined ? 25 : 23, typeSize: values[index].sval !== undefined ? -1 : 4, typeModifier: -1, format: 0 as const })));
        out.dataRow(values.map((value) => Buffer.from(String(value.sval?.sval ?? value.ival?.ival ?? 0))));
        out.commandComplete('SELECT 1');
      }
    },
    parse: async () => extended(),
    bind: async () => extended(),
    describeStatement: () => extended(),
    describePortal: () => extended(),
    execute: async () => extended(),
    closeStatement: () => extended(),
    closePortal: () => extended(),
    sync: async () => undefined,
    transactionStatus: () => status,
    cancel: () => undefined,
    close: async () => undefined,
  };
}

async function withServer(auth: AuthMethod, body: (port: number, server: PgServer) => Promise<void>, maxConnections = 10): Promise<void> {
  const server = new PgServer({ auth, users: new Map([['postgres', 'secret pass']]), serverVersion: '15.8', maxConnections, newSession: () => stubSession() });
  const port = await server.listen(0);
  try {
    await body(port, server);
  } finally {
    await server.close();
  }
}

function psql(port: number, sql: string, password: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' }, timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

for (const auth of ['scram-sha-256', 'md5', 'password'] as const) {
  test(`psql authenticates with ${auth} (after its SSL request is refused) and runs a query; a wrong password is refused with 28P01`, { timeout: 60_000 }, async () => {
    await withServer(auth, async (port) => {
      const ok = await psql(port, "SELECT 42 AS answer, 'boreal' AS name", 'secret pass');
      assert.equal(ok.stderr, '');
      assert.equal(ok.stdout, '42|boreal\n');
      const wrong = await psql(port, 'SELECT 1', 'not the password');
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /password authentication failed for user "postgres"/);
    });
  });
}

test('psql sees errors with their SQLSTATE, and a transaction block in its status', { timeout: 60_000 }, async () => {
  await withServer('trust', async (port) => {
    const error = await psql(port, 'SELECT * FROM nowhere', '');
    assert.notEqual(error.code, 0);
    assert.match(error.stderr, /ERROR: {2}the stub session only evaluates SELECT of constants/);
    const block = await psql(port, 'BEGIN; SELECT 7; COMMIT', '');
    assert.equal(block.stdout, 'BEGIN\n7\nCOMMIT\n');
  });
});

/** A raw client: sends bytes, collects backend message types. */
async function raw(port: number, send: Uint8Array[], waitFor: (types: string) => boolean): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let types = '';
  let buffered = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out with ${types}`));
    }, 10_000);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 5) {
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) break;
        types += String.fromCharCode(buffered[0]!);
        buffered = buffered.subarray(1 + length);
      }
      if (waitFor(types)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(types);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(types);
    });
    socket.on('connect', () => {
      for (const bytes of send) socket.write(bytes);
    });
  });
}

const startup = (): Uint8Array => {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\0postgres\0\0')]);
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(4 + body.length);
  body.copy(out, 4);
  return out;
};
const message = (type: string, body: Buffer): Buffer => {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
};

test('after an extended-query error everything up to Sync is skipped, then one ReadyForQuery (P1, P2)', { timeout: 30_000 }, async () => {
  await withServer('trust', async (port) => {
    const parse = message('P', Buffer.from('\0SELECT 1\0\0\0'));
    const bind = message('B', Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
    const execute = message('E', Buffer.from([0, 0, 0, 0, 0]));
    const sync = message('S', Buffer.alloc(0));
    const query = message('Q', Buffer.from('SELECT 5\0'));
    const types = await raw(port, [startup(), parse, bind, execute, sync, query], (seen) => (seen.match(/Z/g) ?? []).length >= 3);
    // R (auth ok), S... (parameters), K, Z; E for Parse (the stub refuses extended mode), nothing
    // for Bind/Execute, Z for Sync; then T D C Z.
    assert.match(types, /^RS+KZEZTDCZ$/);
  });
});

test('garbage closes only its own connection (08P01), and max_connections refuses the next with 53300', { timeout: 30_000 }, async () => {
  await withServer(
    'trust',
    async (port, server) => {
      const good = net.connect({ host: '127.0.0.1', port });
      await new Promise((resolve) => good.once('connect', resolve));
      good.write(startup());
      await new Promise((resolve) => setTimeout(resolve, 100));
      const garbage = await raw(port, [startup(), Buffer.from([0x51, 0, 0, 0, 2])], () => false);
      assert.match(garbage, /E$/, 'a FATAL error, then the server closed the connection');
      const okMeanwhile = await psql(port, 'SELECT 1', '');
      assert.equal(okMeanwhile.stdout, '1\n');
      // With one connection open and the limit at 2, a second is accepted and a third refused.
      // The clients above saw their sockets close; the server may see it a moment later.
      for (let waited = 0; server.connectionCount > 1 && waited < 2000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(server.connectionCount, 1);
      const second = net.connect({ host: '127.0.0.1', port });
      await new Promise((resolve) => second.once('connect', resolve));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(server.connectionCount, 2);
      const refused = await psql(port, 'SELECT 1', '');
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /sorry, too many clients already/);
      good.destroy();
      second.destroy();
    },
    2,
  );
});

test('the decoder and encoder agree with what psql needed (a smoke check of the exported pieces)', () => {
  assert.equal(new FrontendDecoder().push(startup()).length, 1);
  assert.equal(encodeBackend({ kind: 'readyForQuery', status: 'T' })[5], 0x54);
});
