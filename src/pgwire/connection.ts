// One client connection's protocol state machine, over the codec. It owns the startup and
// authentication exchange, the simple-query cycle and error recovery; what a statement
// means is the session handler's business (the SQL layer).
//
// States:
//   startup --SSLRequest/GSSENCRequest--> startup ('N': no encryption yet)
//   startup --StartupMessage--> authenticating --proof ok--> ready --Terminate/error--> closed
//   startup --CancelRequest--> closed (the server cancels the matching session)
//   ready --Query--> busy --ReadyForQuery--> ready
//   ready --extended message fails--> skipping (every message ignored) --Sync--> ready
//
// Invariants:
//  P1. Exactly one ReadyForQuery ends each simple Query and each Sync; it carries the
//      session's transaction status (I, T, E).
//  P2. After an error in extended-query mode, messages are discarded until Sync.
//  P3. A protocol violation or failed authentication ends only this connection, with a
//      FATAL ErrorResponse naming the SQLSTATE (08P01, 28P01, 28000, 0A000).

import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { encodeBackend, FrontendDecoder, PROTOCOL_3_0, ProtocolError, type BackendMessage, type ErrorFields, type FieldDescription, type FrontendMessage } from './codec.js';
import { ScramError, ScramServer, scramVerifier, type ScramVerifier } from './scram.js';

export type AuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export interface StatementResult {
  fields?: FieldDescription[];
  rows?: Array<Array<Uint8Array | null>>;
  tag: string;
}

/** What the SQL layer provides for one connection. */
export interface SessionHandler {
  /** Runs a simple-query string; results in order; an error stops the string (the rest is not run). */
  simpleQuery(sql: string): Promise<Array<StatementResult | { error: ErrorFields }>>;
  /** I (idle), T (in a transaction block), E (in a failed block). */
  transactionStatus(): 'I' | 'T' | 'E';
  /** A CancelRequest names this session: stop the running statement (57014). */
  cancel(): void;
  close(): Promise<void>;
}

export interface ConnectionOptions {
  auth: AuthMethod;
  /** Passwords by user name (the master user's, for now). */
  users: Map<string, string>;
  serverVersion: string;
  newSession: (user: string, database: string) => SessionHandler;
  /** A CancelRequest arrived: find the session by its key and cancel it. */
  onCancel: (processId: number, secretKey: number) => void;
  processId: number;
  secretKey: number;
  /** Over max_connections: refuse after the startup packet (53300). */
  refuse?: boolean;
}

export class Connection {
  private readonly decoder = new FrontendDecoder();
  private state: 'startup' | 'authenticating' | 'ready' | 'skipping' | 'closed' = 'startup';
  private user = '';
  private database = '';
  private scram: ScramServer | undefined;
  private md5Salt: Buffer | undefined;
  private session: SessionHandler | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly verifiers = new Map<string, ScramVerifier>();

  constructor(
    private readonly options: ConnectionOptions,
    private readonly write: (bytes: Uint8Array) => void,
    private readonly end: () => void,
  ) {}

  /** Bytes from the client. Messages are handled one at a time, in order. */
  receive(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    let messages: FrontendMessage[];
    try {
      messages = this.decoder.push(chunk);
    } catch (error) {
      this.fatal(error instanceof ProtocolError ? '08P01' : 'XX000', (error as Error).message);
      return;
    }
    for (const message of messages) this.queue = this.queue.then(() => this.handle(message)).catch((error: unknown) => this.fatal('XX000', (error as Error).message));
  }

  /** The client went away. */
  async closed(): Promise<void> {
    this.state = 'closed';
    await this.queue;
    await this.session?.close();
  }

  cancel(): void {
    this.session?.cancel();
  }

  private send(message: BackendMessage): void {
    if (this.state !== 'closed') this.write(encodeBackend(message));
  }

  private fatal(code: string, message: string): void {
    if (this.state === 'closed') return;
    this.send({ kind: 'errorResponse', fields: { severity: 'FATAL', code, message } });
    this.state = 'closed';
    this.end();
  }

  private async handle(message: FrontendMessage): Promise<void> {
    if (this.state === 'closed') return;
    switch (this.state) {
      case 'startup':
        return this.startup(message);
      case 'authenticating':
        return this.authenticate(message);
      default:
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
      this.state = 'closed';
      this.end();
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
    let verifier = this.verifiers.get(this.user);
    if (verifier === undefined) {
      verifier = scramVerifier(password);
      this.verifiers.set(this.user, verifier);
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
    this.session = this.options.newSession(this.user, this.database);
    this.state = 'ready';
    this.send({ kind: 'readyForQuery', status: 'I' });
  }

  private async command(message: FrontendMessage): Promise<void> {
    const session = this.session!;
    if (message.kind === 'terminate') {
      this.state = 'closed';
      this.end();
      return;
    }
    if (this.state === 'skipping') {
      // P2: after an extended-query error, everything up to Sync is discarded.
      if (message.kind === 'sync') {
        this.state = 'ready';
        this.send({ kind: 'readyForQuery', status: session.transactionStatus() });
      }
      return;
    }
    switch (message.kind) {
      case 'query': {
        if (message.sql.trim() === '') this.send({ kind: 'emptyQueryResponse' });
        else {
          for (const result of await session.simpleQuery(message.sql)) {
            if ('error' in result) {
              this.send({ kind: 'errorResponse', fields: result.error });
              break;
            }
            if (result.fields !== undefined) this.send({ kind: 'rowDescription', fields: result.fields });
            for (const row of result.rows ?? []) this.send({ kind: 'dataRow', values: row });
            this.send({ kind: 'commandComplete', tag: result.tag });
          }
        }
        this.send({ kind: 'readyForQuery', status: session.transactionStatus() }); // P1
        return;
      }
      case 'sync':
        this.send({ kind: 'readyForQuery', status: session.transactionStatus() });
        return;
      case 'flush':
        return;
      case 'parse':
      case 'bind':
      case 'describe':
      case 'execute':
      case 'close':
      case 'functionCall':
        this.send({ kind: 'errorResponse', fields: { severity: 'ERROR', code: '0A000', message: `the extended query protocol (${message.kind}) is not supported yet` } });
        this.state = 'skipping';
        return;
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        return; // outside a COPY these are ignored, as PostgreSQL does
      default:
        return this.fatal('08P01', `unexpected message ${message.kind}`);
    }
  }
}
