// pgbench and sysbench (Debian's) against a real Boreal cluster: their initialisation, a
// short run of each built-in workload, and cleanup, with no errors. Throughput is measured
// by bench/sql, not here.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { SqlCluster } from '../testing/sql-cluster.js';

let cluster: SqlCluster;

before(async () => {
  cluster = await SqlCluster.start({ cacheMb: 128 });
});

after(async () => {
  await cluster?.destroy();
});

function run(command: string, args: string[], env: Record<string, string> = {}): { status: number | null; output: string } {
  const result = spawnSync(command, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

test('pgbench -i -s 10 (a million accounts, more than the cache), then select-only and TPC-B-like for 30 s, with no failed transactions', { timeout: 1_500_000 }, () => {
  const connection = ['-h', '127.0.0.1', '-p', String(cluster.writer.port), '-U', 'postgres', 'postgres'];
  const env = { PGPASSWORD: cluster.password };
  const init = run('pgbench', ['-i', '-s', '10', '-q', ...connection], env);
  assert.equal(init.status, 0, init.output);
  assert.match(init.output, /done in/);
  // Select-only first: every run starts by truncating pgbench_history, so the books below
  // balance against the TPC-B-like run only if it comes last.
  for (const mode of [['-S', '-T', '10'], ['-T', '30']]) {
    const bench = run('pgbench', [...mode, '-c', '8', '-j', '2', ...connection], env);
    assert.equal(bench.status, 0, bench.output);
    assert.match(bench.output, /number of failed transactions: 0 \(0\.000%\)/);
    const processed = /number of transactions actually processed: (\d+)/.exec(bench.output);
    assert.ok(processed !== null && Number(processed[1]) > 0, bench.output);
  }
  // The load and the runs kept the books: every account, teller and branch total agrees
  // with the history table.
  const totals = run('psql', ['-X', '-A', '-t', '-c', 'SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)', ...connection], env);
  assert.equal(totals.status, 0, totals.output);
  const [accounts, ...sums] = totals.output.trim().split('|').map(Number);
  assert.equal(accounts, 1_000_000);
  assert.ok(sums.every((sum) => sum === sums[0]), `balances and history disagree: ${totals.output}`);
});

test('sysbench oltp_read_write: prepare, run and cleanup with no errors', { timeout: 300_000 }, () => {
  const options = ['--db-driver=pgsql', '--pgsql-host=127.0.0.1', `--pgsql-port=${cluster.writer.port}`, '--pgsql-user=postgres', `--pgsql-password=${cluster.password}`, '--pgsql-db=postgres', '--tables=2', '--table-size=10000'];
  const prepare = run('sysbench', ['oltp_read_write', ...options, 'prepare']);
  assert.equal(prepare.status, 0, prepare.output);
  const workload = run('sysbench', ['oltp_read_write', ...options, '--threads=2', '--time=5', 'run']);
  assert.equal(workload.status, 0, workload.output);
  assert.match(workload.output, /ignored errors: +0 /);
  const transactions = /transactions: +(\d+)/.exec(workload.output);
  assert.ok(transactions !== null && Number(transactions[1]) > 0, workload.output);
  const cleanup = run('sysbench', ['oltp_read_write', ...options, 'cleanup']);
  assert.equal(cleanup.status, 0, cleanup.output);
});
