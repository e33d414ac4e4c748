// The proxy: the cluster (writer) endpoint and the reader endpoint, each a TCP listener that
// forwards a client's PostgreSQL connection, bytes unchanged, to one instance chosen from the
// topology the control plane publishes.
//
// Rules (each has a test in proxy.test.ts or cluster.test.ts):
//   X1. A connection to the cluster endpoint reaches the instance that is the writer when it
//       is routed; the reader endpoint spreads connections over the readers (round robin)
//       and falls back to the writer when there is none; a custom endpoint spreads them over
//       its available members only (and waits, X2, while it has none). Each other cluster
//       on the fleet (create-db-cluster) has a cluster and a reader endpoint of its own that
//       follow the same rules over its own instances.
//   X2. While there is no instance to route to (a failover in progress) or the chosen one
//       refuses the connection, the client waits, up to waitMs, for the next topology; it
//       gets an ErrorResponse (57P03) only when that runs out. A connection attempt is never
//       refused merely because it arrived during a switch. An instance that closes the
//       connection before answering a byte (a process being killed still completes
//       handshakes on its listening socket for a few milliseconds) counts as refusing: the
//       client, which has seen nothing yet, is routed again.
//   X3. When the writer changes, connections routed to the old writer are closed: a client
//       sees its connection drop at most once per failover, and its reconnection lands on
//       the new writer at the same address.
//   X4. A CancelRequest is forwarded to the instance that issued its key (the proxy notes the
//       BackendKeyData of each connection it routes), so cancel works through the proxy.
//   X5. One stalled or broken client never holds up another: each connection has its own
//       pair of sockets and back-pressure (pipe).
//
// Per connection:  reading-first-packet --cancel--> forward key, close
//                  reading-first-packet --other--> routing --connected--> piping --either end--> closed
//                  routing --no target / refused--> waiting --topology--> routing
//                  waiting --waitMs--> closed (57P03)

import * as net from 'node:net';
import { listenOn } from '../net/listen.js';

export interface Address {
  host: string;
  port: number;
}

export interface RouteTarget {
  /** The instance identifier (DBInstanceIdentifier). */
  id: string;
  address: Address;
}

export interface CustomEndpoint {
  /** DBClusterEndpointIdentifier. */
  id: string;
  port: number;
  /** The available instances it spreads connections over (round robin). */
  targets: RouteTarget[];
}

/** Another cluster on the same fleet (create-db-cluster): its own cluster and reader endpoints. */
export interface ClusterEndpoints {
  id: string;
  port: number;
  readerPort: number;
  writer: RouteTarget | undefined;
  readers: RouteTarget[];
}

export interface Topology {
  /** Increases with every change the control plane makes. */
  version: number;
  /** The first cluster's writer and readers: the proxy's own --port and --reader-port. */
  writer: RouteTarget | undefined;
  readers: RouteTarget[];
  /** Custom endpoints (create-db-cluster-endpoint): the proxy listens on each one's port. */
  custom?: CustomEndpoint[];
  /** Other clusters: the proxy listens on each one's two ports. */
  clusters?: ClusterEndpoints[];
}

/**
 * 'writer' and 'reader' (the first cluster's endpoints), `cluster:<id>` and
 * `cluster-reader:<id>` (another cluster's), or `custom:<id>` for a custom endpoint.
 */
export type EndpointKind = 'writer' | 'reader' | `cluster:${string}` | `cluster-reader:${string}` | `custom:${string}`;

export interface ProxyOptions {
  /** How long a connection attempt waits for an instance to route to (X2). */
  waitMs: number;
  /** Where custom endpoints listen (the host of the proxy's other endpoints). */
  customHost?: string;
}

const CANCEL_REQUEST_CODE = 80877102;
const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;

interface Routed {
  client: net.Socket;
  server: net.Socket;
  kind: EndpointKind;
  target: RouteTarget;
  keys: string[];
}

