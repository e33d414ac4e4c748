// The contract between the wire protocol (connection.ts) and the SQL layer (src/sql): the
// connection owns framing, authentication, message order and error recovery; the session
// owns what statements mean. Results stream through an Output as they are produced, so a
// large result never has to sit in memory.
//
// Errors: a session method that fails throws a SqlError (or anything with `code` and
// `message`); the connection turns it into an ErrorResponse. In a simple Query the rest of
// the string is not run; in extended mode the connection skips until Sync (P2).

import type { ErrorFields, FieldDescription } from './codec.js';

/** An error a session reports: SQLSTATE, message and the optional ErrorResponse fields. */
export class SqlError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly extra: Omit<ErrorFields, 'severity' | 'code' | 'message'> = {},
  ) {
    super(message);
  }

  get fields(): ErrorFields {
    return { severity: 'ERROR', code: this.code, message: this.message, ...this.extra };
  }
}

/**
 * Where a statement's results go. Calls are made in protocol order, and only while the
 * session call that received it runs. An Execute that returns 'complete' has sent
 * CommandComplete (or EmptyQuery); one that returns 'suspended' has not.
 */
export interface Output {
  /** RowDescription: only in simple-query mode (extended mode describes through Describe). */
  rowDescription(fields: FieldDescription[]): void;
  /** One DataRow, values already encoded in the formats the client asked for. */
  dataRow(values: Array<Uint8Array | null>): void;
  commandComplete(tag: string): void;
  /** The simple-query string (or one statement of it) was empty. */
  emptyQuery(): void;
  notice(fields: ErrorFields): void;
  /** ParameterStatus: a reported setting changed (SET application_name, TimeZone, …). */
  parameterStatus(name: string, value: string): void;
  /**
   * Resolves when the client's socket has room again; call it every few hundred rows. It
   * rejects with SqlError 08006 once the client is gone, so a long query stops.
   */
  drain(): Promise<void>;
  /**
   * COPY … FROM STDIN: sends CopyInResponse and yields the client's CopyData payloads until
   * CopyDone; a CopyFail from the client throws a SqlError 57014 ("COPY from stdin failed: …").
   * During the copy, Flush and Sync are ignored, any other message fails it with 08P01, and a
   * disconnect with 08006.
   */
  copyIn(format: 'text' | 'binary', columnFormats: number[]): AsyncIterable<Uint8Array>;
  /** COPY … TO STDOUT: CopyOutResponse, then copyData for each chunk, then copyDone. */
  copyOutStart(format: 'text' | 'binary', columnFormats: number[]): void;
  copyData(bytes: Uint8Array): void;
  copyDone(): void;
}

/** What Parse learned about a statement: parameter type OIDs and the result's columns (undefined: NoData). */
export interface StatementDescription {
  paramTypes: number[];
  fields: FieldDescription[] | undefined;
}

/** What the SQL layer provides for one connection. */
export interface SessionHandler {
  /** Runs a simple-query string, statement by statement; stops at the first error (thrown). */
  simpleQuery(sql: string, out: Output): Promise<void>;

  /** Parse: '' is the unnamed statement (replaced by the next Parse). paramTypes 0 = infer. */
  parse(name: string, sql: string, paramTypes: number[]): Promise<void>;
  /** Bind: '' is the unnamed portal. Formats are passed as sent (the protocol's 0 / 1 / one-per-column rule). */
  bind(portal: string, statement: string, paramFormats: number[], params: Array<Uint8Array | null>, resultFormats: number[]): Promise<void>;
  describeStatement(name: string): StatementDescription;
  /** A portal's result columns in its result formats (undefined: NoData). */
  describePortal(name: string): FieldDescription[] | undefined;
  /**
   * Execute: sends DataRows (at most maxRows when maxRows > 0) and then either
   * commandComplete (returns 'complete') or nothing (returns 'suspended': the connection
   * sends PortalSuspended, and a later Execute resumes).
   */
  execute(portal: string, maxRows: number, out: Output): Promise<'complete' | 'suspended'>;
  closeStatement(name: string): void;
  closePortal(name: string): void;
  /** Sync: ends an implicit transaction (commit, or rollback after an error), drops the unnamed portal. */
  sync(): Promise<void>;

  /** I (idle), T (in a transaction block), E (in a failed block). */
  transactionStatus(): 'I' | 'T' | 'E';
  /** A CancelRequest names this session: stop the running statement (57014). */
  cancel(): void;
  close(): Promise<void>;
}
