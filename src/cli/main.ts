// The `boreal` command line.
//
//   boreal up [--data-dir D] [--port N] [--master-password P] [--storage-port-base N] [--detach]
//   boreal status [--data-dir D] [--json]
//   boreal down [--data-dir D]
//   boreal storage-node --id N --az A --dir D --port P [--host H] [--peers id=host:port,...] [--no-group-commit] [--nice N]
//
// `up` starts the storage fleet (6 nodes, 2 in each of 3 AZs) and the writer instance (SQL
// on --port, default 5432) as separate processes under one data directory, creates the
// volume on first start, prints the state and the connection URL, and stops every process
// on Ctrl-C or SIGTERM. The same data is there on the next `up`.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeId, type NodeId } from '../common/index.js';
import { parsePeers, runStorageNode, STORAGE_NODE_NICE } from '../storage-node/process.js';
import { createVolume, type FleetNode } from '../volume-client/index.js';
import { queryNodeStatus } from '../net/node-request.js';
import { runInstance } from '../instance/process.js';
import { processAlive } from '../control/index.js';
import { portFree } from '../net/listen.js';
import { ACTION_PARAMETERS, ControlPlane, ProcessLauncher, type Action, type InstanceRecord, type InstanceStatus } from '../control/index.js';
import { Proxy, type Topology } from '../proxy/index.js';

const ZONES = ['az-a', 'az-b', 'az-c'];
const NODES = 6;
const DEFAULT_STORAGE_PORT_BASE = 7101;

export interface ClusterFile {
  dataDir: string;
  storagePortBase?: number;
  supervisorPid: number | undefined;
  ports?: Ports;
  nodes: Array<{ role: 'storage-node'; id: number; availabilityZone: string; host: string; port: number; pid: number | undefined; dir: string }>;
  controlPlane?: { pid: number | undefined; port: number };
  proxy?: { pid: number | undefined; port: number; readerPort: number };
}

type Flags = Map<string, string | true>;

function parseFlags(argv: string[]): Flags {
  const flags: Flags = new Map();
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (!argument.startsWith('--')) throw new UsageError(`unexpected argument "${argument}"`);
    const name = argument.slice(2);
    const next = argv[index + 1];
    if (next === undefined || next.startsWith('--')) flags.set(name, true);
    else {
      flags.set(name, next);
      index++;
    }
  }
  return flags;
}

class UsageError extends Error {}

function stringFlag(flags: Flags, name: string, fallback?: string): string {
  const value = flags.get(name);
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  if (value === true) throw new UsageError(`--${name} needs a value`);
  return value;
}

function numberFlag(flags: Flags, name: string, fallback?: number): number {
  const text = stringFlag(flags, name, fallback === undefined ? undefined : String(fallback));
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`--${name} must be a non-negative integer, got "${text}"`);
  return value;
}

function checkFlags(flags: Flags, allowed: string[]): void {
  for (const name of flags.keys()) if (!allowed.includes(name)) throw new UsageError(`unknown flag --${name}`);
}

export function clusterFilePath(dataDir: string): string {
  return path.join(dataDir, 'cluster.json');
}

export function readClusterFile(dataDir: string): ClusterFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(clusterFilePath(dataDir), 'utf8')) as ClusterFile;
  } catch {
    return undefined;
  }
}