export class Proxy {
  private topology: Topology = { version: 0, writer: undefined, readers: [] };
  private readonly servers: net.Server[] = [];
  /** Listeners that follow the topology: custom endpoints and other clusters' endpoints. */
  private readonly extraServers = new Map<EndpointKind, { port: number; server: net.Server }>();
  private readonly routed = new Set<Routed>();
  private readonly waiting = new Set<() => void>();
  private readonly cancelKeys = new Map<string, Address>();
  private nextReader = 0;
  private closed = false;
  readonly stats = { connections: 0, waited: 0, refusedNoTarget: 0, droppedOnSwitch: 0, cancelsForwarded: 0, rerouted: 0 };

  constructor(private readonly options: ProxyOptions) {}

  get currentTopology(): Topology {
    return this.topology;
  }

  get connectionCount(): number {
    return this.routed.size;
  }

  async listen(kind: EndpointKind, port: number, host = '127.0.0.1'): Promise<number> {
    const server = net.createServer((client) => this.accept(kind, client));
    this.servers.push(server);
    return listenOn(server, port, host);
  }

  /** A new topology from the control plane: drops what it retired (X3), wakes waiters (X2). */
  setTopology(next: Topology): void {
    if (next.version < this.topology.version) return;
    this.topology = next;
    this.syncExtraListeners();
    for (const connection of [...this.routed]) {
      const custom = this.customTargets(connection.kind);
      const stillThere = custom !== undefined
        ? custom.some((target) => sameTarget(target, connection.target))
        : this.readersOf(connection.kind).some((reader) => sameTarget(reader, connection.target)) || sameTarget(this.writerOf(connection.kind), connection.target);
      if (!stillThere) {
        this.stats.droppedOnSwitch++;
        this.drop(connection);
      }
    }
    for (const wake of [...this.waiting]) wake();
  }

  /** The targets of a custom endpoint's kind; undefined for the cluster and reader endpoints. */
  private customTargets(kind: EndpointKind): RouteTarget[] | undefined {
    if (!kind.startsWith('custom:')) return undefined;
    return this.topology.custom?.find((endpoint) => `custom:${endpoint.id}` === kind)?.targets ?? [];
  }

  /** The writer an endpoint reaches (a reader endpoint's fallback): its cluster's. */
  private writerOf(kind: EndpointKind): RouteTarget | undefined {
    if (kind === 'writer' || kind === 'reader') return this.topology.writer;
    return this.otherCluster(kind)?.writer;
  }

  /** The readers a reader endpoint spreads over; none for the others. */
  private readersOf(kind: EndpointKind): RouteTarget[] {
    if (kind === 'reader') return this.topology.readers;
    if (kind.startsWith('cluster-reader:')) return this.otherCluster(kind)?.readers ?? [];
    return [];
  }

  private otherCluster(kind: EndpointKind): ClusterEndpoints | undefined {
    if (!kind.startsWith('cluster:') && !kind.startsWith('cluster-reader:')) return undefined;
    const id = kind.slice(kind.indexOf(':') + 1);
    return this.topology.clusters?.find((cluster) => cluster.id === id);
  }

