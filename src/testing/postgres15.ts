// A real PostgreSQL 15 server for tests and benchmarks: a fresh cluster in a temporary
// directory, listening on 127.0.0.1 at a free port with trust authentication, stopped by
// pid and removed afterwards. It is the reference Boreal is compared against (the
// sqllogictest runner's `--target postgres15`, wire-compatibility checks).
//
// PostgreSQL refuses to run as root. When we are root, initdb and postgres run as the
// `postgres` OS user: Node's spawn sets the child's uid and gid (libuv also drops the
// supplementary groups), so the pid we hold is the postmaster itself, not a `runuser`
// wrapper that would have to forward our signals.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { freePort } from './fleet.js';

export const POSTGRES15_BIN_DIRECTORY = '/usr/lib/postgresql/15/bin';
const DEBIAN_PACKAGE = 'postgresql-15';
const OS_USER = 'postgres';

const initdbTimeoutMs = 60_000;
const readyTimeoutMs = 30_000;
const readyPollIntervalMs = 50;
const shutdownFastTimeoutMs = 10_000;
const shutdownImmediateTimeoutMs = 5_000;
const startAttemptsMax = 3;
const logTailBytesMax = 4096;

export interface Postgres15Options {
  /** Default false: tests want speed, not durability (also turns off full_page_writes and synchronous_commit). */
  fsync?: boolean;
  maxConnections?: number;
  /** Extra `-c name=value` server settings, applied last. */
  settings?: Record<string, string>;
  /** Where initdb and postgres live; default the Debian package's directory. */
  binDirectory?: string;
}

export interface Postgres15 {
  readonly host: string;
  readonly port: number;
  /** postgres://postgres@127.0.0.1:port/postgres */
  readonly url: string;
  readonly user: 'postgres';
  /** The temporary directory holding the cluster, the socket and the log; removed by stop(). */
  readonly directory: string;
  readonly pid: number;
  /** Fast shutdown (SIGINT), escalating to immediate (SIGQUIT) and SIGKILL; then removes the directory. Idempotent. */
  stop(): Promise<void>;
}

interface OsUser {
  uid: number;
  gid: number;
}

/** Starts a fresh PostgreSQL 15 cluster and resolves once it accepts connections. */
export async function startPostgres15(options: Postgres15Options = {}): Promise<Postgres15> {
  const binDirectory = options.binDirectory ?? POSTGRES15_BIN_DIRECTORY;
  const initdb = requireBinary(binDirectory, 'initdb');
  const postgres = requireBinary(binDirectory, 'postgres');
  const runAs = process.getuid?.() === 0 ? lookupOsUser(OS_USER) : undefined;
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-pg15-'));
  try {
    const dataDirectory = path.join(directory, 'data');
    const socketDirectory = path.join(directory, 'socket');
    fs.mkdirSync(socketDirectory);
    if (runAs !== undefined) {
      fs.chownSync(directory, runAs.uid, runAs.gid);
      fs.chownSync(socketDirectory, runAs.uid, runAs.gid);
    }
    await runInitdb(initdb, dataDirectory, directory, runAs);
    writeHostBasedAuthentication(dataDirectory);
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= startAttemptsMax; attempt++) {
      // The free port can be taken between freePort() and the postmaster's bind; retry.
      const port = await freePort();
      try {
        return await startServer({ postgres, dataDirectory, socketDirectory, directory, port, runAs, options });
      } catch (error) {
        lastError = error as Error;
      }
    }
    throw lastError ?? new Error('postgres did not start');
  } catch (error) {
    fs.rmSync(directory, { recursive: true, force: true });
    throw error;
  }
}

function requireBinary(binDirectory: string, name: string): string {
  const binary = path.join(binDirectory, name);
  try {
    fs.accessSync(binary, fs.constants.X_OK);
  } catch {
    throw new Error(`PostgreSQL 15 is not installed: ${binary} is missing (install the Debian package ${DEBIAN_PACKAGE})`);
  }
  return binary;
}

