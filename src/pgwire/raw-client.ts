// Test-only: a client that speaks the protocol byte by byte, for what real clients cannot
// be made to send (row limits, pipelined COPY data, a message in the middle of a COPY), and
// a reader that splits backend bytes into messages. Built by hand from the protocol
// documentation, independently of codec.ts, so the tests check the codec too.

import * as net from 'node:net';

function frame(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}
const cstring = (text: string): Buffer => Buffer.from(`${text}\0`, 'utf8');
const int16 = (value: number): Buffer => {
  const bytes = Buffer.alloc(2);
  bytes.writeInt16BE(value);
  return bytes;
};
const int32 = (value: number): Buffer => {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32BE(value);
  return bytes;
};

/** Frontend messages, as bytes. */
export const frontend = {
  startup(user = 'postgres', database = 'postgres'): Buffer {
    const body = Buffer.concat([int32(196608), cstring('user'), cstring(user), cstring('database'), cstring(database), Buffer.of(0)]);
    return Buffer.concat([int32(4 + body.length), body]);
  },
  query: (sql: string): Buffer => frame('Q', cstring(sql)),
  parse: (name: string, sql: string, paramTypes: number[] = []): Buffer => frame('P', cstring(name), cstring(sql), int16(paramTypes.length), ...paramTypes.map(int32)),
  bind(portal: string, statement: string, params: Array<Buffer | null> = [], paramFormats: number[] = [], resultFormats: number[] = []): Buffer {
    const values = params.map((value) => (value === null ? int32(-1) : Buffer.concat([int32(value.length), value])));
    return frame('B', cstring(portal), cstring(statement), int16(paramFormats.length), ...paramFormats.map(int16), int16(params.length), ...values, int16(resultFormats.length), ...resultFormats.map(int16));
  },
  describe: (target: 'S' | 'P', name: string): Buffer => frame('D', Buffer.from(target), cstring(name)),
  execute: (portal: string, maxRows = 0): Buffer => frame('E', cstring(portal), int32(maxRows)),
  close: (target: 'S' | 'P', name: string): Buffer => frame('C', Buffer.from(target), cstring(name)),
  sync: (): Buffer => frame('S'),
  flush: (): Buffer => frame('H'),
  terminate: (): Buffer => frame('X'),
  copyData: (data: string | Buffer): Buffer => frame('d', typeof data === 'string' ? Buffer.from(data) : data),
  copyDone: (): Buffer => frame('c'),
  copyFail: (message: string): Buffer => frame('f', cstring(message)),
};

export interface BackendFrame {
  type: string;
  body: Buffer;
}

/** Splits a backend byte stream into messages (after the startup exchange, all are framed). */
export class BackendReader {
  private buffered = Buffer.alloc(0);
  readonly messages: BackendFrame[] = [];

  push(chunk: Uint8Array): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 5) {
      const length = this.buffered.readInt32BE(1);
      if (this.buffered.length < 1 + length) break;
      this.messages.push({ type: String.fromCharCode(this.buffered[0]!), body: this.buffered.subarray(5, 1 + length) });
      this.buffered = this.buffered.subarray(1 + length);
    }
  }

  /** The message types from index `from` on, as one string ("12DDsZ"). */
  types(from = 0): string {
    return this.messages
      .slice(from)
      .map((message) => message.type)
      .join('');
  }
}

/** The fields of an ErrorResponse or NoticeResponse body, by their one-letter codes. */
export function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    fields.set(String.fromCharCode(body[at]!), body.subarray(at + 1, end).toString('utf8'));
    at = end + 1;
  }
  return fields;
}

/** A raw protocol client over TCP. */
export class RawClient {
  readonly reader = new BackendReader();
  private waiters: Array<() => void> = [];
  private ended = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.reader.push(chunk);
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  /** Connects, starts up (trust authentication) and waits for the first ReadyForQuery. */
  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    socket.write(frontend.startup());
    await client.waitFor((types) => types.includes('Z'));
    return client;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  send(...messages: Buffer[]): void {
    this.socket.write(Buffer.concat(messages));
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Waits until the types received from index `from` satisfy `done`; fails after timeoutMs. */
  async waitFor(done: (types: string) => boolean, from = 0, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const types = this.reader.types(from);
      if (done(types)) return types;
      if (this.ended) throw new Error(`connection closed; received ${types}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received ${types}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends the messages and waits for `readyForQueries` more ReadyForQuery; returns the types that arrived. */
  async exchange(messages: Buffer[], readyForQueries = 1): Promise<{ types: string; frames: BackendFrame[] }> {
    const from = this.reader.messages.length;
    this.send(...messages);
    const types = await this.waitFor((seen) => (seen.match(/Z/g) ?? []).length >= readyForQueries, from);
    return { types, frames: this.reader.messages.slice(from) };
  }

  destroy(): void {
    this.socket.destroy();
  }
}