  /** Listens on each custom endpoint's and other cluster's ports; stops for the ones that are gone. */
  private syncExtraListeners(): void {
    if (this.closed) return;
    const wanted = new Map<EndpointKind, number>();
    for (const endpoint of this.topology.custom ?? []) wanted.set(`custom:${endpoint.id}`, endpoint.port);
    for (const cluster of this.topology.clusters ?? []) {
      wanted.set(`cluster:${cluster.id}`, cluster.port);
      wanted.set(`cluster-reader:${cluster.id}`, cluster.readerPort);
    }
    for (const [kind, entry] of [...this.extraServers]) {
      if (wanted.get(kind) === entry.port) continue;
      this.extraServers.delete(kind);
      entry.server.close();
      for (const connection of [...this.routed]) if (connection.kind === kind) this.drop(connection);
    }
    for (const [kind, port] of wanted) {
      if (this.extraServers.has(kind)) continue;
      const server = net.createServer((client) => this.accept(kind, client));
      server.on('error', (error) => console.error(`endpoint ${kind} on port ${port}: ${error.message}`));
      this.extraServers.set(kind, { port, server });
      server.listen(port, this.options.customHost ?? '127.0.0.1');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { server } of this.extraServers.values()) this.servers.push(server);
    this.extraServers.clear();
    for (const connection of [...this.routed]) this.drop(connection);
    for (const wake of [...this.waiting]) wake();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private drop(connection: Routed): void {
    this.routed.delete(connection);
    for (const key of connection.keys) this.cancelKeys.delete(key);
    connection.client.destroy();
    connection.server.destroy();
  }

  private choose(kind: EndpointKind, avoid: Set<string>): RouteTarget | undefined {
    const custom = this.customTargets(kind);
    if (custom !== undefined) {
      const candidates = custom.filter((target) => !avoid.has(target.id));
      return candidates.length > 0 ? candidates[this.nextReader++ % candidates.length] : undefined;
    }
    const candidates = this.readersOf(kind).filter((reader) => !avoid.has(reader.id));
    if (candidates.length > 0) return candidates[this.nextReader++ % candidates.length];
    const writer = this.writerOf(kind);
    return writer !== undefined && !avoid.has(writer.id) ? writer : undefined;
  }

  private accept(kind: EndpointKind, client: net.Socket): void {
    client.setNoDelay(true);
    this.stats.connections++;
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 8) return;
      const length = buffered.readUInt32BE(0);
      const code = buffered.readUInt32BE(4);
      if (code === CANCEL_REQUEST_CODE) {
        if (buffered.length < 16) return;
        client.off('data', onData);
        this.forwardCancel(buffered.subarray(0, 16));
        client.destroy();
        return;
      }
      if (length < 8 || length > 10_000) {
        client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      this.route(kind, client, buffered, Date.now() + this.options.waitMs, new Set());
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  }

  private forwardCancel(packet: Buffer): void {
    const key = `${packet.readInt32BE(8)}:${packet.readInt32BE(12)}`;
    const address = this.cancelKeys.get(key);
    if (address === undefined) return;
    this.stats.cancelsForwarded++;
    const socket = net.connect(address.port, address.host, () => socket.end(packet));
    socket.on('error', () => socket.destroy());
  }

  /** Routes, or waits for a topology in which there is somewhere to route (X2). */
  private route(kind: EndpointKind, client: net.Socket, first: Buffer, deadline: number, refused: Set<string>): void {
    if (this.closed || client.destroyed) return void client.destroy();
    const target = this.choose(kind, refused);
    if (target === undefined) return this.wait(kind, client, first, deadline);
    const server = net.connect(target.address.port, target.address.host);
    server.setNoDelay(true);
    const failed = (): void => {
      server.destroy();
      refused.add(target.id);
      // Another instance of the endpoint, if there is one; else wait (X2).
      this.route(kind, client, first, deadline, refused);
    };
    server.once('error', failed);
    server.once('connect', () => {
      server.off('error', failed);
      const connection: Routed = { client, server, kind, target, keys: [] };
      this.routed.add(connection);
      const scanner = new KeyScanner(first, (processId, secretKey) => {
        const key = `${processId}:${secretKey}`;
        connection.keys.push(key);
        this.cancelKeys.set(key, target.address);
      });
      // Until the instance answers and while the client has sent nothing after its first
      // packet, the instance may still turn out to refuse (X2).
      let answered = false;
      let clientSpoke = false;
      server.on('data', (chunk: Buffer) => {
        answered = true;
        scanner.serverBytes(chunk);
      });
      const fromClient = (chunk: Buffer): void => {
        clientSpoke = true;
        scanner.clientBytes(chunk);
      };
      client.on('data', fromClient);
      server.write(first);
      client.pipe(server);
      // The server's end reaches the client only once it has answered (see end below).
      server.pipe(client, { end: false });
      server.once('end', () => (answered ? client.end() : end()));
      const end = (): void => {
        if (!this.routed.has(connection)) return;
        if (answered || clientSpoke || client.destroyed || this.closed) return this.drop(connection);
        this.routed.delete(connection);
        client.unpipe(server);
        client.off('data', fromClient);
        client.off('close', end);
        client.off('error', end);
        client.pause();
        server.destroy();
        refused.add(target.id);
        this.stats.rerouted++;
        this.route(kind, client, first, deadline, refused);
      };
      client.on('close', end);
      server.on('close', end);
      client.on('error', end);
      server.on('error', end);
      client.resume();
    });
  }

  private wait(kind: EndpointKind, client: net.Socket, first: Buffer, deadline: number): void {
    this.stats.waited++;
    const remaining = deadline - Date.now();
    if (remaining <= 0 || this.closed) {
      this.stats.refusedNoTarget++;
      const message = kind === 'writer' || kind.startsWith('cluster:')
        ? 'no writer instance is available (a failover may be in progress)'
        : kind === 'reader' || kind.startsWith('cluster-reader:')
          ? 'no instance is available for the reader endpoint'
          : `no instance of custom endpoint ${kind.slice(7)} is available`;
      client.end(fatalError('57P03', message));
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const wake = (): void => {
      this.waiting.delete(wake);
      clearTimeout(timer);
      client.off('close', wake);
      // A new topology, or time passing, is a new chance for every instance, including one
      // that refused (it may have been restarting).
      this.route(kind, client, first, deadline, new Set());
    };
    this.waiting.add(wake);
    // Without news, retry every 250 ms: a refused instance may just have been restarting.
    timer = setTimeout(wake, Math.min(remaining, 250));
    client.once('close', wake);
  }
}

function sameTarget(a: RouteTarget | undefined, b: RouteTarget): boolean {
  return a !== undefined && a.id === b.id && a.address.port === b.address.port && a.address.host === b.address.host;
}

/** A FATAL ErrorResponse as PostgreSQL sends it before a connection is established. */
export function fatalError(code: string, message: string): Buffer {
  const fields = Buffer.concat([field('S', 'FATAL'), field('V', 'FATAL'), field('C', code), field('M', message), Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0, 'latin1');
  header.writeUInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

function field(type: string, value: string): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), Buffer.from(value, 'utf8'), Buffer.from([0])]);
}

