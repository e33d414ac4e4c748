// A database instance process: a writer or a reader over the shared volume, serving SQL on
// the PostgreSQL wire protocol. `boreal instance …` runs one; `boreal up` starts them.

import { PgServer } from '../pgwire/index.js';
import { SERVER_VERSION } from '../sql/functions.js';
import { loadSqlParser, SqlSession } from '../sql/session.js';
import { Settings } from '../sql/settings.js';
import * as http from 'node:http';
import type { Database } from '../engine/database.js';
import { listenOn } from '../net/listen.js';
import { openReader, openWriter, type NodeAddresses, type ReplicaLag } from './volume-instance.js';

export interface InstanceProcessOptions {
  role: 'writer' | 'reader';
  metadataPath: string;
  nodes: NodeAddresses;
  host: string;
  port: number;
  replicationPort: number;
  /** For a reader: the writer's replication address. */
  writer?: { host: string; port: number };
  cacheBytes: number;
  masterUser: string;
  masterPassword: string;
  maxConnections: number;
  /** A port for `GET /status` (role, replica lag) that the control plane polls; 0 = none. */
  statusPort?: number;
  /** Defaults of settings for every session (the cluster's parameter group). */
  parameters?: Record<string, string>;
}

export interface InstanceStatusReport {
  role: 'writer' | 'reader';
  pid: number;
  connections: number;
  replicaLag: ReplicaLag | null;
}

export interface RunningInstance {
  port: number;
  replicationPort: number | undefined;
  db: Database;
  stop: () => Promise<void>;
}

export async function runInstance(options: InstanceProcessOptions): Promise<RunningInstance> {
  await loadSqlParser();
  let db: Database;
  let replicationPort: number | undefined;
  let closeVolume: () => Promise<void>;
  let replicaLag: () => ReplicaLag | null = () => null;
  if (options.role === 'writer') {
    const writer = await openWriter({ metadataPath: options.metadataPath, nodes: options.nodes, cacheBytes: options.cacheBytes, replicationPort: options.replicationPort, readerUnsentBytesMax: 64 * 1024 * 1024 });
    db = writer.db;
    replicationPort = writer.replicationPort;
    closeVolume = writer.close;
  } else {
    if (options.writer === undefined) throw new Error('a reader needs the writer\'s replication address (--writer host:port)');
    const reader = await openReader({ metadataPath: options.metadataPath, nodes: options.nodes, cacheBytes: options.cacheBytes, writerHost: options.writer.host, writerPort: options.writer.port });
    db = reader.db;
    closeVolume = reader.close;
    replicaLag = reader.replicaLag;
  }
  // A reader shows itself read-only, as a PostgreSQL standby does (writes fail with 25006 either way).
  const settings: Record<string, string> = {
    ...options.parameters,
    max_connections: String(options.maxConnections),
    ...(options.role === 'reader' ? { transaction_read_only: 'on', default_transaction_read_only: 'on' } : {}),
  };
  try {
    new Settings(settings);
  } catch (error) {
    throw new Error(`a parameter's value is not valid: ${(error as Error).message}`);
  }
  const server = new PgServer({
    auth: 'scram-sha-256',
    users: new Map([[options.masterUser, options.masterPassword]]),
    serverVersion: SERVER_VERSION,
    maxConnections: options.maxConnections,
    newSession: (user, database, processId) => new SqlSession({ db, user, database, processId, reader: options.role === 'reader', settings }),
  });
  const port = await server.listen(options.port, options.host);
  let statusServer: http.Server | undefined;
  if (options.statusPort !== undefined && options.statusPort > 0) {
    statusServer = http.createServer((request, response) => {
      const report: InstanceStatusReport = { role: options.role, pid: process.pid, connections: server.connectionCount, replicaLag: replicaLag() };
      response.writeHead(request.url === '/status' ? 200 : 404, { 'content-type': 'application/json' });
      response.end(JSON.stringify(request.url === '/status' ? report : { message: 'GET /status' }));
    });
    await listenOn(statusServer, options.statusPort, options.host);
  }
  return {
    port,
    replicationPort,
    db,
    stop: async () => {
      statusServer?.close();
      await server.close();
      await closeVolume();
    },
  };
}
