// A database instance process: a writer or a reader over the shared volume, serving SQL on
// the PostgreSQL wire protocol. `boreal instance …` runs one; `boreal up` starts them.

import { PgServer } from '../pgwire/index.js';
import { SERVER_VERSION } from '../sql/functions.js';
import { loadSqlParser, SqlSession } from '../sql/session.js';
import type { Database } from '../engine/database.js';
import { openReader, openWriter, type NodeAddresses } from './volume-instance.js';

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
  }
  const server = new PgServer({
    auth: 'scram-sha-256',
    users: new Map([[options.masterUser, options.masterPassword]]),
    serverVersion: SERVER_VERSION,
    maxConnections: options.maxConnections,
    newSession: (user, database, processId) => new SqlSession({ db, user, database, processId, reader: options.role === 'reader' }),
  });
  const port = await server.listen(options.port, options.host);
  return {
    port,
    replicationPort,
    db,
    stop: async () => {
      await server.close();
      await closeVolume();
    },
  };
}
