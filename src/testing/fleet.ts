// Real storage-node processes on loopback for tests and benchmarks: start, kill -9,
// restart, stop. Every process started here is ended here, by pid.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { portFree } from '../net/listen.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { epoch, nodeId, type NodeId } from '../common/index.js';
import { queryNodeStatus } from '../net/node-request.js';
import { writeMetadataSync, type VolumeMetadata } from '../volume-client/index.js';

export const BIN = fileURLToPath(new URL('../../../bin/boreal.js', import.meta.url));
export const STREAM_WRITER = fileURLToPath(new URL('../volume-client/stream-writer.js', import.meta.url));

export interface FleetNode {
  id: NodeId;
  zone: string;
  port: number;
  dir: string;
  process: ChildProcess | undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Ports for a `boreal up` in a test: a storage-port-base whose ports at the given offsets are
 * free (the nodes at +0..+5, the control plane at +99, redo streams at +101.., status ports at
 * +151..), and a SQL port with the ports above it free too (reader endpoint +1, custom
 * endpoints +2.., instances +11..). Both lie below Linux's ephemeral range (32768-60999), so
 * that no outgoing connection of another test takes one of them between the check and `up`.
 */
export async function clusterPorts(instances = 4): Promise<{ storageBase: number; sqlPort: number }> {
  const storageOffsets = [0, 1, 2, 3, 4, 5, 99, ...Array.from({ length: instances }, (_, index) => [101 + index, 151 + index]).flat()];
  // The endpoints, custom endpoints, instances, and a cluster made by create-db-cluster (+60, +61).
  const sqlOffsets = [0, 1, 2, 3, 4, 5, 6, ...Array.from({ length: instances }, (_, index) => 11 + index), 60, 61];
  const pick = async (offsets: number[], span: number): Promise<number> => {
    for (;;) {
      const base = 10000 + Math.floor(Math.random() * (32000 - span - 10000));
      if ((await Promise.all(offsets.map((offset) => portFree('127.0.0.1', base + offset)))).every(Boolean)) return base;
    }
  };
  for (;;) {
    const storageBase = await pick(storageOffsets, 200);
    const sqlPort = await pick(sqlOffsets, 70);
    // The two ranges must not overlap.
    if (sqlPort + 70 < storageBase || sqlPort > storageBase + 200) return { storageBase, sqlPort };
  }
}

/** Runs the `boreal` command as a user would: its exit code and output (never throws). */
export async function runBoreal(args: string[], timeoutMs = 120000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Runs an aws-rds verb of `boreal` that must succeed, and parses the JSON it prints. */
export async function borealJson<T>(args: string[]): Promise<T> {
  const result = await runBoreal(args);
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Runs an aws-rds verb of `boreal` that must fail with the RDS fault `code`, as the AWS CLI reports it. */
export async function expectRdsFault(args: string[], code: string): Promise<void> {
  const result = await runBoreal(args);
  assert.notEqual(result.code, 0, args.join(' '));
  assert.match(result.stderr, new RegExp(`An error occurred \\(${code}\\) when calling the \\w+ operation`), result.stderr);
}

export class Fleet {
  readonly nodes: FleetNode[] = [];
  readonly root: string;
  readonly metadataPath: string;
  /** Options for the node runtime itself (e.g. --cpu-prof when profiling a benchmark). */
  private nodeArgs: string[] = [];

  private constructor(root: string) {
    this.root = root;
    this.metadataPath = path.join(root, 'volume.json');
  }

  /** `count` nodes, zones assigned round-robin in pairs (2 per AZ for 6 nodes). */
  static async start(options: { count?: number; groups?: number; pagesPerGroup?: number; extraArgs?: string[]; nodeArgs?: string[] } = {}): Promise<Fleet> {
    const fleet = new Fleet(fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-fleet-')));
    fleet.nodeArgs = options.nodeArgs ?? [];
    const count = options.count ?? 6;
    for (let index = 0; index < count; index++) {
      fleet.nodes.push({
        id: nodeId(index + 1),
        zone: ['az-a', 'az-b', 'az-c'][Math.floor(index / 2) % 3]!,
        port: await freePort(),
        dir: path.join(fleet.root, `node-${index + 1}`),
        process: undefined,
      });
    }
    const metadata: VolumeMetadata = {
      epoch: epoch(0),
      history: [],
      pagesPerGroup: options.pagesPerGroup ?? 16,
      groups: Array.from({ length: options.groups ?? 4 }, () => ({ members: fleet.nodes.slice(0, 6).map((node) => node.id) })),
      nodes: fleet.nodes.map((node) => ({ node: node.id, availabilityZone: node.zone })),
    };
    writeMetadataSync(fleet.metadataPath, metadata);
    for (const node of fleet.nodes) fleet.spawn(node, options.extraArgs ?? []);
    await fleet.waitServing(fleet.nodes);
    return fleet;
  }

  get peers(): string {
    return this.nodes.map((node) => `${node.id}=127.0.0.1:${node.port}`).join(',');
  }

  get addresses(): Map<NodeId, { host: string; port: number }> {
    return new Map(this.nodes.map((node) => [node.id, { host: '127.0.0.1', port: node.port }]));
  }

  node(id: number): FleetNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  private spawn(node: FleetNode, extraArgs: string[]): void {
    fs.mkdirSync(node.dir, { recursive: true });
    const output = fs.openSync(path.join(node.dir, 'process.log'), 'a');
    node.process = spawn(
      process.execPath,
      [...this.nodeArgs, BIN, 'storage-node', '--id', String(node.id), '--az', node.zone, '--dir', node.dir, '--port', String(node.port), '--peers', this.peers, ...extraArgs],
      { stdio: ['ignore', output, output] },
    );
    fs.closeSync(output);
  }

  async waitServing(nodes: FleetNode[], timeoutMs = 20000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const node of nodes) {
      while ((await queryNodeStatus('127.0.0.1', node.port, 200)) === undefined) {
        if (Date.now() > deadline) throw new Error(`node ${node.id} did not start: ${fs.readFileSync(path.join(node.dir, 'process.log'), 'utf8').slice(-500)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** kill -9: the process gets no chance to flush anything. */
  async kill(id: number): Promise<void> {
    const node = this.node(id);
    const child = node.process;
    node.process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(id: number, extraArgs: string[] = []): Promise<void> {
    const node = this.node(id);
    if (node.process !== undefined) await this.kill(id);
    this.spawn(node, extraArgs);
    await this.waitServing([node]);
  }

  pid(id: number): number | undefined {
    return this.node(id).process?.pid;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        const child = node.process;
        node.process = undefined;
        if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
