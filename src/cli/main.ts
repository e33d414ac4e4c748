// The `boreal` command line.
//
//   boreal up [--data-dir D] [--port N] [--master-password P] [--storage-port-base N] [--detach]
//   boreal status [--data-dir D] [--json]
//   boreal down [--data-dir D]
//   boreal storage-node --id N --az A --dir D --port P [--host H] [--peers id=host:port,...] [--no-group-commit]
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
import { parsePeers, runStorageNode } from '../storage-node/process.js';
import { connectVolume, writeMetadataSync, type VolumeMetadata } from '../volume-client/index.js';
import { queryNodeStatus } from './node-status.js';
import { runInstance } from '../instance/process.js';

const ZONES = ['az-a', 'az-b', 'az-c'];
const NODES = 6;
const DEFAULT_STORAGE_PORT_BASE = 7101;

export interface InstanceEntry {
  role: 'writer';
  id: string;
  availabilityZone: string;
  host: string;
  port: number;
  replicationPort: number;
  pid: number | undefined;
  dir: string;
}

export interface ClusterFile {
  dataDir: string;
  supervisorPid: number | undefined;
  nodes: Array<{ role: 'storage-node'; id: number; availabilityZone: string; host: string; port: number; pid: number | undefined; dir: string }>;
  instances?: InstanceEntry[];
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

export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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

/** First start of a data directory: write the volume's metadata and create its segments. */
async function createVolumeIfNeeded(dataDir: string, nodes: ClusterFile['nodes']): Promise<boolean> {
  const metadataPath = path.join(dataDir, 'volume.json');
  if (fs.existsSync(metadataPath)) return false;
  const metadata: VolumeMetadata = {
    epoch: 0 as VolumeMetadata['epoch'],
    history: [],
    // 131072 pages of 8 KiB = 1 GiB per protection group; 4 groups.
    pagesPerGroup: 131072,
    groups: Array.from({ length: 4 }, () => ({ members: nodes.map((node) => nodeId(node.id)) })),
    nodes: nodes.map((node) => ({ node: nodeId(node.id), availabilityZone: node.availabilityZone })),
  };
  writeMetadataSync(metadataPath, metadata);
  const connection = connectVolume({ name: `bootstrap-${process.pid}`, metadataPath, nodes: addressMap(nodes) });
  try {
    await withTimeout(connection.open(), 15000, 'creating the volume');
  } finally {
    await connection.close();
  }
  return true;
}

export function addressMap(nodes: ClusterFile['nodes']): Map<NodeId, { host: string; port: number }> {
  return new Map(nodes.map((node) => [nodeId(node.id), { host: node.host, port: node.port }]));
}

async function up(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir', 'port', 'storage-port-base', 'detach', 'master-password']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  const portBase = numberFlag(flags, 'storage-port-base', DEFAULT_STORAGE_PORT_BASE);
  const detach = flags.get('detach') === true;
  const sqlPort = numberFlag(flags, 'port', existingPort(dataDir) ?? 5432);
  const masterPassword = stringFlag(flags, 'master-password', process.env.BOREAL_MASTER_PASSWORD ?? 'postgres');
  const existing = readClusterFile(dataDir);
  if (existing && (processAlive(existing.supervisorPid) || existing.nodes.some((node) => processAlive(node.pid)) || (existing.instances ?? []).some((instance) => processAlive(instance.pid)))) {
    throw new Error(`a cluster is already running in ${dataDir}; stop it with: npx boreal down --data-dir ${dataDir}`);
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const nodes = existing?.nodes.map((node) => ({ ...node, pid: undefined })) ?? fleetLayout(dataDir, portBase);
  for (const node of nodes) {
    if (!(await portFree(node.host, node.port))) throw new Error(`port ${node.port} (storage node ${node.id}) is already in use on ${node.host}`);
  }
  const previous = existing?.instances?.find((instance) => instance.role === 'writer');
  const writer: InstanceEntry = previous !== undefined ? { ...previous, port: sqlPort, pid: undefined } : { role: 'writer', id: 'boreal-writer', availabilityZone: ZONES[0]!, host: '127.0.0.1', port: sqlPort, replicationPort: portBase + 100, pid: undefined, dir: path.join(dataDir, 'instances', 'writer') };
  for (const [port, what] of [[writer.port, 'the SQL endpoint (--port)'], [writer.replicationPort, 'the writer\'s redo stream']] as const) {
    if (!(await portFree(writer.host, port))) throw new Error(`port ${port} (${what}) is already in use on ${writer.host}`);
  }
  const peers = peersArgument(nodes);
  const children = new Map<number, ChildProcess>();
  for (const node of nodes) {
    const child = startNodeProcess(node, peers, detach);
    children.set(node.id, child);
    node.pid = child.pid;
  }
  const cluster: ClusterFile = { dataDir, supervisorPid: detach ? undefined : process.pid, nodes, instances: [writer] };
  writeClusterFile(cluster);
  const instanceChildren = new Map<string, ChildProcess>();
  const stopAll = async (): Promise<void> => {
    for (const child of [...instanceChildren.values(), ...children.values()]) child.kill('SIGTERM');
    await Promise.all([...instanceChildren.values(), ...children.values()].map((child) => waitExit(child, 10000)));
  };
  try {
    await waitForNodes(nodes, children, 20000);
    const created = await createVolumeIfNeeded(dataDir, nodes);
    console.log(created ? `created a new volume in ${dataDir}` : `reopened the volume in ${dataDir}`);
    const child = await startInstanceProcess(writer, dataDir, peers, masterPassword, detach);
    instanceChildren.set(writer.id, child);
    writer.pid = child.pid;
    writeClusterFile(cluster);
  } catch (error) {
    await stopAll();
    throw error;
  }
  await printStatus(dataDir, false);
  console.log(`\nwriter endpoint: postgres://postgres:${encodeURIComponent(masterPassword)}@${writer.host}:${writer.port}/postgres`);
  console.log(`  psql "postgres://postgres@${writer.host}:${writer.port}/postgres"   (password: ${process.env.BOREAL_MASTER_PASSWORD !== undefined || flags.has('master-password') ? 'as given' : 'postgres'})`);
  if (detach) {
    for (const child of [...children.values(), ...instanceChildren.values()]) child.unref();
    console.log(`running in the background; stop with: npx boreal down --data-dir ${dataDir}`);
    return;
  }
  console.log('press Ctrl-C to stop');
  await supervise(cluster, children, peers, instanceChildren, masterPassword);
}

/** The SQL port a data directory's writer used last time (so a plain `up` keeps it). */
function existingPort(dataDir: string): number | undefined {
  return readClusterFile(dataDir)?.instances?.find((instance) => instance.role === 'writer')?.port;
}

function startInstanceProcess(instance: InstanceEntry, dataDir: string, peers: string, password: string, detached: boolean): Promise<ChildProcess> {
  fs.mkdirSync(instance.dir, { recursive: true });
  const logPath = path.join(instance.dir, 'process.log');
  const output = fs.openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    [cliEntry(), 'instance', '--role', instance.role, '--metadata', path.join(dataDir, 'volume.json'), '--peers', peers, '--host', instance.host, '--port', String(instance.port), '--replication-port', String(instance.replicationPort)],
    { stdio: ['ignore', output, output], detached, env: { ...process.env, BOREAL_MASTER_PASSWORD: password } },
  );
  fs.closeSync(output);
  // Ready when its log says so (it prints one JSON line when it serves).
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const poll = (): void => {
      const log = fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '';
      const lines = log.trim().split('\n');
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`the ${instance.role} exited during start-up:\n${lines.slice(-5).join('\n')}`));
      if (lines.some((line) => line.includes('"ready":true') && line.includes(`"pid":${child.pid}`))) return resolve(child);
      if (Date.now() > deadline) return reject(new Error(`the ${instance.role} did not serve within 60 s (log: ${logPath})`));
      setTimeout(poll, 100);
    };
    poll();
  });
}

