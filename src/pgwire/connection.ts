// One client connection's protocol state machine, over the codec. It owns the startup and
// authentication exchange, message order, the simple and extended query cycles, COPY
// framing, error recovery and flow control; what a statement means is the session
// handler's business (the SQL layer, behind session.ts).
//
// States:
//   startup --SSLRequest/GSSENCRequest--> startup ('N': no encryption yet)
//   startup --StartupMessage--> authenticating --proof ok--> ready --Terminate/error--> closed
//   startup --CancelRequest--> closed (the server cancels the matching session)
//   ready --Query--> (session runs) --ReadyForQuery--> ready
//   ready --Parse/Bind/Describe/Execute/Close--> ready, or skipping if it failed
//   skipping (every message ignored) --Sync--> ready
//   (session runs) --Output.copyIn--> copy-in: the session's iterator consumes CopyData
//     until CopyDone or CopyFail; the statement then ends as any other
//
// Message flow: bytes are decoded as they arrive into one inbound queue, in order. Two
// consumers take from its head, never both at once: the pump, which handles one message
// at a time and awaits the session, and, while the pump is blocked inside a COPY FROM
// STDIN statement, that statement's copy-in iterator. So COPY data sent right behind its
// Query (before CopyInResponse was seen) still reaches the copy, and a message that is not
// COPY data can never overtake the COPY.
//
// Invariants:
//  P1. Exactly one ReadyForQuery ends each simple Query and each Sync; it carries the
//      session's transaction status (I, T, E).
//  P2. After an error in extended-query mode, messages are discarded until Sync.
//  P3. A protocol violation or failed authentication ends only this connection, with a
//      FATAL ErrorResponse naming the SQLSTATE (08P01, 28P01, 28000, 0A000).
//  P4. During COPY FROM STDIN the running copy, not the pump, takes CopyData, CopyDone and
//      CopyFail from the inbound queue (ignoring Flush and Sync, as PostgreSQL does); any
//      other message fails the COPY with 08P01. CopyFail fails it with 57014.
//  P5. Flow control is per connection: the inbound queue is bounded (the socket stops
//      being read above inboundBytesMax), and Output.drain() waits only for this client's
//      socket. Nothing waits on one client on behalf of another.

import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { assert, unreachable } from '../common/index.js';
import { encodeBackend, FrontendDecoder, ProtocolError, type BackendMessage, type FieldDescription, type FrontendMessage } from './codec.js';
import { InboundQueue, messageTypeByte, type Inbound } from './inbound-queue.js';
import { ScramError, ScramServer, scramVerifier, type ScramVerifier } from './scram.js';
import { SqlError, type SessionHandler } from './session.js';
import { errorFieldsOf, StatementOutput, type OutputPort } from './statement-output.js';

export type AuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export interface ConnectionLimits {
  /** Bytes of decoded messages waiting to be handled (mostly COPY data); above this the socket is paused. */
  inboundBytesMax: number;
  /** A paused socket is read again once the waiting bytes fall to this. */
  inboundBytesResume: number;
  /** Outgoing messages are gathered into one socket write up to this size. */
  outputBatchBytesMax: number;
  /** Every this many Output.drain() calls that find room, drain() yields to the event loop once. */
  drainCallsPerYield: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  inboundBytesMax: 8 * 1024 * 1024,
  inboundBytesResume: 2 * 1024 * 1024,
  outputBatchBytesMax: 64 * 1024,
  drainCallsPerYield: 16,
};

/** The socket as the connection sees it; server.ts adapts a net.Socket. */
export interface ConnectionTransport {
  write(bytes: Uint8Array): void;
  /** Half-closes after everything written has been sent. */
  end(): void;
  /** undefined when the socket's write buffer is under its high-water mark; else resolves on 'drain' or close. */
  drain(): Promise<void> | undefined;
  /** Stop and restart reading from the socket (inbound flow control, P5). */
  pause(): void;
  resume(): void;
}

export interface ConnectionOptions {
  auth: AuthMethod;
  /** Passwords by user name (the master user's, for now). */
  users: Map<string, string>;
  serverVersion: string;
  newSession: (user: string, database: string, processId: number) => SessionHandler;
  /** A CancelRequest arrived: find the session by its key and cancel it. */
  onCancel: (processId: number, secretKey: number) => void;
  processId: number;
  secretKey: number;
  /** Over max_connections: refuse after the startup packet (53300). */
  refuse?: boolean;
  limits?: ConnectionLimits | undefined;
}

