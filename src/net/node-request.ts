// One request to one storage node over the storage protocol, and its reply (used by
// `boreal status` and by the control plane to drop a deleted cluster's volume).

import * as net from 'node:net';
import { defaultStorageLimits } from '../common/index.js';
import { decodeMessage, encodeMessage, FrameSplitter, type DropVolumeAck, type Message, type StatusReply } from './messages.js';

/** Sends `build(from)` and resolves with the first reply of `replyKind` (undefined: none in time). */
export function requestNode<K extends Message['kind']>(host: string, port: number, build: (from: string) => Message, replyKind: K, timeoutMs: number): Promise<Extract<Message, { kind: K }> | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const splitter = new FrameSplitter(defaultStorageLimits.frameBytesMax);
    const finish = (reply: Extract<Message, { kind: K }> | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const from = `client:request-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    socket.on('connect', () => {
      socket.write(encodeMessage({ kind: 'hello', from }));
      socket.write(encodeMessage(build(from)));
    });
    socket.on('data', (chunk: Buffer) => {
      const { frames } = splitter.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      for (const frame of frames) {
        const decoded = decodeMessage(frame);
        if (decoded.ok && decoded.message.kind === replyKind) return finish(decoded.message as Extract<Message, { kind: K }>);
      }
    });
    socket.on('error', () => finish(undefined));
  });
}

export function queryNodeStatus(host: string, port: number, timeoutMs: number): Promise<StatusReply | undefined> {
  return requestNode(host, port, (from) => ({ kind: 'status-request', from, requestId: 1 }), 'status-reply', timeoutMs);
}

/** Drops a volume's segments on one node ('' names the fleet's first, unnamed volume). */
export function dropVolumeOnNode(host: string, port: number, volume: string, timeoutMs: number): Promise<DropVolumeAck | undefined> {
  return requestNode(host, port, (from) => ({ kind: 'drop-volume', from, requestId: 1, volume }), 'drop-volume-ack', timeoutMs);
}