/** Restarts a node that dies, until Ctrl-C or SIGTERM stops everything. */
async function supervise(cluster: ClusterFile, children: Map<number, ChildProcess>, peers: string, instanceChildren: Map<string, ChildProcess>, password: string): Promise<void> {
  let stopping = false;
  const watchInstance = (instance: InstanceEntry, child: ChildProcess): void => {
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.log(`${instance.role} ${instance.id} exited (${signal ?? code}); restarting it`);
      setTimeout(() => {
        if (stopping) return;
        void startInstanceProcess(instance, cluster.dataDir, peers, password, false).then(
          (replacement) => {
            instanceChildren.set(instance.id, replacement);
            instance.pid = replacement.pid;
            writeClusterFile(cluster);
            watchInstance(instance, replacement);
          },
          (error: Error) => console.log(`could not restart ${instance.id}: ${error.message}`),
        );
      }, 500);
    });
  };
  for (const instance of cluster.instances ?? []) {
    const child = instanceChildren.get(instance.id);
    if (child !== undefined) watchInstance(instance, child);
  }
  const watch = (node: ClusterFile['nodes'][number], child: ChildProcess): void => {
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.log(`storage node ${node.id} exited (${signal ?? code}); restarting it`);
      setTimeout(() => {
        if (stopping) return;
        const replacement = startNodeProcess(node, peers, false);
        children.set(node.id, replacement);
        node.pid = replacement.pid;
        writeClusterFile(cluster);
        watch(node, replacement);
      }, 500);
    });
  };
  for (const node of cluster.nodes) watch(node, children.get(node.id)!);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      console.log('stopping the cluster');
      // Instances first (they flush nothing, but their clients should see them go before storage).
      for (const child of instanceChildren.values()) child.kill('SIGTERM');
      void Promise.all([...instanceChildren.values()].map((child) => waitExit(child, 10000)))
        .then(() => {
          for (const child of children.values()) child.kill('SIGTERM');
          return Promise.all([...children.values()].map((child) => waitExit(child, 10000)));
        })
        .then(() => {
        for (const node of cluster.nodes) node.pid = undefined;
        for (const instance of cluster.instances ?? []) instance.pid = undefined;
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

async function statusCommand(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir', 'json']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  if (readClusterFile(dataDir) === undefined) throw new Error(`no cluster in ${dataDir} (run: npx boreal up --data-dir ${dataDir})`);
  await printStatus(dataDir, flags.get('json') === true);
}

export interface ProcessStatus {
  role: 'storage-node';
  id: number;
  availabilityZone: string;
  pid: number | null;
  port: number;
  state: 'serving' | 'unreachable' | 'stopped';
  incarnation: number | null;
  segments: Array<{ segment: string; dataEpoch: number; scl: string; hydrating: boolean; repairing: boolean }>;
}

export async function collectStatus(dataDir: string): Promise<ProcessStatus[]> {
  const cluster = readClusterFile(dataDir);
  if (cluster === undefined) return [];
  return Promise.all(
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
        incarnation: reply?.incarnation ?? null,
        segments: (reply?.segments ?? []).map((segment) => ({ segment: segment.segment, dataEpoch: segment.dataEpoch, scl: String(segment.scl), hydrating: segment.hydrating, repairing: segment.repairing })),
      };
    }),
  );
}

