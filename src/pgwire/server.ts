// The TCP side of the wire protocol: accepts connections, gives each a Connection with a
// process id and secret key (for CancelRequest), and enforces max_connections. Each
// socket is adapted to a ConnectionTransport on its own: its drain waits for that socket
// only, and pausing it stops reading that socket only (P5).

import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import { listenOn } from '../net/listen.js';
import { Connection, type AuthMethod, type ConnectionLimits, type ConnectionTransport } from './connection.js';
import type { SessionHandler } from './session.js';

export interface PgServerOptions {
  auth: AuthMethod;
  users: Map<string, string>;
  serverVersion: string;
  maxConnections: number;
  newSession: (user: string, database: string, processId: number) => SessionHandler;
  limits?: ConnectionLimits | undefined;
}

/** Resolves at once (undefined) when the socket has room, else on 'drain' or 'close'. */
function socketDrain(socket: net.Socket): Promise<void> | undefined {
  if (!socket.writableNeedDrain || socket.destroyed) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function socketTransport(socket: net.Socket): ConnectionTransport {
  return {
    write: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    end: () => socket.end(),
    drain: () => socketDrain(socket),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

export class PgServer {
  private readonly server: net.Server;
  private readonly connections = new Map<number, { connection: Connection; secretKey: number; socket: net.Socket }>();
  private nextProcessId = 1000;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: PgServerOptions) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return listenOn(this.server, port, host);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const processId = this.nextProcessId++;
    const secretKey = randomInt(0, 0x7fffffff);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    // Over the limit, the connection still answers an SSL request and reads the startup
    // packet, then refuses with 53300, as PostgreSQL does (clients report that message).
    const refuse = this.connections.size >= this.options.maxConnections;
    const connection = new Connection(
      {
        auth: this.options.auth,
        users: this.options.users,
        serverVersion: this.options.serverVersion,
        newSession: this.options.newSession,
        onCancel: (targetId, targetKey) => {
          const target = this.connections.get(targetId);
          if (target !== undefined && target.secretKey === targetKey) target.connection.cancel();
        },
        processId,
        secretKey,
        refuse,
        limits: this.options.limits,
      },
      socketTransport(socket),
    );
    if (!refuse) this.connections.set(processId, { connection, secretKey, socket });
    socket.on('data', (chunk) => connection.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.connections.delete(processId);
      void connection.closed();
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
