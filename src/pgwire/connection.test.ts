// The connection state machine without sockets: a fake transport records what is written,
// paused, resumed and ended, and hand-written sessions block where the test wants them to.
// These are the deterministic proofs of flow control (P5), of COPY data routing (P4) and
// of how errors thrown by a session become ErrorResponses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection, type ConnectionLimits, type ConnectionTransport } from './connection.js';
import { SqlError, type Output, type SessionHandler } from './session.js';
import { errorFieldsOf } from './statement-output.js';
import { BackendReader, errorFields, frontend } from './raw-client.js';

class FakeTransport implements ConnectionTransport {
  readonly reader = new BackendReader();
  /** 'pause', 'resume', 'end', in order. */
  readonly events: string[] = [];
  readonly writes: Uint8Array[] = [];
  /** While true, drain() makes its caller wait until release(). */
  full = false;
  private drainWaiters: Array<() => void> = [];

  write(bytes: Uint8Array): void {
    this.writes.push(bytes);
    this.reader.push(bytes);
  }
  end(): void {
    this.events.push('end');
  }
  drain(): Promise<void> | undefined {
    if (!this.full) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
  release(): void {
    this.full = false;
    for (const waiter of this.drainWaiters.splice(0)) waiter();
  }
  pause(): void {
    this.events.push('pause');
  }
  resume(): void {
    this.events.push('resume');
  }
}

/** A session that only runs simple queries, through `run`; extended mode is refused. */
function session(run: (sql: string, out: Output) => Promise<void>): SessionHandler {
  const refuse = (): never => {
    throw new SqlError('0A000', 'simple queries only');
  };
  return {
    simpleQuery: run,
    parse: async () => refuse(),
    bind: async () => refuse(),
    describeStatement: () => refuse(),
    describePortal: () => refuse(),
    execute: async () => refuse(),
    closeStatement: () => refuse(),
    closePortal: () => refuse(),
    sync: async () => undefined,
    transactionStatus: () => 'I',
    cancel: () => undefined,
    close: async () => undefined,
  };
}

const limits: ConnectionLimits = { inboundBytesMax: 1000, inboundBytesResume: 200, outputBatchBytesMax: 64 * 1024, drainCallsPerYield: 3 };

/** A connection past its startup (trust), with its transport. */
async function started(handler: SessionHandler): Promise<{ connection: Connection; transport: FakeTransport; from: number }> {
  const transport = new FakeTransport();
  const connection = new Connection({ auth: 'trust', users: new Map(), serverVersion: '15.8', newSession: () => handler, onCancel: () => undefined, processId: 1, secretKey: 2, limits }, transport);
  connection.receive(frontend.startup());
  await settle();
  assert.match(transport.reader.types(), /^RS+KZ$/);
  return { connection, transport, from: transport.reader.messages.length };
}

/** Lets every pending microtask and immediate run. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

test('COPY data waits in the inbound queue for its copy; the socket pauses above inboundBytesMax and resumes at inboundBytesResume (P4, P5)', async () => {
  const gate = deferred();
  const received: string[] = [];
  const { connection, transport, from } = await started(
    session(async (sql, out) => {
      if (sql === 'after') return out.commandComplete('SELECT 0');
      const data = out.copyIn('text', [0]);
      await gate.promise; // the copy is slow to start reading
      for await (const chunk of data) received.push(Buffer.from(chunk).toString());
      out.commandComplete(`COPY ${received.length}`);
    }),
  );
  const chunks = Array.from({ length: 30 }, (_, index) => `${String(index).padStart(99, '.')}\n`);
  // The Query, all the data and a second Query arrive in one piece.
  connection.receive(Buffer.concat([frontend.query('copy t from stdin'), ...chunks.map((chunk) => frontend.copyData(chunk)), frontend.copyDone(), frontend.query('after')]));
  await settle();
  assert.deepEqual(transport.events, ['pause'], 'about 3 kB waiting, over the 1000-byte limit');
  assert.equal(transport.reader.types(from), 'G');
  gate.resolve();
  await settle();
  assert.deepEqual(received, chunks);
  assert.deepEqual(transport.events, ['pause', 'resume']);
  // The COPY ends with one ReadyForQuery; the Query behind it runs after, as its own cycle.
  assert.equal(transport.reader.types(from), 'GCZCZ');
  await connection.closed();
});

test('drain waits only when the transport is full, yields to the event loop every drainCallsPerYield calls, and fails with 08006 once the client is gone (P5)', async () => {
  const outputs: Output[] = [];
  const finish = deferred();
  const { connection, transport, from } = await started(
    session(async (_sql, out) => {
      outputs.push(out);
      await finish.promise;
      out.commandComplete('DONE');
    }),
  );
  connection.receive(frontend.query('anything'));
  await settle();
  const out = outputs[0]!;

  let immediateRan = false;
  setImmediate(() => (immediateRan = true));
  await out.drain();
  await out.drain();
  assert.equal(immediateRan, false, 'the first calls resolve without a turn of the event loop');
  await out.drain();
  assert.equal(immediateRan, true, 'the third call yields');

  transport.full = true;
  let drained = false;
  const waiting = out.drain().then(() => (drained = true));
  await settle();
  assert.equal(drained, false, 'a full socket makes drain wait');
  transport.release();
  await waiting;

  transport.full = true;
  const lost = out.drain();
  const closing = connection.closed();
  transport.release(); // the socket's 'close' ends every wait for it
  await assert.rejects(lost, { code: '08006', message: 'connection to client lost' });
  await assert.rejects(out.drain(), { code: '08006' });
  finish.resolve();
  await closing;
  assert.equal(transport.reader.types(from).includes('C'), false, 'nothing is written after the client is gone');
});

test('output is gathered into one write per synchronous stretch', async () => {
  const { connection, transport, from } = await started(
    session(async (_sql, out) => {
      out.rowDescription([{ name: 'a', tableOid: 0, columnNumber: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }]);
      for (let row = 0; row < 100; row++) out.dataRow([Buffer.from(String(row))]);
      out.commandComplete('SELECT 100');
    }),
  );
  const writesBefore = transport.writes.length;
  connection.receive(frontend.query('select'));
  await settle();
  assert.equal(transport.reader.types(from), `T${'D'.repeat(100)}CZ`);
  assert.ok(transport.writes.length - writesBefore <= 2, `${transport.writes.length - writesBefore} writes`);
  await connection.closed();
});

test('what a session throws becomes an ErrorResponse; FATAL also ends the connection; a session that misuses Output gets XX000', async () => {
  assert.deepEqual(errorFieldsOf(new SqlError('42P01', 'relation "t" does not exist', { hint: 'create it' })), { severity: 'ERROR', code: '42P01', message: 'relation "t" does not exist', hint: 'create it' });
  assert.deepEqual(errorFieldsOf({ code: '22012', message: 'division by zero' }), { severity: 'ERROR', code: '22012', message: 'division by zero' });
  assert.deepEqual(errorFieldsOf({ fields: { severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' } }).severity, 'FATAL');
  assert.equal(errorFieldsOf(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })).code, 'XX000', 'a Node system error is not a SQLSTATE');
  assert.deepEqual(errorFieldsOf(new TypeError('x is undefined')), { severity: 'ERROR', code: 'XX000', message: 'x is undefined' });

  let late: Output | undefined;
  const { connection, transport, from } = await started(
    session(async (sql, out) => {
      if (sql === 'late') late = out;
      else if (sql === 'fatal') throw { fields: { severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' } };
      else throw new SqlError('42601', 'syntax error');
    }),
  );
  connection.receive(frontend.query('late'));
  connection.receive(frontend.query('oops'));
  await settle();
  assert.throws(() => late!.dataRow([]), /called after the statement returned/);
  const cycle = transport.reader.messages.slice(from);
  assert.equal(transport.reader.types(from), 'ZEZ', 'a Query that sends nothing still gets its ReadyForQuery (P1)');
  assert.equal(errorFields(cycle[1]!.body).get('C'), '42601');
  connection.receive(frontend.query('fatal'));
  connection.receive(frontend.query('never run'));
  await settle();
  assert.equal(transport.reader.types(from), 'ZEZE');
  assert.equal(errorFields(transport.reader.messages.at(-1)!.body).get('S'), 'FATAL');
  assert.deepEqual(transport.events, ['end']);
  await connection.closed();
});

test('a malformed message is answered in order, after the messages before it (P3)', async () => {
  const { connection, transport, from } = await started(
    session(async (_sql, out) => {
      await new Promise((resolve) => setImmediate(resolve));
      out.commandComplete('SELECT 0');
    }),
  );
  connection.receive(Buffer.concat([frontend.query('first'), Buffer.from([0x51, 0, 0, 0, 2])]));
  await settle();
  assert.equal(transport.reader.types(from), 'CZE');
  assert.equal(errorFields(transport.reader.messages.at(-1)!.body).get('C'), '08P01');
  assert.deepEqual(transport.events, ['pause', 'end', 'resume']);
  await connection.closed();
});
