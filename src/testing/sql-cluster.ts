// A SQL cluster for tests and benchmarks: six storage-node processes, a writer instance
// process serving the PostgreSQL protocol, and optional reader instances — all on
// loopback, all ended here by pid.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { BIN, Fleet, freePort } from './fleet.js';

export interface SqlInstance {
  role: 'writer' | 'reader';
  port: number;
  process: ChildProcess | undefined;
  log: string[];
}

export class SqlCluster {
  readonly readers: SqlInstance[] = [];
  /** Options for the instance processes' node runtime (e.g. --cpu-prof when profiling). */
  private nodeArgs: string[] = [];

  private constructor(
    readonly fleet: Fleet,
    readonly writer: SqlInstance,
    readonly replicationPort: number,
    private readonly cacheMb: number,
    readonly password: string,
    private readonly maxConnections: number,
  ) {}

  static async start(options: { readers?: number; cacheMb?: number; password?: string; maxConnections?: number; nodeArgs?: string[]; storageNodeArgs?: string[] } = {}): Promise<SqlCluster> {
    // 4 protection groups of 1 GiB (131072 pages of 8 KiB), as `boreal up` creates.
    const fleet = await Fleet.start({ groups: 4, pagesPerGroup: 131072, nodeArgs: options.storageNodeArgs ?? [] });
    const cluster = new SqlCluster(fleet, { role: 'writer', port: await freePort(), process: undefined, log: [] }, await freePort(), options.cacheMb ?? 64, options.password ?? 'postgres', options.maxConnections ?? 100);
    cluster.nodeArgs = options.nodeArgs ?? [];
    try {
      await cluster.startWriter();
      for (let index = 0; index < (options.readers ?? 0); index++) {
        const reader: SqlInstance = { role: 'reader', port: await freePort(), process: undefined, log: [] };
        cluster.readers.push(reader);
        await cluster.spawn(reader, ['--writer', `127.0.0.1:${cluster.replicationPort}`]);
      }
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  url(instance: SqlInstance = this.writer): string {
    return `postgres://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${instance.port}/postgres`;
  }

  async startWriter(): Promise<void> {
    await this.spawn(this.writer, ['--replication-port', String(this.replicationPort)]);
  }

  private spawn(instance: SqlInstance, args: string[]): Promise<void> {
    const child = spawn(
      process.execPath,
      [...this.nodeArgs, BIN, 'instance', '--role', instance.role, '--metadata', this.fleet.metadataPath, '--peers', this.fleet.peers, '--port', String(instance.port), '--cache-mb', String(this.cacheMb), '--master-password', this.password, '--max-connections', String(this.maxConnections), ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    instance.process = child;
    instance.log = [];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${instance.role} did not become ready within 30 s:\n${instance.log.join('')}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        instance.log.push(text);
        if (text.includes('"ready":true')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        if (process.env.BOREAL_INSTANCE_LOG !== undefined) fs.appendFileSync(process.env.BOREAL_INSTANCE_LOG, chunk);
        instance.log.push(chunk.toString('utf8'));
        if (instance.log.length > 200) instance.log.splice(0, 100);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (process.env.BOREAL_INSTANCE_LOG !== undefined) fs.appendFileSync(process.env.BOREAL_INSTANCE_LOG, `${instance.role} exited (${signal ?? code})\n`);
        reject(new Error(`${instance.role} exited (${signal ?? code}) during start-up:\n${instance.log.join('')}`));
      });
    });
  }

  /** kill -9 an instance and wait until it is gone. */
  async kill(instance: SqlInstance): Promise<void> {
    const child = instance.process;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    instance.process = undefined;
  }

  async destroy(): Promise<void> {
    for (const instance of [...this.readers, this.writer]) {
      const child = instance.process;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await this.fleet.destroy();
  }
}
