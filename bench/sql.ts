// bench/sql: pgbench against Boreal (a real cluster: 6 storage-node processes and the writer
// instance) and against PostgreSQL 15 (Debian's server on a temp dir, fsync on), side by side
// in one run: TPC-B-like and select-only tps, and their ratios.
//
//   npm run bench:sql -- [--scale N] [--clients C] [--threads J] [--seconds S]
//
// Both are initialised with `pgbench -i -s N` (the load time is printed too), then run
// `pgbench -c C -j J -T S` (TPC-B-like) and `pgbench -S …` (select-only), in simple query
// mode, over TCP on loopback.

import { spawnSync } from 'node:child_process';
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

function measure(target: Target): { loadMs: number; tpcb: number | undefined; selectOnly: number | undefined } {
  const init = pgbench(target, ['-i', '-s', String(SCALE), '-q']);
  if (!init.ok) throw new Error(`pgbench -i on ${target.name} failed:\n${init.output}`);
  const tpcb = pgbench(target, ['-c', String(CLIENTS), '-j', String(THREADS), '-T', String(SECONDS)]);
  if (!tpcb.ok) console.log(`TPC-B-like on ${target.name} reported errors:\n${tpcb.output.slice(-2000)}`);
  const selectOnly = pgbench(target, ['-S', '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(SECONDS)]);
  if (!selectOnly.ok) console.log(`select-only on ${target.name} reported errors:\n${selectOnly.output.slice(-2000)}`);
  return { loadMs: init.ms, tpcb: tpcb.tps, selectOnly: selectOnly.tps };
}

async function main(): Promise<void> {
  console.log(`bench/sql: pgbench -s ${SCALE}, ${CLIENTS} clients, ${THREADS} threads, ${SECONDS} s per run`);
  const postgres = await startPostgres15({ fsync: true, maxConnections: 100 });
  let theirs: ReturnType<typeof measure>;
  try {
    theirs = measure({ name: 'PostgreSQL 15', host: postgres.host, port: postgres.port, user: postgres.user, password: '' });
  } finally {
    await postgres.stop();
  }
  const cluster = await SqlCluster.start({ cacheMb: 256 });
  let mine: ReturnType<typeof measure>;
  try {
    mine = measure({ name: 'Boreal', host: '127.0.0.1', port: cluster.writer.port, user: 'postgres', password: cluster.password });
  } finally {
    await cluster.destroy();
  }
  const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(3)}x` : 'n/a');
  const tps = (value: number | undefined): string => (value === undefined ? 'failed' : value.toFixed(1));
  console.log('');
  console.log('                      Boreal    PostgreSQL 15   ratio');
  console.log(`pgbench -i (s)     ${(mine.loadMs / 1000).toFixed(1).padStart(9)}  ${(theirs.loadMs / 1000).toFixed(1).padStart(14)}   ${ratio(theirs.loadMs, mine.loadMs)} (speed)`);
  console.log(`TPC-B-like tps     ${tps(mine.tpcb).padStart(9)}  ${tps(theirs.tpcb).padStart(14)}   ${ratio(mine.tpcb, theirs.tpcb)}  (target >= 0.3x)`);
  console.log(`select-only tps    ${tps(mine.selectOnly).padStart(9)}  ${tps(theirs.selectOnly).padStart(14)}   ${ratio(mine.selectOnly, theirs.selectOnly)}  (target >= 0.5x)`);
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exitCode = 1;
});
