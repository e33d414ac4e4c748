// Asks one storage node for its status over the storage protocol (used by `boreal status`).

import * as net from 'node:net';
import { defaultStorageLimits } from '../common/index.js';
import { decodeMessage, encodeMessage, FrameSplitter, type StatusReply } from '../net/messages.js';

export function queryNodeStatus(host: string, port: number, timeoutMs: number): Promise<StatusReply | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const splitter = new FrameSplitter(defaultStorageLimits.frameBytesMax);
    const finish = (reply: StatusReply | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const from = `client:status-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    socket.on('connect', () => {
      socket.write(encodeMessage({ kind: 'hello', from }));
      socket.write(encodeMessage({ kind: 'status-request', from, requestId: 1 }));
    });
    socket.on('data', (chunk: Buffer) => {
      const { frames } = splitter.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      for (const frame of frames) {
        const decoded = decodeMessage(frame);
        if (decoded.ok && decoded.message.kind === 'status-reply') return finish(decoded.message);
      }
    });
    socket.on('error', () => finish(undefined));
  });
}