function unexpectedDuringCopy(kind: Inbound['kind']): SqlError {
  const type = messageTypeByte[kind].toString(16).toUpperCase().padStart(2, '0');
  return new SqlError('08P01', `unexpected message type 0x${type} during COPY from stdin`);
}

function connectionLost(): SqlError {
  return new SqlError('08006', 'connection to client lost');
}

type ExtendedMessage = Extract<FrontendMessage, { kind: 'parse' | 'bind' | 'describe' | 'execute' | 'close' }>;

const VERIFIERS = new Map<string, ScramVerifier>();

export class Connection {
  private readonly decoder = new FrontendDecoder();
  private state: 'startup' | 'authenticating' | 'ready' | 'skipping' | 'closed' = 'startup';
  private user = '';
  private database = '';
  private scram: ScramServer | undefined;
  private md5Salt: Buffer | undefined;
  private session: SessionHandler | undefined;
  private readonly limits: ConnectionLimits;

  private readonly inbound = new InboundQueue();
  /** The decoder failed: the rest of the stream is not read (the violation is queued, P3). */
  private decodeFailed = false;
  private readingPaused = false;
  private pumpRunning = false;
  private pumpDone: Promise<void> = Promise.resolve();
  /** The copy-in iterator waiting for the next message (P4). */
  private inputWaiter: (() => void) | undefined;

  private outgoing: Uint8Array[] = [];
  private outgoingBytes = 0;
  private flushScheduled = false;
  private drainCallsSinceYield = 0;
  private readonly port: OutputPort = {
    send: (message) => this.send(message),
    drain: () => this.drain(),
    flush: () => this.flushOutput(),
    copyInData: () => this.copyInData(),
  };

  constructor(
    private readonly options: ConnectionOptions,
    private readonly transport: ConnectionTransport,
  ) {
    this.limits = options.limits ?? defaultConnectionLimits;
    assert(this.limits.inboundBytesResume < this.limits.inboundBytesMax, 'inboundBytesResume must be below inboundBytesMax');
  }

  /** Bytes from the client. Messages are queued in order and handled one at a time. */
  receive(chunk: Uint8Array): void {
    if (this.state === 'closed' || this.decodeFailed) return;
    const messages: FrontendMessage[] = [];
    let violation: string | undefined;
    try {
      this.decoder.pushInto(chunk, messages);
    } catch (error) {
      violation = error instanceof ProtocolError ? error.message : String(error);
    }
    for (const message of messages) this.inbound.push(message);
    if (violation !== undefined) {
      // The messages before the bad one are answered first; the violation follows them (P3).
      this.decodeFailed = true;
      this.inbound.push({ kind: 'violation', message: violation });
    }
    if (!this.readingPaused && (this.inbound.bytes > this.limits.inboundBytesMax || this.decodeFailed)) {
      this.readingPaused = true;
      this.transport.pause();
    }
    this.wake();
  }

  /** The client went away. */
  async closed(): Promise<void> {
    this.state = 'closed';
    this.wake();
    await this.pumpDone;
    await this.session?.close();
  }

  cancel(): void {
    this.session?.cancel();
  }

  // ------------------------------------------------------------ inbound

  /** Hands new input to whoever consumes it: the waiting copy (P4), else the pump. */
  private wake(): void {
    const waiter = this.inputWaiter;
    if (waiter !== undefined) {
      this.inputWaiter = undefined;
      waiter();
      return;
    }
    if (!this.pumpRunning && this.state !== 'closed' && this.inbound.peek() !== undefined) this.pumpDone = this.pump();
  }

  private take(): Inbound | undefined {
    const message = this.inbound.shift();
    if (this.readingPaused && !this.decodeFailed && this.inbound.bytes <= this.limits.inboundBytesResume) {
      this.readingPaused = false;
      this.transport.resume();
    }
    return message;
  }

  /** Handles queued messages one at a time until the queue is empty. */
  private async pump(): Promise<void> {
    assert(!this.pumpRunning, 'two pumps on one connection');
    this.pumpRunning = true;
    try {
      while (this.state !== 'closed') {
        const message = this.take();
        if (message === undefined) break;
        await this.handle(message);
      }
    } catch (error) {
      this.fatal('XX000', error instanceof Error ? error.message : String(error));
    } finally {
      this.pumpRunning = false;
      this.flushOutput();
    }
  }

  /** The next message for the copy, left at the head of the queue; undefined once the connection closed. */
  private async peekForCopy(): Promise<Inbound | undefined> {
    for (;;) {
      if (this.state === 'closed') return undefined;
      const message = this.inbound.peek();
      if (message !== undefined) return message;
      assert(this.inputWaiter === undefined, 'two readers waiting for input');
      await new Promise<void>((resolve) => (this.inputWaiter = resolve));
    }
  }

