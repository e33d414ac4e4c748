// A VolumeClient wired to TCP, timers and a metadata file (the local stand-in for the
// control plane's store until the control plane exists).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultClientLimits, defaultStorageLimits, MathRandom, millisecondsFromEnv, nodeId, StorageError, type ClientLimits, type Lsn, type NodeId, type PageId } from '../common/index.js';
import { fromJson, toJson } from '../common/json.js';
import { nodeAddress, type Address } from '../net/messages.js';
import { TcpTransport, type PeerAddress } from '../net/tcp-transport.js';
import { derivedFromStored, VolumeClient, type VolumeClientOptions, type VolumeMetadata } from './volume-client.js';

export interface VolumeConnectionOptions {
  name: string;
  metadataPath: string;
  nodes: Map<NodeId, PeerAddress>;
  limits?: Partial<ClientLimits>;
  client?: Partial<Omit<VolumeClientOptions, 'address' | 'limits'>>;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** 'follow-vdl' (default): retention trails the VDL; 'manual': the owner sets client.retentionLsn. */
  retention?: 'follow-vdl' | 'manual';
}

export interface VolumeConnection {
  client: VolumeClient;
  open(): Promise<void>;
  commit(lsn: Lsn): Promise<void>;
  readPage(page: PageId, atLsn: Lsn): Promise<Uint8Array>;
  close(): Promise<void>;
}

export function readMetadata(metadataPath: string): VolumeMetadata {
  return fromJson<VolumeMetadata>(fs.readFileSync(metadataPath, 'utf8'));
}

/** Atomic and durable: write a temporary file, fsync it, rename it over, fsync the folder. */
export function writeMetadataSync(metadataPath: string, metadata: VolumeMetadata): void {
  const temporary = `${metadataPath}.tmp`;
  const descriptor = fs.openSync(temporary, 'w');
  fs.writeSync(descriptor, toJson(metadata));
  fs.fsyncSync(descriptor);
  fs.closeSync(descriptor);
  fs.renameSync(temporary, metadataPath);
  const directory = fs.openSync(path.dirname(metadataPath), 'r');
  fs.fsyncSync(directory);
  fs.closeSync(directory);
}

/** Resends (after 200 ms), read timeouts and heartbeats run on this timer; writes and acks do not wait for it. */
const CLIENT_TICK_MS = 20;