/**
 * Watches a connection's start-up for the BackendKeyData the server sends (X4). The client's
 * SSLRequest/GSSENCRequest packets are answered by a single byte ('N') that is not a
 * message; everything after is messages, scanned up to the first ReadyForQuery or error.
 */
class KeyScanner {
  private singleBytes = 0;
  private clientBuffer: Buffer;
  private clientDone = false;
  private serverBuffer: Buffer = Buffer.alloc(0);
  private serverDone = false;

  constructor(first: Buffer, private readonly onKey: (processId: number, secretKey: number) => void) {
    this.clientBuffer = first;
    this.scanClient();
  }

  clientBytes(chunk: Buffer): void {
    if (this.clientDone) return;
    this.clientBuffer = Buffer.concat([this.clientBuffer, chunk]);
    this.scanClient();
  }

  private scanClient(): void {
    while (!this.clientDone && this.clientBuffer.length >= 8) {
      const length = this.clientBuffer.readUInt32BE(0);
      const code = this.clientBuffer.readUInt32BE(4);
      if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
        this.singleBytes++;
        this.clientBuffer = this.clientBuffer.subarray(8);
        continue;
      }
      // The startup packet: nothing the client sends later changes how the server starts.
      void length;
      this.clientDone = true;
      this.clientBuffer = Buffer.alloc(0);
    }
  }

  serverBytes(chunk: Buffer): void {
    if (this.serverDone) return;
    this.serverBuffer = this.serverBuffer.length === 0 ? chunk : Buffer.concat([this.serverBuffer, chunk]);
    for (;;) {
      if (this.singleBytes > 0) {
        if (this.serverBuffer.length < 1) return;
        const answer = this.serverBuffer[0];
        this.singleBytes--;
        this.serverBuffer = this.serverBuffer.subarray(1);
        // 'S' or 'G': encrypted from here on; nothing more can be read.
        if (answer !== 0x4e) return this.finish();
        continue;
      }
      if (this.serverBuffer.length < 5) return;
      const type = this.serverBuffer[0];
      const length = this.serverBuffer.readUInt32BE(1);
      if (this.serverBuffer.length < 1 + length) return;
      if (type === 0x4b && length === 12) this.onKey(this.serverBuffer.readInt32BE(5), this.serverBuffer.readInt32BE(9));
      this.serverBuffer = this.serverBuffer.subarray(1 + length);
      if (type === 0x5a || type === 0x45) return this.finish();
    }
  }

  private finish(): void {
    this.serverDone = true;
    this.clientDone = true;
    this.serverBuffer = Buffer.alloc(0);
    this.clientBuffer = Buffer.alloc(0);
  }
}
