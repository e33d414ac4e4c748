// The connection's inbound queue: decoded frontend messages waiting, in arrival order, for
// the pump or a running COPY to take them (connection.ts, P4). It counts the bytes it holds
// so the connection can stop reading the socket when too much is waiting (P5).

import { assert } from '../common/index.js';
import type { FrontendMessage } from './codec.js';

/** A decoded message, or the decoder's verdict that the stream is malformed (kept in order). */
export type Inbound = FrontendMessage | { kind: 'violation'; message: string };

/** The message type byte, for "unexpected message type 0x.." errors. */
export const messageTypeByte: Record<Inbound['kind'], number> = {
  startup: 0,
  sslRequest: 0,
  gssencRequest: 0,
  cancelRequest: 0,
  violation: 0,
  password: 0x70,
  query: 0x51,
  parse: 0x50,
  bind: 0x42,
  describe: 0x44,
  execute: 0x45,
  close: 0x43,
  sync: 0x53,
  flush: 0x48,
  terminate: 0x58,
  copyData: 0x64,
  copyDone: 0x63,
  copyFail: 0x66,
  functionCall: 0x46,
};

/** About how many bytes a waiting message holds (its variable parts plus the frame). */
function inboundBytes(message: Inbound): number {
  switch (message.kind) {
    case 'copyData':
    case 'password':
      return 5 + message.data.length;
    case 'query':
      return 5 + message.sql.length;
    case 'parse':
      return 5 + message.name.length + message.sql.length + 4 * message.parameterTypes.length;
    case 'bind':
      return message.parameters.reduce((total, parameter) => total + 4 + (parameter?.length ?? 0), 5 + message.portal.length + message.statement.length);
    default:
      return 5;
  }
}

/** A FIFO of inbound messages that keeps count of the bytes it holds. */
export class InboundQueue {
  private items: Array<{ message: Inbound; bytes: number }> = [];
  private head = 0;
  bytes = 0;

  push(message: Inbound): void {
    const bytes = inboundBytes(message);
    this.items.push({ message, bytes });
    this.bytes += bytes;
  }

  peek(): Inbound | undefined {
    return this.items[this.head]?.message;
  }

  shift(): Inbound | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.head += 1;
    this.bytes -= item.bytes;
    // Compact now and then so a long COPY does not keep every handled chunk referenced.
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    assert(this.bytes >= 0, 'inbound byte count went negative');
    return item.message;
  }
}