async function printStatus(dataDir: string, json: boolean): Promise<void> {
  const statuses = await collectStatus(dataDir);
  if (json) {
    console.log(JSON.stringify(statuses, null, 2));
    return;
  }
  console.log(`storage fleet in ${dataDir}:`);
  console.log('  role          id  az    pid      port   state        segments');
  for (const status of statuses) {
    const segments = status.segments.map((segment) => `${segment.segment.split('@')[0]} scl ${segment.scl}${segment.hydrating ? ' (hydrating)' : segment.repairing ? ' (repairing)' : ''}`).join(', ');
    console.log(
      `  ${status.role.padEnd(13)} ${String(status.id).padEnd(3)} ${status.availabilityZone.padEnd(5)} ${String(status.pid ?? '-').padEnd(8)} ${String(status.port).padEnd(6)} ${status.state.padEnd(12)} ${segments}`,
    );
  }
}

async function down(flags: Flags): Promise<void> {
  checkFlags(flags, ['data-dir']);
  const dataDir = path.resolve(stringFlag(flags, 'data-dir', './boreal-data'));
  const cluster = readClusterFile(dataDir);
  if (cluster === undefined) throw new Error(`no cluster in ${dataDir}`);
  const pids = [cluster.supervisorPid, ...(cluster.instances ?? []).map((instance) => instance.pid), ...cluster.nodes.map((node) => node.pid)].filter((pid): pid is number => processAlive(pid));
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15000;
  while (pids.some(processAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of pids) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const node of cluster.nodes) node.pid = undefined;
  for (const instance of cluster.instances ?? []) instance.pid = undefined;
  cluster.supervisorPid = undefined;
  writeClusterFile(cluster);
  console.log(`stopped ${pids.length} processes in ${dataDir}`);
}

async function instance(flags: Flags): Promise<void> {
  checkFlags(flags, ['role', 'metadata', 'peers', 'host', 'port', 'replication-port', 'writer', 'cache-mb', 'master-user', 'master-password', 'max-connections']);
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
  });
  console.log(JSON.stringify({ ready: true, role, pid: process.pid, port: running.port, replicationPort: running.replicationPort ?? null }));
  const stop = (): void => {
    void running.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function storageNode(flags: Flags): Promise<void> {
  checkFlags(flags, ['id', 'az', 'dir', 'port', 'host', 'peers', 'no-group-commit']);
  const id = nodeId(numberFlag(flags, 'id'));
  const running = await runStorageNode({
    id,
    availabilityZone: stringFlag(flags, 'az'),
    directory: path.resolve(stringFlag(flags, 'dir')),
    host: stringFlag(flags, 'host', '127.0.0.1'),
    port: numberFlag(flags, 'port'),
    peers: parsePeers(stringFlag(flags, 'peers', '')),
    groupCommit: flags.get('no-group-commit') !== true,
  });
  console.log(`storage node ${id} serving on port ${running.port}`);
  const stop = (): void => {
    void running.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function usage(): string {
  return [
    'usage:',
    '  boreal up [--data-dir DIR] [--port 5432] [--master-password P] [--storage-port-base N] [--detach]',
    '  boreal status [--data-dir DIR] [--json]',
    '  boreal down [--data-dir DIR]',
    '  boreal storage-node --id N --az AZ --dir DIR --port P [--host H] [--peers id=host:port,...] [--no-group-commit]',
    '  boreal instance --role writer|reader --metadata FILE --peers id=host:port,... [--port 5432] [--host H] [--replication-port N]',
    '                  [--writer host:port] [--cache-mb 128] [--master-user postgres] [--master-password P] [--max-connections 100]',
  ].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    const flags = parseFlags(rest);
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
      case undefined:
      case 'help':
      case '--help':
        console.log(usage());
        return;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
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

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function portFree(host: string, port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