export function connectVolume(options: VolumeConnectionOptions): VolumeConnection {
  const address: Address = `client:${options.name}`;
  const log = options.log ?? (() => undefined);
  const addressBook = new Map<Address, PeerAddress>();
  for (const [node, peer] of options.nodes) addressBook.set(nodeAddress(node), peer);
  let client: VolumeClient | undefined;
  let takenEpoch: number | undefined;
  const transport = new TcpTransport({
    self: address,
    addressBook,
    frameBytesMax: defaultStorageLimits.frameBytesMax,
    connectionsMax: 64,
    sendQueueBytesMax: 256 * 1024 * 1024,
    onMessage: (message) => client?.receive(message),
    log,
  });
  client = new VolumeClient(
    {
      nowMs: () => performance.now(),
      random: new MathRandom(),
      send: (to, message) => transport.send(to, message),
      defer: (task) => queueMicrotask(task),
      // After I/O callbacks, not as a microtask: every mini-transaction appended in this turn of
      // the event loop then goes out in one batch per segment.
      deferBatch: (task) => setImmediate(task),
      deferAfter: (delayMs, task) => setTimeout(task, delayMs),
      log,
      persistMetadata: (metadata, done) => {
        try {
          // Compare-and-set on the epoch: a writer that takes a new epoch must find the
          // volume below it, so two writers opening at once never share one, and must have
          // read the volume's last change, so that it never erases it.
          const current = readMetadata(options.metadataPath);
          const taking = takenEpoch === undefined || metadata.epoch > takenEpoch;
          if (metadata.epoch < current.epoch || (taking && metadata.epoch <= current.epoch)) {
            return done(new Error(`epoch ${metadata.epoch} is taken or older than the volume's ${current.epoch}`));
          }
          if (taking && !derivedFromStored(metadata, current)) return done(new Error('the volume metadata changed since it was read'));
          writeMetadataSync(options.metadataPath, metadata);
          takenEpoch = metadata.epoch;
          done();
        } catch (error) {
          done(error as Error);
        }
      },
    },
    readMetadata(options.metadataPath),
    {
      address,
      limits: { ...defaultClientLimits, ...options.limits },
      writeQuorum: 4,
      readQuorum: 3,
      resendAfterMs: 200,
      // Every heartbeat is 24 messages and 24 acks (4 PGs x 6 segments). Resends are checked
      // every resendAfterMs (200 ms), which was the heartbeat's real period already; a 1 s
      // heartbeat saved idle CPU but slowed the SCL reports a recovering writer waits for.
      heartbeatMs: 200,
      holdRedoMs: 100,
      // Group commit: a commit that finds another waiting holds its flush up to 2 ms, and
      // the commits behind it share the batch (docs/storage.md, "Client group commit").
      commitDelayMs: millisecondsFromEnv('BOREAL_COMMIT_DELAY_MS', 2, 1000),
      readTimeoutMs: 1000,
      repairAfterMs: 0,
      ...options.client,
    },
  );
  const timer = setInterval(() => {
    // With no readers yet, nothing pins history below the VDL (PGMRPL = VDL) unless the
    // owner holds it back; storage may then garbage-collect everything older.
    if (options.retention !== 'manual' && client!.state === 'open') client!.retentionLsn = client!.vdl;
    client?.tick();
  }, CLIENT_TICK_MS);
  const connection: VolumeConnection = {
    client,
    open: () => new Promise((resolve, reject) => client!.open((error) => (error ? reject(error) : resolve()))),
    commit: (lsn) => new Promise((resolve, reject) => client!.commit(lsn, (error) => (error ? reject(error) : resolve()))),
    readPage: (page, atLsn) =>
      new Promise((resolve, reject) =>
        client!.readPage(page, atLsn, (error, bytes) => (error || bytes === undefined ? reject(error ?? new StorageError('unavailable', 'no page')) : resolve(bytes))),
      ),
    close: async () => {
      clearInterval(timer);
      await transport.close();
    },
  };
  return connection;
}

/** A storage node as a volume is created on it. */
export interface FleetNode {
  id: number;
  availabilityZone: string;
  host: string;
  port: number;
}

export function addressMap(nodes: ReadonlyArray<{ id: number; host: string; port: number }>): Map<NodeId, PeerAddress> {
  return new Map(nodes.map((node) => [nodeId(node.id), { host: node.host, port: node.port }]));
}

/**
 * First start of a volume: writes its metadata and creates its segments on the nodes
 * (false: the metadata file exists, so the volume does). A named volume's segments carry
 * its name, so that it shares the fleet with others (the first volume has none).
 */
export async function createVolume(metadataPath: string, nodes: readonly FleetNode[], volume?: string): Promise<boolean> {
  if (fs.existsSync(metadataPath)) return false;
  const metadata: VolumeMetadata = {
    ...(volume !== undefined ? { volume } : {}),
    epoch: 0 as VolumeMetadata['epoch'],
    history: [],
    // 131072 pages of 8 KiB = 1 GiB per protection group; 4 groups.
    pagesPerGroup: 131072,
    groups: Array.from({ length: 4 }, () => ({ members: nodes.map((node) => nodeId(node.id)) })),
    nodes: nodes.map((node) => ({ node: nodeId(node.id), availabilityZone: node.availabilityZone })),
  };
  fs.mkdirSync(path.dirname(metadataPath), { recursive: true });
  writeMetadataSync(metadataPath, metadata);
  const connection = connectVolume({ name: `bootstrap-${process.pid}`, metadataPath, nodes: addressMap(nodes) });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      connection.open(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('creating the volume did not finish within 15000 ms')), 15000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await connection.close();
  }
  return true;
}