  /** COPY FROM STDIN: the client's CopyData payloads until CopyDone (P4). */
  private async *copyInData(): AsyncGenerator<Uint8Array, void, undefined> {
    this.flushOutput(); // the client waits for CopyInResponse before it sends data
    for (;;) {
      const message = await this.peekForCopy();
      if (message === undefined) throw new SqlError('08006', 'unexpected EOF on client connection with an open transaction');
      switch (message.kind) {
        case 'copyData':
          this.take();
          yield message.data;
          break;
        case 'copyDone':
          this.take();
          return;
        case 'copyFail':
          this.take();
          throw new SqlError('57014', `COPY from stdin failed: ${message.message}`);
        case 'flush':
        case 'sync':
          // Ignored, as PostgreSQL does: libpq may send them not knowing its command was a COPY.
          this.take();
          break;
        case 'violation':
          // Left in the queue: after the COPY fails, the pump ends the connection (P3).
          throw new SqlError('08P01', message.message);
        case 'terminate':
          // Left in the queue too: the client asked to leave, and will.
          throw unexpectedDuringCopy(message.kind);
        default:
          this.take();
          throw unexpectedDuringCopy(message.kind);
      }
    }
  }

  // ------------------------------------------------------------ outbound

  /** Queues a message; the batch goes out when it is full or when this turn's synchronous work ends. */
  private send(message: BackendMessage): void {
    if (this.state === 'closed') return;
    const bytes = encodeBackend(message);
    this.outgoing.push(bytes);
    this.outgoingBytes += bytes.length;
    if (this.outgoingBytes >= this.limits.outputBatchBytesMax) this.flushOutput();
    else if (!this.flushScheduled && !this.pumpRunning) {
      // Outside message handling (none is running): send at the end of this turn. While
      // messages are handled, output waits for ReadyForQuery, Flush, a drain, a full batch
      // or the end of the input, as PostgreSQL buffers it: one write per query, not several.
      this.flushScheduled = true;
      queueMicrotask(() => this.flushOutput());
    }
  }

  private flushOutput(): void {
    this.flushScheduled = false;
    if (this.outgoing.length === 0) return;
    const bytes = this.outgoing.length === 1 ? this.outgoing[0]! : Buffer.concat(this.outgoing, this.outgoingBytes);
    this.outgoing = [];
    this.outgoingBytes = 0;
    if (this.state !== 'closed') this.transport.write(bytes);
  }

  /** Output.drain(): waits only for this client's socket (P5); fails once the client is gone. */
  private drain(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(connectionLost());
    this.flushOutput();
    const waiting = this.transport.drain();
    if (waiting !== undefined) {
      this.drainCallsSinceYield = 0;
      return waiting.then(() => {
        if (this.state === 'closed') throw connectionLost();
      });
    }
    // A fast client never makes drain() wait, so a long result would hold the event loop
    // (and every other connection) without this occasional yield.
    this.drainCallsSinceYield += 1;
    if (this.drainCallsSinceYield < this.limits.drainCallsPerYield) return Promise.resolve();
    this.drainCallsSinceYield = 0;
    return new Promise((resolve) => setImmediate(resolve));
  }

  private readyForQuery(): void {
    this.send({ kind: 'readyForQuery', status: this.session!.transactionStatus() });
    this.flushOutput();
  }

  private fatal(code: string, message: string): void {
    if (this.state === 'closed') return;
    this.send({ kind: 'errorResponse', fields: { severity: 'FATAL', code, message } });
    this.close();
  }

  private close(): void {
    this.flushOutput();
    this.state = 'closed';
    this.transport.end();
    // A paused socket would never see the client's end of the stream, and never close.
    if (this.readingPaused) {
      this.readingPaused = false;
      this.transport.resume();
    }
    this.wake();
  }

  /** An error from the session becomes an ErrorResponse; FATAL (or PANIC) also ends the connection. */
  private reportError(error: unknown): void {
    const fields = errorFieldsOf(error);
    this.send({ kind: 'errorResponse', fields });
    if (fields.severity === 'FATAL' || fields.severity === 'PANIC') this.close();
  }

  // ------------------------------------------------------------ startup and authentication

  private async handle(message: Inbound): Promise<void> {
    if (message.kind === 'violation') return this.fatal('08P01', message.message); // P3
    switch (this.state) {
      case 'closed':
        return;
      case 'startup':
        return this.startup(message);
      case 'authenticating':
        return this.authenticate(message);
      case 'ready':
      case 'skipping':
        return this.command(message);
    }
  }

