// The runner's session with the server under test: node-postgres over TCP, the simple
// query protocol, every value in text form. A statement that outlives its timeout is
// cancelled with a CancelRequest (protocol 3.0, on a new connection, as libpq does); if
// it still does not finish, the connection is dropped and the next statement reconnects,
// so one hang costs one failure, not the run.

import * as net from 'node:net';
import pg from 'pg';
import type { RawValue } from './results.js';

export type Outcome =
  | { kind: 'rows'; columnCount: number; rows: RawValue[][] }
  | { kind: 'error'; message: string; sqlState: string | undefined; timedOut: boolean };

/** What the runner needs from a server; a fake implements it in tests. */
export interface SqlSession {
  execute(sql: string): Promise<Outcome>;
  close(): Promise<void>;
}

/** The server cannot be reached any more; the rest of the file cannot run. */
export class ConnectionLostError extends Error {}

const booleanTypeOid = 16;
const cancelRequestCode = 80877102;
const cancelGraceMs = 2000;
const connectAttemptsMax = 3;
const connectRetryDelayMs = 500;

// Every type parses to its text form: formatting follows sqllogictest's rules, not JS's.
const rawTextTypes = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

interface BackendKey {
  processID: number | null;
  secretKey: number | null;
}

export class PgSession implements SqlSession {
  private client: pg.Client | undefined;
  private broken = false;

  constructor(
    private readonly url: string,
    private readonly statementTimeoutMs: number,
  ) {}

  async execute(sql: string): Promise<Outcome> {
    const client = await this.connected();
    const pending = client.query({ text: sql, rowMode: 'array', types: rawTextTypes });
    const settled = pending.then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.statementTimeoutMs)));
    const first = await Promise.race([settled, timeout]);
    clearTimeout(timer);
    if (first === 'timeout') return this.abandon(client, settled);
    if ('error' in first) return this.failure(first.error);
    return toRows(first.result as pg.QueryArrayResult | pg.QueryArrayResult[]);
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) await client.end().catch(() => undefined);
  }

  private async connected(): Promise<pg.Client> {
    if (this.client !== undefined && !this.broken) return this.client;
    await this.close();
    let lastError: unknown;
    for (let attempt = 1; attempt <= connectAttemptsMax; attempt++) {
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: this.statementTimeoutMs, types: rawTextTypes });
      // Without a listener a dropped socket would be an uncaught 'error' and end the run.
      const markBroken = (): void => {
        if (this.client === client) this.broken = true;
      };
      client.on('error', markBroken);
      client.on('end', markBroken);
      try {
        await client.connect();
        this.client = client;
        this.broken = false;
        return client;
      } catch (error) {
        lastError = error;
        await client.end().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, connectRetryDelayMs));
      }
    }
    throw new ConnectionLostError(`cannot connect to ${this.url}: ${(lastError as Error).message}`);
  }

  /** The statement timed out: cancel it; if it still runs, give up the connection. */
  private async abandon(client: pg.Client, settled: Promise<unknown>): Promise<Outcome> {
    const key = client as unknown as BackendKey;
    if (key.processID !== null && key.secretKey !== null) {
      await sendCancelRequest(client, key.processID, key.secretKey).catch(() => undefined);
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'grace over'>((resolve) => (timer = setTimeout(() => resolve('grace over'), cancelGraceMs)));
    const after = await Promise.race([settled, grace]);
    clearTimeout(timer);
    if (after === 'grace over') {
      this.broken = true;
      this.client = undefined;
      (client as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    }
    return { kind: 'error', message: `timed out after ${this.statementTimeoutMs} ms`, sqlState: undefined, timedOut: true };
  }

  private failure(error: unknown): Outcome {
    const { code: sqlState, severity } = error as { code?: unknown; severity?: unknown };
    const isServerError = typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState);
    // Anything but an ErrorResponse (socket closed, protocol error) leaves the session
    // unusable, and so does a FATAL one: the server closes the connection after sending it.
    if (!isServerError || severity === 'FATAL' || severity === 'PANIC') this.broken = true;
    return { kind: 'error', message: (error as Error).message, sqlState: isServerError ? sqlState : undefined, timedOut: false };
  }
}

function toRows(result: pg.QueryArrayResult | pg.QueryArrayResult[]): Outcome {
  // Several statements in one record: the last result is the record's.
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  if (last === undefined || last.fields === undefined) return { kind: 'rows', columnCount: 0, rows: [] };
  const booleanColumns = last.fields.map((field) => field.dataTypeID === booleanTypeOid);
  const rows = (last.rows as RawValue[][]).map((row) =>
    // sqllogictest's reference engines print booleans as 1 and 0 (SQLite has no boolean; psqlODBC sends "1"/"0").
    booleanColumns.some(Boolean) ? row.map((value, column) => (booleanColumns[column] === true && value !== null ? (value === 't' ? '1' : '0') : value)) : row,
  );
  return { kind: 'rows', columnCount: last.fields.length, rows };
}

/** CancelRequest: Int32 16, Int32 80877102, Int32 pid, Int32 secret key, on its own connection. */
function sendCancelRequest(client: pg.Client, processId: number, secretKey: number): Promise<void> {
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(cancelRequestCode, 4);
  message.writeInt32BE(processId, 8);
  message.writeInt32BE(secretKey, 12);
  const host = client.host;
  const port = client.port;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.end(message));
    socket.setTimeout(cancelGraceMs, () => socket.destroy());
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
}
