// Real network adapter: frames over TCP. Every connection opens with a Hello naming the
// sender; replies to a client go back on the connection it came from, messages to a
// storage node go over an outgoing connection from the address book.
//
// Faults handled here: a frame with a bad checksum is dropped (the stream stays in step);
// a frame over the size limit or one that does not parse closes that connection only;
// a peer that is down is redialled with backoff, and what was queued for it beyond the
// queue limit is dropped (the storage protocol retries everything it needs).

import * as net from 'node:net';
import { decodeMessage, encodeMessage, FrameSplitter, type Address, type Message } from './messages.js';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface TransportOptions {
  self: Address;
  listen?: PeerAddress;
  addressBook: Map<Address, PeerAddress>;
  frameBytesMax: number;
  connectionsMax: number;
  /** Bytes buffered for one connection before further messages to it are dropped. */
  sendQueueBytesMax: number;
  onMessage: (message: Message) => void;
  log: (event: string, fields: Record<string, unknown>) => void;
}

interface Connection {
  socket: net.Socket;
  open: boolean;
}

export class TcpTransport {
  private server: net.Server | undefined;
  private readonly outgoing = new Map<Address, Connection>();
  private readonly incoming = new Map<Address, net.Socket>();
  private readonly sockets = new Set<net.Socket>();
  private closed = false;
  dropped = 0;

  constructor(private readonly options: TransportOptions) {}

  listen(): Promise<void> {
    const listen = this.options.listen;
    if (listen === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.accept(socket));
      server.maxConnections = this.options.connectionsMax;
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'EADDRINUSE' ? new Error(`port ${listen.port} on ${listen.host} is already in use`) : error);
      });
      server.listen(listen.port, listen.host, () => {
        this.server = server;
        resolve();
      });
    });
  }

  get port(): number | undefined {
    const address = this.server?.address();
    return typeof address === 'object' && address !== null ? address.port : undefined;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    let from: Address | undefined;
    this.readFrames(socket, (message) => {
      if (message.kind === 'hello') {
        from = message.from;
        this.incoming.set(from, socket);
        return;
      }
      this.options.onMessage(message);
    });
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (from !== undefined && this.incoming.get(from) === socket) this.incoming.delete(from);
    });
  }

  private readFrames(socket: net.Socket, deliver: (message: Message) => void): void {
    const splitter = new FrameSplitter(this.options.frameBytesMax);
    socket.on('data', (chunk: Buffer) => {
      const { frames, error } = splitter.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      for (const frame of frames) {
        const decoded = decodeMessage(frame);
        if (decoded.ok) deliver(decoded.message);
        else if (decoded.error === 'checksum_mismatch') this.options.log('frame_checksum_mismatch', { detail: decoded.detail });
        else {
          this.options.log('frame_rejected', { error: decoded.error, detail: decoded.detail });
          socket.destroy();
          return;
        }
      }
      if (error !== undefined) {
        this.options.log('frame_rejected', { error, remote: socket.remotePort });
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
  }

  send(to: Address, message: Message): void {
    if (this.closed) return;
    const frame = encodeMessage(message);
    const socket = this.incoming.get(to) ?? this.connectionTo(to);
    if (socket === undefined) {
      this.dropped++;
      return;
    }
    if (socket.writableLength > this.options.sendQueueBytesMax) {
      this.dropped++;
      return;
    }
    this.cork(socket);
    socket.write(frame);
  }

  /**
   * Frames sent to one peer in one step (a writer's batches for the segments a node hosts,
   * a node's acknowledgements after one sync) leave in one system call: on a loaded
   * machine every loopback write costs the receiver a wake-up.
   */
  private readonly corked = new Set<net.Socket>();

  private cork(socket: net.Socket): void {
    if (this.corked.has(socket)) return;
    if (this.corked.size === 0) {
      process.nextTick(() => {
        for (const corked of this.corked) corked.uncork();
        this.corked.clear();
      });
    }
    this.corked.add(socket);
    socket.cork();
  }

  private connectionTo(to: Address): net.Socket | undefined {
    const existing = this.outgoing.get(to);
    if (existing !== undefined) return existing.open || existing.socket.connecting ? existing.socket : undefined;
    const address = this.options.addressBook.get(to);
    if (address === undefined) return undefined;
    const socket = net.connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const connection: Connection = { socket, open: false };
    this.outgoing.set(to, connection);
    this.sockets.add(socket);
    socket.write(encodeMessage({ kind: 'hello', from: this.options.self }));
    socket.on('connect', () => (connection.open = true));
    this.readFrames(socket, (message) => this.options.onMessage(message));
    socket.on('close', () => {
      this.sockets.delete(socket);
      // Forget it after a pause so the next send redials (backoff against a dead peer).
      setTimeout(() => {
        if (this.outgoing.get(to) === connection) this.outgoing.delete(to);
      }, 100 + Math.floor(Math.random() * 200)).unref();
      connection.open = false;
    });
    return socket;
  }

  close(): Promise<void> {
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
