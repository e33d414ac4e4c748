// The `boreal storage-node` process: a StorageNode wired to node:fs, lmdb, TCP and timers.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultStorageLimits, MathRandom, nodeId, type NodeId } from '../common/index.js';
import { nodeAddress, type Address } from '../net/messages.js';
import { TcpTransport, type PeerAddress } from '../net/tcp-transport.js';
import { FsLogDisk, LmdbOrderedStore } from './real-disk.js';
import { StorageNode } from './storage-node.js';

export interface StorageNodeProcessOptions {
  id: NodeId;
  availabilityZone: string;
  directory: string;
  host: string;
  port: number;
  peers: Map<NodeId, PeerAddress>;
  groupCommit: boolean;
  /** The scheduling niceness the node runs at (`--nice`); see lowerPriority. 0 leaves it. */
  nice: number;
}

/** The niceness storage nodes run at unless told otherwise (see lowerPriority). */
export const STORAGE_NODE_NICE = 10;

/**
 * Storage nodes run below the instance's CPU priority (nice +10 by default). When they
 * share a host's cores with the writer, as in `boreal up`, a batch of redo wakes all six
 * nodes at once, and at equal priority each woken node preempts the writer in the middle
 * of its event-loop turn, stalling every session's round trip behind the nodes' appends:
 * the branch row's lock under pgbench TPC-B-like is held across two such round trips
 * (docs/benchmarks.md). Lower, the nodes take the cores the writer leaves idle, which is
 * most of them, and still get their share under load. On a host of its own a node has no
 * one to yield to, so the setting costs nothing there.
 *
 * Linux keeps a niceness per thread: every thread of the process is set (those started
 * later inherit it from the main thread). A niceness is only ever raised, which needs no
 * privilege; failures are logged and ignored.
 */
export function lowerPriority(nice: number, log: (event: string, fields: Record<string, unknown>) => void): void {
  if (nice <= 0) return;
  const threads = process.platform === 'linux' && fs.existsSync('/proc/self/task') ? fs.readdirSync('/proc/self/task').map(Number) : [0];
  for (const thread of threads) {
    try {
      if (os.getPriority(thread) < nice) os.setPriority(thread, nice);
    } catch (error) {
      log('nice_failed', { thread, nice, error: (error as Error).message });
    }
  }
}

/** Timer work only (coalescing every 1 s or sooner when the tail fills, gossip every 50 ms, hydration timeouts); writes and acks are message-driven. Each tick wakes the process, which idle costs CPU. */
export const TICK_MS = 25;

export async function runStorageNode(options: StorageNodeProcessOptions): Promise<{ stop: () => Promise<void>; port: number }> {
  fs.mkdirSync(options.directory, { recursive: true });
  const logStream = fs.createWriteStream(path.join(options.directory, 'node.log'), { flags: 'a' });
  const log = (event: string, fields: Record<string, unknown>): void => {
    logStream.write(`${JSON.stringify({ time: new Date().toISOString(), node: options.id, event, ...fields }, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))}\n`);
  };
  lowerPriority(options.nice, log);
  const disk = new FsLogDisk(path.join(options.directory, 'hot-log'));
  const store = new LmdbOrderedStore(options.directory);
  const addressBook = new Map<Address, PeerAddress>();
  for (const [peer, address] of options.peers) addressBook.set(nodeAddress(peer), address);
  let node: StorageNode | undefined;
  const transport = new TcpTransport({
    self: nodeAddress(options.id),
    listen: { host: options.host, port: options.port },
    addressBook,
    frameBytesMax: defaultStorageLimits.frameBytesMax,
    connectionsMax: defaultStorageLimits.connectionsMax,
    sendQueueBytesMax: 64 * 1024 * 1024,
    onMessage: (message) => node?.receive(message),
    log,
  });
  await transport.listen();
  node = new StorageNode(
    { nowMs: () => performance.now(), random: new MathRandom(), send: (to, message) => transport.send(to, message), log },
    disk,
    store,
    {
      node: options.id,
      availabilityZone: options.availabilityZone,
      limits: defaultStorageLimits,
      groupCommit: options.groupCommit,
      gossipIntervalMs: 50,
      // A segment with no known hole pulls 5 times a second instead of 20: 1 s cost each
      // idle node ~0.3% less CPU but left a recovering writer's lagging segments (it has no
      // records to resend them) catching up a second at a time.
      gossipIdleIntervalMs: 200,
      // Each coalescing pass is a page-store commit (two fsyncs); records wait in the durable
      // hot log meanwhile, so passes can be rare: fewer, larger commits.
      coalesceIntervalMs: 1000,
      hydrationTimeoutMs: 2000,
    },
  );
  await new Promise<void>((resolve, reject) => node!.start((error) => (error ? reject(error) : resolve())));
  const timer = setInterval(() => node?.tick(), TICK_MS);
  const stop = async (): Promise<void> => {
    clearInterval(timer);
    await transport.close();
    disk.close();
    await store.close();
    logStream.end();
  };
  return { stop, port: transport.port ?? options.port };
}

/** "1=127.0.0.1:7001,2=127.0.0.1:7002" */
export function parsePeers(text: string): Map<NodeId, PeerAddress> {
  const peers = new Map<NodeId, PeerAddress>();
  for (const item of text.split(',').filter(Boolean)) {
    const match = /^(\d+)=([^:]+):(\d+)$/.exec(item.trim());
    if (match === null) throw new Error(`bad peer "${item}": expected id=host:port`);
    peers.set(nodeId(Number(match[1])), { host: match[2]!, port: Number(match[3]) });
  }
  return peers;
}
