// bench/sql: pgbench against Boreal (a real cluster: 6 storage-node processes and the writer
// instance) and against PostgreSQL 15 (Debian's server on a temp dir, fsync on), side by side
// in one run: TPC-B-like and select-only tps, and their ratios.
//
//   npm run bench:sql -- [--scale N] [--clients C] [--threads J] [--seconds S]
//
// Both are initialised with `pgbench -i -s N` (the load time is printed too), then take turns
// for R rounds (--rounds, default 3): `pgbench -c C -j J -T S` (TPC-B-like) and
// `pgbench -S …` (select-only), in simple query mode, over TCP on loopback. While one system
// runs, the other's processes are stopped (SIGSTOP, then SIGCONT: Boreal's writer and storage
// nodes; PostgreSQL's postmaster and every child it has then, autovacuum workers included),
// so that neither's background work (coalescing, checkpoints, vacuum) counts against the
// other on a shared machine, and before every run the page cache's dirty pages are written
// out (`sync`, untimed), so that no run pays for the previous one's writeback. The ratio
// printed is the median of the rounds' ratios.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { startPostgres15 } from '../src/testing/postgres15.js';
import { SqlCluster } from '../src/testing/sql-cluster.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const SCALE = flag('scale', 1);
const CLIENTS = flag('clients', 8);
const THREADS = flag('threads', 2);
const SECONDS = flag('seconds', 30);
const ROUNDS = flag('rounds', 3);

interface Target {
  name: string;
  host: string;
  port: number;
  user: string;
  password: string;
}

function pgbench(target: Target, extra: string[]): { ok: boolean; tps: number | undefined; ms: number; output: string } {
  const started = performance.now();
  const result = spawnSync('pgbench', [...extra, '-h', target.host, '-p', String(target.port), '-U', target.user, 'postgres'], {
    env: { ...process.env, PGPASSWORD: target.password },
    encoding: 'utf8',
    timeout: (SECONDS + 3600) * 1000,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(output);
  return { ok: result.status === 0, tps: match ? Number(match[1]) : undefined, ms: performance.now() - started, output };
}

function load(target: Target): number {
  const init = pgbench(target, ['-i', '-s', String(SCALE), '-q']);
  if (!init.ok) throw new Error(`pgbench -i on ${target.name} failed:\n${init.output}`);
  return init.ms;
}

function run(target: Target, mode: 'tpcb' | 'select'): number | undefined {
  const result = pgbench(target, [...(mode === 'select' ? ['-S'] : []), '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(SECONDS)]);
  if (!result.ok) console.log(`${mode} on ${target.name} reported errors:\n${result.output.slice(-2000)}`);
  return result.tps;
}

/** A process and its descendants (Linux /proc), parents first. */
function withDescendants(pid: number): number[] {
  const all = [pid];
  for (let at = 0; at < all.length; at++) {
    let children = '';
    try {
      children = fs.readFileSync(`/proc/${all[at]}/task/${all[at]}/children`, 'utf8');
    } catch {
      // gone meanwhile
    }
    for (const child of children.split(' ')) if (child.trim() !== '') all.push(Number(child));
  }
  return all;
}

/** Writes the page cache's dirty pages out, so that the next run does not pay for them. */
function settle(): void {
  spawnSync('sync');
}

/** Runs `work` with the other system's processes stopped, after a sync. */
function alone<T>(others: number[], work: () => T): T {
  pause(others, true);
  try {
    settle();
    return work();
  } finally {
    pause(others, false);
  }
}

/** Stops (or resumes) every process of a system while the other one runs. */
function pause(pids: number[], paused: boolean): void {
  for (const pid of pids) {
    try {
      process.kill(pid, paused ? 'SIGSTOP' : 'SIGCONT');
    } catch {
      // gone already: nothing to pause
    }
  }
}

const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function main(): Promise<void> {
  console.log(`bench/sql: pgbench -s ${SCALE}, ${CLIENTS} clients, ${THREADS} threads, ${SECONDS} s per run, ${ROUNDS} rounds`);
  const postgres = await startPostgres15({ fsync: true, maxConnections: 100 });
  let cluster: SqlCluster | undefined;
  try {
    cluster = await SqlCluster.start({ cacheMb: 256 });
    const theirs: Target = { name: 'PostgreSQL 15', host: postgres.host, port: postgres.port, user: postgres.user, password: '' };
    const mine: Target = { name: 'Boreal', host: '127.0.0.1', port: cluster.writer.port, user: 'postgres', password: cluster.password };
    const borealPids = [cluster.writer.process?.pid, ...[1, 2, 3, 4, 5, 6].map((id) => cluster!.fleet.pid(id))].filter((pid): pid is number => pid !== undefined);
    const loads = { mine: load(mine), theirs: load(theirs) };
    const rows: Array<{ mode: 'tpcb' | 'select'; mine: number | undefined; theirs: number | undefined }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of ['tpcb', 'select'] as const) {
        const theirTps = alone(borealPids, () => run(theirs, mode));
        const myTps = alone(withDescendants(postgres.pid), () => run(mine, mode));
        rows.push({ mode, mine: myTps, theirs: theirTps });
        console.log(`round ${round + 1} ${mode === 'tpcb' ? 'TPC-B-like ' : 'select-only'}  Boreal ${myTps?.toFixed(1) ?? 'failed'} tps, PostgreSQL 15 ${theirTps?.toFixed(1) ?? 'failed'} tps`);
      }
    }
    const summary = (mode: 'tpcb' | 'select'): { mine: number | undefined; theirs: number | undefined; ratio: number | undefined } => {
      const of = rows.filter((row) => row.mode === mode);
      const ratios = of.filter((row) => row.mine !== undefined && row.theirs !== undefined && row.theirs > 0).map((row) => row.mine! / row.theirs!);
      return { mine: median(of.flatMap((row) => (row.mine === undefined ? [] : [row.mine]))), theirs: median(of.flatMap((row) => (row.theirs === undefined ? [] : [row.theirs]))), ratio: median(ratios) };
    };
    const tps = (value: number | undefined): string => (value === undefined ? 'failed' : value.toFixed(1));
    const ratio = (value: number | undefined): string => (value === undefined ? 'n/a' : `${value.toFixed(3)}x`);
    const tpcb = summary('tpcb');
    const select = summary('select');
    console.log('');
    console.log('                      Boreal    PostgreSQL 15   ratio (median of rounds)');
    console.log(`pgbench -i (s)     ${(loads.mine / 1000).toFixed(1).padStart(9)}  ${(loads.theirs / 1000).toFixed(1).padStart(14)}   ${ratio(loads.theirs / loads.mine)} (speed)`);
    console.log(`TPC-B-like tps     ${tps(tpcb.mine).padStart(9)}  ${tps(tpcb.theirs).padStart(14)}   ${ratio(tpcb.ratio)}  (target >= 0.3x)`);
    console.log(`select-only tps    ${tps(select.mine).padStart(9)}  ${tps(select.theirs).padStart(14)}   ${ratio(select.ratio)}  (target >= 0.5x)`);
  } finally {
    await cluster?.destroy();
    await postgres.stop();
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exitCode = 1;
});