/** Node has no getpwnam; /etc/passwd is where Debian keeps the `postgres` user the package creates. */
function lookupOsUser(name: string): OsUser {
  const passwd = fs.readFileSync('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] !== name) continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  }
  throw new Error(`running as root, but there is no OS user '${name}' to run PostgreSQL as (the Debian package ${DEBIAN_PACKAGE} creates it)`);
}

function spawnAs(binary: string, args: string[], cwd: string, runAs: OsUser | undefined): ChildProcess {
  return spawn(binary, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    ...(runAs === undefined ? {} : { uid: runAs.uid, gid: runAs.gid }),
  });
}

/** Keeps the last bytes of a child's output for error messages. */
function collectTail(child: ChildProcess): () => string {
  let tail = '';
  const append = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-logTailBytesMax);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => tail;
}

async function runInitdb(initdb: string, dataDirectory: string, cwd: string, runAs: OsUser | undefined): Promise<void> {
  const args = ['-D', dataDirectory, '-U', OS_USER, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'];
  const child = spawnAs(initdb, args, cwd, runAs);
  const output = collectTail(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), initdbTimeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`initdb failed (exit ${code ?? signal}): ${output()}`);
}

/** Trust for loopback TCP and the private socket only; nothing else may connect. */
function writeHostBasedAuthentication(dataDirectory: string): void {
  const file = path.join(dataDirectory, 'pg_hba.conf');
  const stat = fs.statSync(file);
  fs.writeFileSync(file, ['local all all trust', 'host all all 127.0.0.1/32 trust', ''].join('\n'));
  fs.chownSync(file, stat.uid, stat.gid);
}

function serverArguments(dataDirectory: string, socketDirectory: string, port: number, options: Postgres15Options): string[] {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: socketDirectory,
    logging_collector: 'off',
  };
  if (options.fsync !== true) {
    settings['fsync'] = 'off';
    settings['full_page_writes'] = 'off';
    settings['synchronous_commit'] = 'off';
  }
  if (options.maxConnections !== undefined) settings['max_connections'] = String(options.maxConnections);
  Object.assign(settings, options.settings ?? {});
  const args = ['-D', dataDirectory];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
  return args;
}

interface ServerStart {
  postgres: string;
  dataDirectory: string;
  socketDirectory: string;
  directory: string;
  port: number;
  runAs: OsUser | undefined;
  options: Postgres15Options;
}

async function startServer(start: ServerStart): Promise<Postgres15> {
  const child = spawnAs(start.postgres, serverArguments(start.dataDirectory, start.socketDirectory, start.port, start.options), start.directory, start.runAs);
  const output = collectTail(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => undefined);
  // If our process dies without calling stop(), take the server down with it.
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
  };
  process.once('exit', killOnExit);
  const host = '127.0.0.1';
  const url = `postgres://${OS_USER}@${host}:${start.port}/postgres`;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      await shutDown(child, exited);
      fs.rmSync(start.directory, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await waitReady(url, child, exited, output);
  } catch (error) {
    await shutDown(child, exited);
    process.removeListener('exit', killOnExit);
    throw error;
  }
  if (child.pid === undefined) throw new Error('postgres has no pid');
  return { host, port: start.port, url, user: OS_USER, directory: start.directory, pid: child.pid, stop };
}

async function waitReady(url: string, child: ChildProcess, exited: Promise<void>, output: () => string): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  let childExited = false;
  void exited.then(() => (childExited = true));
  for (;;) {
    if (childExited) throw new Error(`postgres exited during startup (exit ${child.exitCode ?? child.signalCode}): ${output()}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch {
      // Not accepting connections yet ("the database system is starting up", ECONNREFUSED).
    } finally {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${readyTimeoutMs} ms: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, readyPollIntervalMs));
  }
}

/** SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients to disconnect). */
async function shutDown(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const escalation: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', shutdownFastTimeoutMs],
    ['SIGQUIT', shutdownImmediateTimeoutMs],
    ['SIGKILL', Number.POSITIVE_INFINITY],
  ];
  for (const [signal, timeoutMs] of escalation) {
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = Number.isFinite(timeoutMs) ? new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))) : new Promise<boolean>(() => undefined);
    const timedOutBeforeExit = await Promise.race([exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (!timedOutBeforeExit) return;
  }
}