  private startup(message: FrontendMessage): void {
    if (message.kind === 'sslRequest' || message.kind === 'gssencRequest') {
      this.send({ kind: 'sslRefused' });
      return;
    }
    if (message.kind === 'cancelRequest') {
      this.options.onCancel(message.processId, message.secretKey);
      this.close();
      return;
    }
    if (message.kind !== 'startup') return this.fatal('08P01', `unexpected message ${message.kind} before startup`);
    if (this.options.refuse) return this.fatal('53300', 'sorry, too many clients already');
    if (message.protocol >> 16 !== 3) return this.fatal('0A000', `unsupported frontend protocol ${message.protocol >> 16}.${message.protocol & 0xffff}: server supports 3.0 to 3.0`);
    const user = message.parameters.get('user');
    if (user === undefined || user === '') return this.fatal('28000', 'no PostgreSQL user name specified in startup packet');
    this.user = user;
    this.database = message.parameters.get('database') ?? user;
    this.state = 'authenticating';
    switch (this.options.auth) {
      case 'trust':
        return this.authenticated();
      case 'password':
        return this.send({ kind: 'authenticationCleartextPassword' });
      case 'md5':
        this.md5Salt = randomBytes(4);
        return this.send({ kind: 'authenticationMD5Password', salt: this.md5Salt });
      case 'scram-sha-256':
        return this.send({ kind: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
    }
  }

  private passwordFailed(): void {
    this.fatal('28P01', `password authentication failed for user "${this.user}"`);
  }

  private verifier(): ScramVerifier | undefined {
    const password = this.options.users.get(this.user);
    if (password === undefined) return undefined;
    // One verifier per user and password for the process (as PostgreSQL stores one): PBKDF2
    // runs once, not on every connection.
    const cacheKey = `${this.user}\u0000${password}`;
    let verifier = VERIFIERS.get(cacheKey);
    if (verifier === undefined) {
      verifier = scramVerifier(password);
      VERIFIERS.set(cacheKey, verifier);
    }
    return verifier;
  }

  private authenticate(message: FrontendMessage): void {
    if (message.kind !== 'password') return this.fatal('08P01', `expected a password message, got ${message.kind}`);
    const password = this.options.users.get(this.user);
    const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
    if (this.options.auth === 'password') {
      const given = text(message.data).replace(/\0$/, '');
      if (password === undefined || given !== password) return this.passwordFailed();
      return this.authenticated();
    }
    if (this.options.auth === 'md5') {
      // md5(md5(password || user) || salt), hex, prefixed "md5".
      const given = text(message.data).replace(/\0$/, '');
      if (password === undefined) return this.passwordFailed();
      const inner = createHash('md5').update(password + this.user).digest('hex');
      const expected = `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), this.md5Salt!])).digest('hex')}`;
      if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) return this.passwordFailed();
      return this.authenticated();
    }
    try {
      if (this.scram === undefined) {
        // SASLInitialResponse: mechanism, then the client-first message with its length.
        const data = Buffer.from(message.data);
        const end = data.indexOf(0);
        if (end < 0 || data.subarray(0, end).toString() !== 'SCRAM-SHA-256') return this.fatal('28000', 'client selected an invalid SASL authentication mechanism');
        const length = data.readInt32BE(end + 1);
        const clientFirst = data.subarray(end + 5, end + 5 + length).toString('utf8');
        // An unknown user still goes through the exchange (with a throwaway verifier), as PostgreSQL does.
        this.scram = new ScramServer(this.verifier() ?? scramVerifier(randomBytes(16).toString('hex')));
        const serverFirst = this.scram.clientFirst(clientFirst);
        this.send({ kind: 'authenticationSASLContinue', data: Buffer.from(serverFirst) });
        return;
      }
      const serverFinal = this.scram.clientFinal(text(message.data));
      if (password === undefined) return this.passwordFailed();
      this.send({ kind: 'authenticationSASLFinal', data: Buffer.from(serverFinal) });
      this.authenticated();
    } catch (error) {
      if (error instanceof ScramError && /password authentication failed/.test(error.message)) return this.passwordFailed();
      return this.fatal('08P01', (error as Error).message);
    }
  }

  private authenticated(): void {
    this.send({ kind: 'authenticationOk' });
    const parameters: Array<[string, string]> = [
      ['application_name', ''],
      ['client_encoding', 'UTF8'],
      ['DateStyle', 'ISO, MDY'],
      ['default_transaction_read_only', 'off'],
      ['in_hot_standby', 'off'],
      ['integer_datetimes', 'on'],
      ['IntervalStyle', 'postgres'],
      ['is_superuser', 'on'],
      ['server_encoding', 'UTF8'],
      ['server_version', this.options.serverVersion],
      ['session_authorization', this.user],
      ['standard_conforming_strings', 'on'],
      ['TimeZone', 'UTC'],
    ];
    for (const [name, value] of parameters) this.send({ kind: 'parameterStatus', name, value });
    this.send({ kind: 'backendKeyData', processId: this.options.processId, secretKey: this.options.secretKey });
    this.decoder.startupDone();
    this.session = this.options.newSession(this.user, this.database, this.options.processId);
    this.state = 'ready';
    this.readyForQuery();
  }

  // ------------------------------------------------------------ commands

  private async command(message: FrontendMessage): Promise<void> {
    if (message.kind === 'terminate') return this.close();
    if (message.kind === 'sync') return this.sync();
    if (this.state === 'skipping') return; // P2: everything up to Sync is discarded
    switch (message.kind) {
      case 'query':
        return this.simpleQuery(message.sql);
      case 'parse':
      case 'bind':
      case 'describe':
      case 'execute':
      case 'close':
        return this.extended(message);
      case 'flush':
        return this.flushOutput();
      case 'functionCall':
        // The fast-path function call is its own cycle, ended by ReadyForQuery.
        this.send({ kind: 'errorResponse', fields: { severity: 'ERROR', code: '0A000', message: 'the fast-path function call interface is not supported' } });
        return this.readyForQuery();
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        // Outside a COPY these are ignored, as PostgreSQL does: after a COPY failed the
        // client may still be sending the rest of its data.
        return;
      case 'startup':
      case 'sslRequest':
      case 'gssencRequest':
      case 'cancelRequest':
      case 'password':
        return this.fatal('08P01', `unexpected message ${message.kind}`);
      default:
        return unreachable(message, 'frontend message');
    }
  }

  private async simpleQuery(sql: string): Promise<void> {
    // All-whitespace strings are answered here; the session answers anything else that is empty.
    if (sql.trim() === '') this.send({ kind: 'emptyQueryResponse' });
    else {
      const out = new StatementOutput(this.port, 'simple');
      try {
        await this.session!.simpleQuery(sql, out);
      } catch (error) {
        this.reportError(error);
      } finally {
        out.retire();
      }
    }
    if (this.state !== 'closed') this.readyForQuery(); // P1
  }

  private async extended(message: ExtendedMessage): Promise<void> {
    const session = this.session!;
    try {
      switch (message.kind) {
        case 'parse':
          await session.parse(message.name, message.sql, message.parameterTypes);
          return this.send({ kind: 'parseComplete' });
        case 'bind':
          await session.bind(message.portal, message.statement, message.parameterFormats, message.parameters, message.resultFormats);
          return this.send({ kind: 'bindComplete' });
        case 'describe':
          return this.describe(message.target, message.name);
        case 'execute':
          return await this.execute(message.portal, message.rowLimit);
        case 'close':
          if (message.target === 'statement') session.closeStatement(message.name);
          else session.closePortal(message.name);
          return this.send({ kind: 'closeComplete' });
      }
    } catch (error) {
      this.reportError(error);
      if (this.state === 'ready') this.state = 'skipping'; // P2
    }
  }

  private describe(target: 'statement' | 'portal', name: string): void {
    const session = this.session!;
    let fields: FieldDescription[] | undefined;
    if (target === 'statement') {
      const description = session.describeStatement(name);
      this.send({ kind: 'parameterDescription', typeOids: description.paramTypes });
      fields = description.fields;
    } else fields = session.describePortal(name);
    this.send(fields === undefined ? { kind: 'noData' } : { kind: 'rowDescription', fields });
  }

  private async execute(portal: string, rowLimit: number): Promise<void> {
    const out = new StatementOutput(this.port, 'extended');
    try {
      // PostgreSQL reads a row limit of zero or below as "no limit".
      const result = await this.session!.execute(portal, Math.max(0, rowLimit), out);
      if (result === 'suspended') {
        assert(!out.completed, 'execute returned suspended after completing its portal');
        this.send({ kind: 'portalSuspended' });
      } else assert(out.completed, 'execute returned complete without CommandComplete or EmptyQueryResponse');
    } finally {
      out.retire();
    }
  }

  private async sync(): Promise<void> {
    try {
      await this.session!.sync();
    } catch (error) {
      this.reportError(error);
    }
    if (this.state === 'closed') return;
    this.state = 'ready';
    this.readyForQuery(); // P1
  }
}
