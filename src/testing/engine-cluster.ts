// A writer and readers (engine-server processes) over a fleet of storage-node processes,
// on loopback, for tests and benchmarks. Every process started here is ended here.

import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Fleet, freePort } from './fleet.js';

export const ENGINE_SERVER = fileURLToPath(new URL('./engine-server.js', import.meta.url));

export interface EngineProcess {
  role: 'writer' | 'reader';
  port: number;
  process: ChildProcess | undefined;
  ready: Record<string, unknown> | undefined;
  log: string[];
}

export interface SqlReply {
  ok?: string;
  error?: string;
  message?: string;
}

/** One session on an engine process (JSON lines). */
export class SqlConnection {
  private buffered = '';
  private readonly waiting: Array<(reply: SqlReply) => void> = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        this.waiting.shift()?.(JSON.parse(line) as SqlReply);
      }
    });
    const fail = (): void => {
      this.closed = true;
      for (const waiter of this.waiting.splice(0)) waiter({ error: '08006', message: 'connection lost' });
    };
    socket.on('close', fail);
    socket.on('error', fail);
  }

  static connect(port: number, timeoutMs = 2000): Promise<SqlConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new SqlConnection(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  query(sql: string): Promise<SqlReply> {
    if (this.closed) return Promise.resolve({ error: '08006', message: 'connection lost' });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(`${JSON.stringify({ sql })}\n`);
    });
  }

  /** query(), throwing on an error reply. */
  async ok(sql: string): Promise<string> {
    const reply = await this.query(sql);
    if (reply.error !== undefined) throw new Error(`${reply.error}: ${reply.message} (${sql})`);
    return reply.ok!;
  }

  close(): void {
    this.socket.destroy();
  }
}

export class EngineCluster {
  readonly readers: EngineProcess[] = [];
  writer: EngineProcess;
  private writerArgs: string[] = [];

  private constructor(
    readonly fleet: Fleet,
    readonly replicationPort: number,
    writerPort: number,
    private readonly cacheMb: number,
  ) {
    this.writer = { role: 'writer', port: writerPort, process: undefined, ready: undefined, log: [] };
  }

  static async start(options: { readers?: number; cacheMb?: number; groups?: number; pagesPerGroup?: number; writerArgs?: string[] } = {}): Promise<EngineCluster> {
    const fleet = await Fleet.start({ groups: options.groups ?? 8, pagesPerGroup: options.pagesPerGroup ?? 4096 });
    const cluster = new EngineCluster(fleet, await freePort(), await freePort(), options.cacheMb ?? 16);
    cluster.writerArgs = options.writerArgs ?? [];
    try {
      await cluster.startWriter();
      for (let index = 0; index < (options.readers ?? 0); index++) {
        const reader: EngineProcess = { role: 'reader', port: await freePort(), process: undefined, ready: undefined, log: [] };
        cluster.readers.push(reader);
        await cluster.startReader(reader);
      }
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  private spawn(engine: EngineProcess, args: string[]): Promise<void> {
    const child = spawn(process.execPath, [ENGINE_SERVER, engine.role, '--metadata', this.fleet.metadataPath, '--peers', this.fleet.peers, '--port', String(engine.port), '--cache-mb', String(this.cacheMb), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    engine.process = child;
    engine.ready = undefined;
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${engine.role} did not start: ${engine.log.join('').slice(-1000)}`)), 60_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const newline = out.indexOf('\n');
        if (engine.ready === undefined && newline >= 0) {
          engine.ready = JSON.parse(out.slice(0, newline)) as Record<string, unknown>;
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        engine.log.push(chunk.toString('utf8'));
        if (engine.log.length > 200) engine.log.shift();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (engine.ready === undefined) reject(new Error(`${engine.role} exited (${code ?? signal}): ${engine.log.join('').slice(-1000)}`));
      });
    });
  }

  async startWriter(): Promise<void> {
    await this.spawn(this.writer, ['--replication-port', String(this.replicationPort), ...this.writerArgs]);
  }

  async startReader(reader: EngineProcess, extra: string[] = []): Promise<void> {
    await this.spawn(reader, ['--writer', `127.0.0.1:${this.replicationPort}`, ...extra]);
  }

  /** kill -9 of an engine process. */
  async kill(engine: EngineProcess): Promise<void> {
    const child = engine.process;
    engine.process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    for (const engine of [this.writer, ...this.readers]) {
      const child = engine.process;
      engine.process = undefined;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGCONT'); // in case a test stopped it
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    await this.fleet.destroy();
  }
}