function writeClusterFile(cluster: ClusterFile): void {
  const file = clusterFilePath(cluster.dataDir);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(cluster, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

export { processAlive };

function fleetLayout(dataDir: string, portBase: number): ClusterFile['nodes'] {
  return Array.from({ length: NODES }, (_, index) => ({
    role: 'storage-node' as const,
    id: index + 1,
    availabilityZone: ZONES[Math.floor(index / 2)]!,
    host: '127.0.0.1',
    port: portBase + index,
    pid: undefined,
    dir: path.join(dataDir, 'nodes', `node-${index + 1}`),
  }));
}

function peersArgument(nodes: ClusterFile['nodes']): string {
  return nodes.map((node) => `${node.id}=${node.host}:${node.port}`).join(',');
}

/** bin/boreal.js, from dist/src/cli/main.js. */
function cliEntry(): string {
  return fileURLToPath(new URL('../../../bin/boreal.js', import.meta.url));
}

function startNodeProcess(node: ClusterFile['nodes'][number], peers: string, detached: boolean): ChildProcess {
  fs.mkdirSync(node.dir, { recursive: true });
  const output = fs.openSync(path.join(node.dir, 'process.log'), 'a');
  const child = spawn(
    process.execPath,
    [cliEntry(), 'storage-node', '--id', String(node.id), '--az', node.availabilityZone, '--dir', node.dir, '--host', node.host, '--port', String(node.port), '--peers', peers],
    { stdio: ['ignore', output, output], detached },
  );
  fs.closeSync(output);
  return child;
}

async function waitForNodes(nodes: ClusterFile['nodes'], children: Map<number, ChildProcess>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const node of nodes) {
    for (;;) {
      const child = children.get(node.id);
      if (child && child.exitCode !== null) {
        const log = fs.readFileSync(path.join(node.dir, 'process.log'), 'utf8').trim().split('\n').slice(-3).join('\n');
        throw new Error(`storage node ${node.id} exited during start-up:\n${log}`);
      }
      const status = await queryNodeStatus(node.host, node.port, 300);
      if (status !== undefined) break;
      if (Date.now() > deadline) throw new Error(`storage node ${node.id} did not answer on port ${node.port} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

/** `boreal create-volume`: the bootstrap step of a cluster whose processes run on many hosts. */
async function createVolumeCommand(flags: Flags): Promise<void> {
  checkFlags(flags, ['metadata', 'peers', 'azs']);
  const peers = parsePeers(stringFlag(flags, 'peers'));
  const zones = stringFlag(flags, 'azs').split(',');
  if (zones.length !== peers.size) throw new UsageError(`--azs needs one AZ per node of --peers (${peers.size}), got ${zones.length}`);
  const nodes = [...peers.entries()].map(([id, address], index) => ({ id: Number(id), availabilityZone: zones[index]!, host: address.host, port: address.port }));
  const metadataPath = path.resolve(stringFlag(flags, 'metadata'));
  const created = await createVolume(metadataPath, nodes);
  console.log(created ? `created the volume (${metadataPath})` : `the volume exists already (${metadataPath})`);
}

/** Ports of a local cluster, derived from --port and --storage-port-base. */
interface Ports {
  cluster: number;
  reader: number;
  api: number;
  instanceBase: number;
  replicationBase: number;
}

/** Instance k's status port is replicationBase + 50 + k (so --storage-port-base + 150 + k). */
const STATUS_PORT_OFFSET = 50;

/** Clusters made by create-db-cluster get their endpoints at --port + 60 and up, in pairs. */
const CLUSTER_PORT_OFFSET = 60;

function portsFor(sqlPort: number, portBase: number): Ports {
  return { cluster: sqlPort, reader: sqlPort + 1, api: portBase + 99, instanceBase: sqlPort + 10, replicationBase: portBase + 100 };
}

async function up(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir', 'port', 'storage-port-base', 'detach', 'master-password']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  const previous = readClusterFile(dataDir);
  const portBase = numberFlag(flags, 'storage-port-base', previous?.storagePortBase ?? DEFAULT_STORAGE_PORT_BASE);
  const sqlPort = numberFlag(flags, 'port', previous?.ports?.cluster ?? 5432);
  const masterPassword = stringFlag(flags, 'master-password', process.env.BOREAL_MASTER_PASSWORD ?? 'postgres');
  if (previous && [previous.supervisorPid, previous.controlPlane?.pid, previous.proxy?.pid, ...previous.nodes.map((node) => node.pid)].some((pid) => processAlive(pid))) {
    throw new Error(`a cluster is already running in ${dataDir}; stop it with: npx boreal down --data-dir ${dataDir}`);
  }
  if (flags.get('detach') === true) return upDetached(dataDir, [...flagsToArgs(flags, ['detach']), '--data-dir', dataDir], masterPassword);
  fs.mkdirSync(dataDir, { recursive: true });
  const ports = portsFor(sqlPort, portBase);
  const nodes = previous?.nodes.map((node) => ({ ...node, pid: undefined })) ?? fleetLayout(dataDir, portBase);
  const busy: Array<[number, string]> = [
    ...nodes.map((node): [number, string] => [node.port, `storage node ${node.id}`]),
    [ports.cluster, 'the cluster endpoint (--port)'],
    [ports.reader, 'the reader endpoint (--port + 1)'],
    [ports.api, 'the control plane API (--storage-port-base + 99)'],
    [ports.instanceBase + 1, 'instance boreal-instance-1 (--port + 11)'],
    [ports.instanceBase + 2, 'instance boreal-instance-2 (--port + 12)'],
    ...[1, 2].flatMap((index): Array<[number, string]> => [
      [ports.replicationBase + index, `the redo stream of boreal-instance-${index} (--storage-port-base + ${100 + index})`],
      [ports.replicationBase + STATUS_PORT_OFFSET + index, `the status port of boreal-instance-${index} (--storage-port-base + ${150 + index})`],
    ]),
  ];
  for (const [port, what] of busy) if (!(await portFree('127.0.0.1', port))) throw new Error(`port ${port} (${what}) is already in use on 127.0.0.1`);
  const peers = peersArgument(nodes);
  const cluster: ClusterFile = { dataDir, storagePortBase: portBase, supervisorPid: process.pid, ports, nodes, controlPlane: { pid: undefined, port: ports.api }, proxy: { pid: undefined, port: ports.cluster, readerPort: ports.reader } };
  const children = new Map<string, ChildProcess>();
  const stopAll = async (): Promise<void> => {
    // Endpoints first, then the instances (the control plane stops them), then storage.
    for (const name of ['proxy', 'control-plane']) {
      const child = children.get(name);
      child?.kill('SIGTERM');
      if (child) await waitExit(child, 15000);
    }
    const rest = [...children.entries()].filter(([name]) => name !== 'proxy' && name !== 'control-plane').map(([, child]) => child);
    for (const child of rest) child.kill('SIGTERM');
    await Promise.all(rest.map((child) => waitExit(child, 10000)));
  };
  const startNode = (node: ClusterFile['nodes'][number]): ChildProcess => {
    const child = startNodeProcess(node, peers, false);
    children.set(`node-${node.id}`, child);
    node.pid = child.pid;
    return child;
  };
  const startControlPlane = (): ChildProcess => {
    const child = startLogged(path.join(dataDir, 'control'), ['control-plane', '--data-dir', dataDir], masterPassword);
    children.set('control-plane', child);
    cluster.controlPlane!.pid = child.pid;
    return child;
  };
  const startProxy = (): ChildProcess => {
    const child = startLogged(path.join(dataDir, 'proxy'), ['proxy', '--control', `http://127.0.0.1:${ports.api}`, '--port', String(ports.cluster), '--reader-port', String(ports.reader)], masterPassword);
    children.set('proxy', child);
    cluster.proxy!.pid = child.pid;
    return child;
  };
  try {
    for (const node of nodes) startNode(node);
    writeClusterFile(cluster);
    await waitForNodes(nodes, new Map(nodes.map((node) => [node.id, children.get(`node-${node.id}`)!])), 20000);
    // The first cluster's volume, made on the first up of a data directory (not again after
    // delete-db-cluster removed it: the control plane's store remembers the cluster is gone).
    const firstUp = !fs.existsSync(path.join(dataDir, 'control'));
    const created = firstUp ? await createVolume(path.join(dataDir, 'volume.json'), nodes) : false;
    console.log(created ? `created a new volume in ${dataDir}` : `reopened the data directory ${dataDir}`);
    startControlPlane();
    startProxy();
    writeClusterFile(cluster);
    await waitForEndpoints(ports, 90_000, children);
  } catch (error) {
    await stopAll();
    cluster.supervisorPid = undefined;
    writeClusterFile(cluster);
    throw error;
  }
  await printStatus(dataDir, false);
  const password = process.env.BOREAL_MASTER_PASSWORD !== undefined || flags.has('master-password') ? 'as given' : 'postgres';
  const url = (port: number): string => `postgres://postgres:${encodeURIComponent(masterPassword)}@127.0.0.1:${port}/postgres`;
  console.log(`\ncluster endpoint (writer): ${url(ports.cluster)}`);
  console.log(`reader endpoint:           ${url(ports.reader)}`);
  console.log(`  psql "postgres://postgres@127.0.0.1:${ports.cluster}/postgres"   (password: ${password})`);
  console.log(`control plane API:         http://127.0.0.1:${ports.api}/`);
  console.log('ready; press Ctrl-C to stop');
  // Heal: any process of the cluster that exits is started again (instances are the control plane's).
  let stopping = false;
  const watch = (name: string, child: ChildProcess, restart: () => ChildProcess): void => {
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.log(`${name} exited (${signal ?? code}); restarting it`);
      setTimeout(() => {
        if (stopping) return;
        watch(name, restart(), restart);
        writeClusterFile(cluster);
      }, 300);
    });
  };
  for (const node of nodes) watch(`storage node ${node.id}`, children.get(`node-${node.id}`)!, () => startNode(node));
  watch('control plane', children.get('control-plane')!, startControlPlane);
  watch('proxy', children.get('proxy')!, startProxy);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      console.log('stopping the cluster');
      void stopAll().then(() => {
        for (const node of cluster.nodes) node.pid = undefined;
        cluster.controlPlane!.pid = undefined;
        cluster.proxy!.pid = undefined;
        cluster.supervisorPid = undefined;
        writeClusterFile(cluster);
        console.log('stopped');
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function flagsToArgs(flags: Flags, omit: string[]): string[] {
  const args: string[] = [];
  for (const [name, value] of flags) if (!omit.includes(name)) args.push(`--${name}`, ...(value === true ? [] : [value]));
  return args;
}

/** `up --detach`: the same supervisor, in the background, with its output in <data-dir>/up.log. */
async function upDetached(dataDir: string, args: string[], masterPassword: string): Promise<void> {
  fs.mkdirSync(dataDir, { recursive: true });
  const logPath = path.join(dataDir, 'up.log');
  const output = fs.openSync(logPath, 'w');
  void masterPassword;
  const child = spawn(process.execPath, [cliEntry(), 'up', ...args], { stdio: ['ignore', output, output], detached: true });
  fs.closeSync(output);
  child.unref();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const log = fs.readFileSync(logPath, 'utf8');
    if (log.includes('ready; press Ctrl-C')) {
      console.log(log.replace('ready; press Ctrl-C to stop', `running in the background (supervisor pid ${child.pid}); stop with: npx boreal down --data-dir ${dataDir}`).trimEnd());
      return;
    }
    if (child.exitCode !== null || !processAlive(child.pid)) throw new Error(log.trim().split('\n').slice(-3).join('\n').replace(/^boreal: /, ''));
    if (Date.now() > deadline) throw new Error(`the cluster did not start within 120 s (log: ${logPath})`);
    await sleep(100);
  }
}

function startLogged(dir: string, args: string[], masterPassword: string): ChildProcess {
  fs.mkdirSync(dir, { recursive: true });
  const output = fs.openSync(path.join(dir, 'process.log'), 'a');
  const child = spawn(process.execPath, [cliEntry(), ...args], { stdio: ['ignore', output, output], env: { ...process.env, BOREAL_MASTER_PASSWORD: masterPassword } });
  fs.closeSync(output);
  return child;
}

/**
 * Ready when the control plane reports a writer and every instance available, and the proxy
 * listens (a connection made before the proxy has the topology waits for it, X2).
 */
async function waitForEndpoints(ports: Ports, timeoutMs: number, children: Map<string, ChildProcess>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const [name, child] of children) if (child.exitCode !== null) throw new Error(`${name} exited during start-up (see its process.log)`);
    const status = await fetchJson<{ started: boolean; instances: Array<{ role: string; state: string }> }>(`http://127.0.0.1:${ports.api}/v1/status`).catch(() => undefined);
    // The control plane has loaded its store and every instance is available (there may be
    // none: delete-db-cluster may have removed every cluster).
    const ready = status !== undefined && status.started && status.instances.every((instance) => instance.state === 'available');
    if (ready && (await portFree('127.0.0.1', ports.cluster)) === false) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not become available within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

/** A JSON GET of the control plane's API (timeoutMs covers a long poll). */
async function fetchJson<T>(url: string, timeoutMs = 5000): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await response.json()) as T & { code?: string; message?: string };
  if (!response.ok) throw new Error(`${body.code ?? response.status}: ${body.message ?? ''}`);
  return body;
}

async function statusCommand(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir', 'json']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  if (readClusterFile(dataDir) === undefined) throw new Error(`no cluster in ${dataDir} (run: npx boreal up --data-dir ${dataDir})`);
  await printStatus(dataDir, flags.get('json') === true);
}

export interface ProcessStatus {
  role: 'storage-node' | 'writer' | 'reader' | 'proxy' | 'control-plane';
  /** Node number, instance identifier, or the process's name. */
  id: number | string;
  availabilityZone: string | null;
  pid: number | null;
  port: number;
  state: string;
  /** Readers: how far behind the writer (ms); null for other roles or when not known. */
  replicaLagMs: number | null;
  rssBytes: number | null;
  /** Instances: the DB cluster they belong to. */
  clusterId?: string;
  incarnation?: number | null;
  segments?: Array<{ segment: string; dataEpoch: number; scl: string; hydrating: boolean; repairing: boolean }>;
}

function rssOf(pid: number | null | undefined): number | null {
  if (!processAlive(pid)) return null;
  try {
    const pages = Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return pages * 4096;
  } catch {
    return null;
  }
}

export async function collectStatus(dataDir: string): Promise<ProcessStatus[]> {
  const cluster = readClusterFile(dataDir);
  if (cluster === undefined) return [];
  const nodes = await Promise.all(
    cluster.nodes.map(async (node): Promise<ProcessStatus> => {
      const alive = processAlive(node.pid);
      const reply = alive ? await queryNodeStatus(node.host, node.port, 1000) : undefined;
      return {
        role: 'storage-node',
        id: node.id,
        availabilityZone: node.availabilityZone,
        pid: alive ? node.pid! : null,
        port: node.port,
        state: reply ? 'serving' : alive ? 'unreachable' : 'stopped',
        replicaLagMs: null,
        rssBytes: rssOf(node.pid),
        incarnation: reply?.incarnation ?? null,
        segments: (reply?.segments ?? []).map((segment) => ({ segment: segment.segment, dataEpoch: segment.dataEpoch, scl: String(segment.scl), hydrating: segment.hydrating, repairing: segment.repairing })),
      };
    }),
  );
  const result: ProcessStatus[] = [...nodes];
  const control = cluster.controlPlane;
  if (control !== undefined) {
    const alive = processAlive(control.pid);
    const status = alive ? await fetchJson<{ instances: InstanceStatus[] }>(`http://127.0.0.1:${control.port}/v1/status`).catch(() => undefined) : undefined;
    result.push({ role: 'control-plane', id: 'control-plane', availabilityZone: null, pid: alive ? control.pid! : null, port: control.port, state: status ? 'serving' : alive ? 'unreachable' : 'stopped', replicaLagMs: null, rssBytes: rssOf(control.pid) });
    for (const instance of status?.instances ?? []) {
      result.push({ role: instance.role, id: instance.id, clusterId: instance.clusterId, availabilityZone: instance.availabilityZone, pid: processAlive(instance.pid) ? instance.pid : null, port: instance.port, state: instance.state, replicaLagMs: instance.replicaLagMs ?? null, rssBytes: rssOf(instance.pid) });
    }
  }
  const proxy = cluster.proxy;
  if (proxy !== undefined) {
    const alive = processAlive(proxy.pid);
    result.push({ role: 'proxy', id: 'proxy', availabilityZone: null, pid: alive ? proxy.pid! : null, port: proxy.port, state: alive ? ((await portFree('127.0.0.1', proxy.port)) ? 'unreachable' : 'serving') : 'stopped', replicaLagMs: null, rssBytes: rssOf(proxy.pid) });
  }
  return result;
}

async function printStatus(dataDir: string, json: boolean): Promise<void> {
  const statuses = await collectStatus(dataDir);
  if (json) {
    console.log(JSON.stringify(statuses, null, 2));
    return;
  }
  const rssTotal = statuses.reduce((sum, status) => sum + (status.rssBytes ?? 0), 0);
  console.log(`cluster in ${dataDir}:`);
  console.log('  role           id                 az     pid      port   state        lag ms   rss MB  cluster');
  for (const status of statuses) {
    console.log(
      `  ${status.role.padEnd(14)} ${String(status.id).padEnd(18)} ${String(status.availabilityZone ?? '-').padEnd(6)} ${String(status.pid ?? '-').padEnd(8)} ${String(status.port).padEnd(6)} ${status.state.padEnd(12)} ${String(status.replicaLagMs ?? '-').padEnd(8)} ${(status.rssBytes === null ? '-' : (status.rssBytes / 1048576).toFixed(0)).padEnd(7)} ${status.clusterId ?? ''}`.trimEnd(),
    );
  }
  console.log(`  total RSS ${(rssTotal / 1048576).toFixed(0)} MB`);
}

async function down(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  const cluster = readClusterFile(dataDir);
  if (cluster === undefined) throw new Error(`no cluster in ${dataDir}`);
  const statuses = await collectStatus(dataDir);
  const instancePids = statuses.filter((status) => status.role === 'writer' || status.role === 'reader').map((status) => status.pid);
  // The supervisor stops everything in order; what it leaves (or an orphan) is stopped here.
  const supervisor = cluster.supervisorPid;
  const others = [cluster.proxy?.pid, cluster.controlPlane?.pid, ...instancePids, ...cluster.nodes.map((node) => node.pid)].filter((pid): pid is number => processAlive(pid));
  if (processAlive(supervisor)) {
    process.kill(supervisor!, 'SIGTERM');
    const deadline = Date.now() + 40000;
    while (processAlive(supervisor) && Date.now() < deadline) await sleep(100);
  }
  for (const pid of others) if (processAlive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15000;
  while (others.some(processAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of others) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  const after = readClusterFile(dataDir) ?? cluster;
  for (const node of after.nodes) node.pid = undefined;
  if (after.controlPlane) after.controlPlane.pid = undefined;
  if (after.proxy) after.proxy.pid = undefined;
  after.supervisorPid = undefined;
  writeClusterFile(after);
  console.log(`stopped ${others.length + (supervisor !== undefined ? 1 : 0)} processes in ${dataDir}`);
}

async function controlPlaneCommand(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir', 'cache-mb', 'metadata', 'peers', 'azs', 'api-host', 'api-port', 'instance-host', 'cluster-port', 'reader-port', 'instance-port-base', 'replication-port-base']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  // Under `boreal up` the layout is in cluster.json; on its own (another host, Kubernetes) it is in flags.
  const cluster = readClusterFile(dataDir);
  const standalone = cluster?.ports === undefined;
  const ports: Ports = cluster?.ports ?? {
    cluster: numberFlag(flags, 'cluster-port', 5432),
    reader: numberFlag(flags, 'reader-port', 5433),
    api: numberFlag(flags, 'api-port', 7200),
    instanceBase: numberFlag(flags, 'instance-port-base', 5442),
    replicationBase: numberFlag(flags, 'replication-port-base', 7201),
  };
  const peers = standalone ? stringFlag(flags, 'peers') : peersArgument(cluster!.nodes);
  const metadataPath = standalone ? path.resolve(stringFlag(flags, 'metadata')) : path.join(dataDir, 'volume.json');
  const nodeZones = standalone && flags.has('azs') ? stringFlag(flags, 'azs').split(',') : undefined;
  const zones = nodeZones !== undefined ? [...new Set(nodeZones)] : ZONES;
  // The fleet, for the volumes of clusters made by create-db-cluster.
  const fleet: FleetNode[] = standalone
    ? [...parsePeers(peers).entries()].map(([id, address], index) => ({ id: Number(id), availabilityZone: nodeZones?.[index] ?? ZONES[Math.floor(index / 2) % ZONES.length]!, host: address.host, port: address.port }))
    : cluster!.nodes.map((node) => ({ id: node.id, availabilityZone: node.availabilityZone, host: node.host, port: node.port }));
  const instanceHost = stringFlag(flags, 'instance-host', '127.0.0.1');
  const instance = (index: number, role: 'writer' | 'reader', zone: string): Omit<InstanceRecord, 'createdAt' | 'pid'> => ({
    id: `boreal-instance-${index}`, clusterId: 'boreal-cluster', role, availabilityZone: zone, promotionTier: 1, host: instanceHost, port: ports.instanceBase + index, replicationPort: ports.replicationBase + index, statusPort: ports.replicationBase + STATUS_PORT_OFFSET + index,
  });
  const plane = new ControlPlane({
    dataDir,
    launcher: new ProcessLauncher({ cliEntry: cliEntry(), dataDir, peers, masterPassword: process.env.BOREAL_MASTER_PASSWORD ?? 'postgres', cacheMb: numberFlag(flags, 'cache-mb', 128) }),
    initialInstances: [instance(1, 'writer', zones[0]!), instance(2, 'reader', zones[1 % zones.length]!)],
    cluster: { id: 'boreal-cluster', port: ports.cluster, readerPort: ports.reader, metadataPath },
    nodes: fleet,
    volumesDir: path.join(dataDir, 'volumes'),
    clusterPortBase: ports.cluster + CLUSTER_PORT_OFFSET,
    healthIntervalMs: 100,
    log: (line) => console.log(`${new Date().toISOString()} ${line}`),
    instancePortBase: ports.instanceBase,
    replicationPortBase: ports.replicationBase,
    statusPortBase: ports.replicationBase + STATUS_PORT_OFFSET,
    availabilityZones: zones,
    customEndpointPortBase: ports.cluster + 2,
  });
  const apiPort = await plane.listen(ports.api, stringFlag(flags, 'api-host', '127.0.0.1'));
  await plane.start();
  console.log(JSON.stringify({ ready: true, role: 'control-plane', pid: process.pid, port: apiPort }));
  const stop = (): void => {
    void plane.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function proxyCommand(flags: Flags): Promise<void> {
  checkFlags(flags, ['control', 'port', 'reader-port', 'host', 'wait-ms']);
  const control = stringFlag(flags, 'control');
  const host = stringFlag(flags, 'host', '127.0.0.1');
  const proxy = new Proxy({ waitMs: numberFlag(flags, 'wait-ms', 30000), customHost: host });
  const port = await proxy.listen('writer', numberFlag(flags, 'port', 5432), host);
  const readerPort = await proxy.listen('reader', numberFlag(flags, 'reader-port', port + 1), host);
  let stopped = false;
  // Follows the control plane's topology by long poll; keeps the last one while it is away.
  void (async () => {
    while (!stopped) {
      try {
        const topology = await fetchJson<Topology>(`${control}/v1/topology?after=${proxy.currentTopology.version}`, 30000);
        proxy.setTopology(topology);
      } catch {
        await sleep(200);
      }
    }
  })();
  console.log(JSON.stringify({ ready: true, role: 'proxy', pid: process.pid, port, readerPort }));
  const stop = (): void => {
    stopped = true;
    void proxy.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}


async function instance(flags: Flags): Promise<void> {
  checkFlags(flags, ['role', 'metadata', 'peers', 'host', 'port', 'replication-port', 'status-port', 'writer', 'cache-mb', 'master-user', 'master-password', 'max-connections', 'parameters']);
  const role = stringFlag(flags, 'role');
  if (role !== 'writer' && role !== 'reader') throw new UsageError(`--role must be writer or reader, got "${role}"`);
  const writer = flags.get('writer');
  let writerAddress: { host: string; port: number } | undefined;
  if (typeof writer === 'string') {
    const match = /^(.+):(\d+)$/.exec(writer);
    if (match === null) throw new UsageError(`--writer must be host:port, got "${writer}"`);
    writerAddress = { host: match[1]!, port: Number(match[2]) };
  }
  const host = stringFlag(flags, 'host', '127.0.0.1');
  const port = numberFlag(flags, 'port', 5432);
  if (!(await portFree(host, port))) throw new Error(`port ${port} is already in use on ${host} (choose another with --port)`);
  const running = await runInstance({
    role,
    metadataPath: path.resolve(stringFlag(flags, 'metadata')),
    nodes: parsePeers(stringFlag(flags, 'peers')),
    host,
    port,
    replicationPort: numberFlag(flags, 'replication-port', 0),
    ...(writerAddress !== undefined ? { writer: writerAddress } : {}),
    cacheBytes: numberFlag(flags, 'cache-mb', 128) * 1024 * 1024,
    masterUser: stringFlag(flags, 'master-user', 'postgres'),
    masterPassword: stringFlag(flags, 'master-password', process.env.BOREAL_MASTER_PASSWORD ?? 'postgres'),
    maxConnections: numberFlag(flags, 'max-connections', 100),
    statusPort: numberFlag(flags, 'status-port', 0),
    parameters: parametersFlag(flags),
  });
  console.log(JSON.stringify({ ready: true, role, pid: process.pid, port: running.port, replicationPort: running.replicationPort ?? null }));
  const stop = (): void => {
    void running.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** --parameters '{"statement_timeout":"5s",…}': setting defaults for every session. */
function parametersFlag(flags: Flags): Record<string, string> {
  if (!flags.has('parameters')) return {};
  const text = stringFlag(flags, 'parameters');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--parameters must be a JSON object of setting names to values, got "${text}"`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((value) => typeof value !== 'string')) {
    throw new UsageError('--parameters must be a JSON object of setting names to string values');
  }
  return parsed as Record<string, string>;
}

async function storageNode(flags: Flags): Promise<void> {
  checkFlags(flags, ['id', 'az', 'dir', 'port', 'host', 'peers', 'no-group-commit', 'nice']);
  const id = nodeId(numberFlag(flags, 'id'));
  const running = await runStorageNode({
    id,
    availabilityZone: stringFlag(flags, 'az'),
    directory: path.resolve(stringFlag(flags, 'dir')),
    host: stringFlag(flags, 'host', '127.0.0.1'),
    port: numberFlag(flags, 'port'),
    peers: parsePeers(stringFlag(flags, 'peers', '')),
    groupCommit: flags.get('no-group-commit') !== true,
    nice: Math.min(19, numberFlag(flags, 'nice', STORAGE_NODE_NICE)),
  });
  console.log(`storage node ${id} serving on port ${running.port}`);
  const stop = (): void => {
    void running.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}


// ---------------------------------------------------------------- aws rds verbs

/** describe-db-clusters for DescribeDBClusters, and so on. */
function verbOf(action: string): string {
  return action.replace(/DB/g, 'Db').replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
}

/** --db-cluster-identifier for DBClusterIdentifier, and so on. */
function flagOf(parameter: string): string {
  return verbOf(parameter.replace(/\[\]$/, ''));
}

const RDS_VERBS = new Map(Object.keys(ACTION_PARAMETERS).map((action) => [verbOf(action), action as Action]));

/** Flags of every aws rds verb that are not parameters of the call. */
const COMMON_RDS_FLAGS = ['data-dir', 'endpoint-url', 'output', 'region', 'profile'];

/** Boolean parameters: --apply-immediately sends true, --no-apply-immediately false. */
const SWITCHES = new Set(['ApplyImmediately', 'SkipFinalSnapshot']);

/** An RDS API error as the AWS CLI reports it: exit 254 and the fault's code and message. */
class RdsError extends Error {
  constructor(readonly code: string, message: string, readonly operation: string) {
    super(message);
  }
}

/**
 * --parameters as the AWS CLI takes it: "ParameterName=a,ParameterValue=1,ApplyMethod=pending-reboot"
 * (several separated by spaces), or a JSON list of {ParameterName, ParameterValue, ApplyMethod}.
 */
function parseParameterList(text: string): Array<Record<string, string>> {
  if (text.trim().startsWith('[')) {
    const list = JSON.parse(text) as Array<Record<string, unknown>>;
    return list.map((entry) => Object.fromEntries(Object.entries(entry).map(([key, value]) => [key, String(value)])));
  }
  return text.trim().split(/\s+/).map((group) => {
    const fields = Object.fromEntries(group.split(',').map((pair) => {
      const at = pair.indexOf('=');
      if (at < 0) throw new UsageError(`--parameters: expected Name=Value pairs, got "${pair}"`);
      return [pair.slice(0, at), pair.slice(at + 1)] as const;
    }));
    if (fields.ParameterName === undefined) throw new UsageError(`--parameters: each parameter needs ParameterName=…, got "${group}"`);
    return fields;
  });
}

/** The control plane's API address: --endpoint-url, else the data directory's cluster.json. */
function controlUrl(flags: Flags): string {
  const endpoint = flags.get('endpoint-url');
  if (typeof endpoint === 'string') return endpoint.replace(/\/$/, '');
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  const cluster = readClusterFile(dataDir);
  if (cluster?.controlPlane === undefined) throw new Error(`no cluster in ${dataDir} (give --data-dir or --endpoint-url)`);
  return `http://127.0.0.1:${cluster.controlPlane.port}`;
}

/**
 * An aws rds verb: its flags become the action's Query API parameters, the control plane
 * answers in JSON (the RDS shapes), printed as the AWS CLI prints them; one implementation
 * of each action serves the SDK and the CLI (control/rds-api.ts).
 */
async function rdsCommand(action: Action, flags: Flags): Promise<void> {
  const accepted: readonly string[] = ACTION_PARAMETERS[action];
  checkFlags(flags, [...COMMON_RDS_FLAGS, ...accepted.map(flagOf), ...accepted.filter((parameter) => SWITCHES.has(parameter)).map((parameter) => `no-${flagOf(parameter)}`)]);
  const params = new URLSearchParams({ Action: action, Version: '2014-10-31' });
  for (const parameter of accepted) {
    const name = parameter.replace(/\[\]$/, '');
    const flag = flagOf(parameter);
    const value = flags.get(flag);
    if (flags.has(`no-${flag}`)) params.set(name, 'false');
    if (value === undefined) continue;
    if (value === true) {
      // A boolean switch (--apply-immediately); a flag that needs a value says so.
      if (SWITCHES.has(name)) params.set(name, 'true');
      else throw new UsageError(`--${flag} needs a value`);
    } else if (name === 'Parameters') {
      parseParameterList(value).forEach((fields, index) => {
        for (const [key, field] of Object.entries(fields)) params.set(`Parameters.member.${index + 1}.${key}`, field);
      });
    } else if (parameter.endsWith('[]')) {
      value.split(/[\s,]+/).filter((member) => member !== '').forEach((member, index) => params.set(`${name}.member.${index + 1}`, member));
    } else params.set(name, value);
  }
  let response: Response;
  try {
    response = await fetch(`${controlUrl(flags)}/`, { method: 'POST', body: params, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(60000) });
  } catch (error) {
    throw new Error(`could not reach the control plane at ${controlUrl(flags)}: ${(error as Error).message}`);
  }
  const answer = (await response.json()) as Record<string, unknown> & { Error?: { Code: string; Message: string } };
  if (!response.ok) throw new RdsError(answer.Error?.Code ?? 'InternalFailure', answer.Error?.Message ?? `HTTP ${response.status}`, action);
  if (Object.keys(answer).length > 0) console.log(JSON.stringify(answer, null, 4));
}

function usage(): string {
  return [
    'usage:',
    '  boreal up [--data-dir DIR] [--port 5432] [--master-password P] [--storage-port-base 7101] [--detach]',
    '      a local cluster: 6 storage nodes (2 per AZ), a writer, a reader, the proxy and the control plane.',
    '      cluster endpoint (writer) on --port, reader endpoint on --port + 1, instance k on --port + 10 + k,',
    '      control plane API on --storage-port-base + 99. Ctrl-C or SIGTERM stops it all.',
    '  boreal status [--data-dir DIR] [--json]      every process: role, id, AZ, pid, port, state, replica lag, RSS',
    '  boreal down [--data-dir DIR]                 stops a cluster started with up --detach',
    '',
    'management (the verbs and flags of `aws rds`; JSON shaped like the RDS API; --data-dir DIR or --endpoint-url URL):',
    '  boreal create-db-cluster --db-cluster-identifier C --engine aurora-postgresql [--master-user-password P] [--port N]',
    '                  [--db-cluster-parameter-group-name G]   (a new volume on the same storage nodes; no instances yet:',
    '                  its first create-db-instance is its writer; endpoints on --port + 60 and up unless --port)',
    '  boreal delete-db-cluster --db-cluster-identifier C --skip-final-snapshot   (once its instances are deleted; drops its volume)',
    '  boreal describe-db-clusters [--db-cluster-identifier C]',
    '  boreal describe-db-instances [--db-instance-identifier I]',
    '  boreal create-db-instance --db-cluster-identifier C --db-instance-identifier R [--promotion-tier 0-15] [--availability-zone AZ]',
    '                  [--db-parameter-group-name G]',
    '  boreal modify-db-instance --db-instance-identifier I [--promotion-tier 0-15] [--db-parameter-group-name G]   (the group at its next reboot)',
    '  boreal delete-db-instance --db-instance-identifier R   (the writer fails over to a reader first, unless it is the last)',
    '  boreal reboot-db-instance --db-instance-identifier I',
    '  boreal failover-db-cluster --db-cluster-identifier C [--target-db-instance-identifier R]',
    '  boreal describe-events [--source-identifier ID] [--source-type db-cluster|db-instance] [--max-records N]',
    '  boreal create-db-cluster-endpoint --db-cluster-identifier C --db-cluster-endpoint-identifier E --endpoint-type READER|ANY',
    '                  [--static-members "i1 i2"] [--excluded-members "i3"]   (listens on --port + 2 + k)',
    '  boreal describe-db-cluster-endpoints [--db-cluster-endpoint-identifier E]',
    '  boreal delete-db-cluster-endpoint --db-cluster-endpoint-identifier E',
    '  boreal modify-db-cluster --db-cluster-identifier C [--db-cluster-parameter-group-name G]   (applies at each instance\'s next reboot)',
    '  boreal create-db-cluster-parameter-group --db-cluster-parameter-group-name G --db-parameter-group-family aurora-postgresql15 --description D',
    '  boreal describe-db-cluster-parameter-groups [--db-cluster-parameter-group-name G]',
    '  boreal modify-db-cluster-parameter-group --db-cluster-parameter-group-name G --parameters "ParameterName=statement_timeout,ParameterValue=5s,ApplyMethod=pending-reboot"',
    '  boreal describe-db-cluster-parameters --db-cluster-parameter-group-name G [--source user|engine-default]',
    '  boreal delete-db-cluster-parameter-group --db-cluster-parameter-group-name G   (not while the cluster uses it)',
    '  boreal create-db-parameter-group, describe-db-parameter-groups, modify-db-parameter-group, describe-db-parameters,',
    '         delete-db-parameter-group: the same for DB (instance) parameter groups (--db-parameter-group-name G);',
    '         an instance\'s own group overrides its cluster group where both set a parameter',
    '',
    'processes (started by up; usable on their own hosts):',
    '  boreal storage-node --id N --az AZ --dir DIR --port P [--host H] [--peers id=host:port,...] [--no-group-commit] [--nice N]',
    '  boreal instance --role writer|reader --metadata FILE --peers id=host:port,... [--port 5432] [--host H] [--replication-port N]',
    '                  [--writer host:port] [--cache-mb 128] [--master-user postgres] [--master-password P] [--max-connections 100]',
    '                  [--status-port N]   (GET /status: role, connections, replica lag)   [--parameters \'{"statement_timeout":"5s"}\']',
    '  boreal control-plane [--data-dir DIR] [--cache-mb 128]     (under up: the layout comes from DIR/cluster.json)',
    '  boreal control-plane --data-dir DIR --metadata FILE --peers id=host:port,... [--azs a,a,b,b,c,c] [--api-host H] [--api-port 7200]',
    '                  [--instance-host H] [--cluster-port 5432] [--reader-port 5433] [--instance-port-base 5442] [--replication-port-base 7201]',
    '  boreal create-volume --metadata FILE --peers id=host:port,... --azs az-a,az-a,az-b,az-b,az-c,az-c   (bootstrap, once)',
    '  boreal proxy --control http://host:port [--port 5432] [--reader-port 5433] [--host H] [--wait-ms 30000]',
  ].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    const flags = parseFlags(rest);
    const action = RDS_VERBS.get(command ?? '');
    if (action !== undefined) return await rdsCommand(action, flags);
    switch (command) {
      case 'up':
        return await up(flags);
      case 'status':
        return await statusCommand(flags);
      case 'down':
        return await down(flags);
      case 'storage-node':
        return await storageNode(flags);
      case 'instance':
        return await instance(flags);
      case 'control-plane':
        return await controlPlaneCommand(flags);
      case 'create-volume':
        return await createVolumeCommand(flags);
      case 'proxy':
        return await proxyCommand(flags);
      case undefined:
      case 'help':
      case '--help':
        console.log(usage());
        return;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof RdsError) {
      console.error(`\nAn error occurred (${error.code}) when calling the ${error.operation} operation: ${error.message}`);
      process.exitCode = 254;
      return;
    }
    console.error(`boreal: ${(error as Error).message}`);
    if (error instanceof UsageError) console.error(usage());
    process.exitCode = error instanceof UsageError ? 2 : 1;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}



