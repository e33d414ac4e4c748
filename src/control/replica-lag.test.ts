// Replica lag on a real cluster: pgbench's TPC-B-like write load through the cluster
// endpoint; the reader measures, for every VDL the writer announces, the time from the writer
// reaching it to the reader applying it. The lag is reported by `boreal status` and by
// describe-db-instances; p50 and p99 under the load are printed (target p99 <= 100 ms).

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, clusterPorts } from '../testing/fleet.js';

const run = promisify(execFile);

async function boreal(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [BIN, ...args], { timeout: 120000 });
  return stdout;
}


interface Lag {
  lastMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  samples: number;
}

test('replica lag under a pgbench write load: measured, reported by status and describe-db-instances', { timeout: 180000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-lag-'));
  const { storageBase: base, sqlPort } = await clusterPorts();
  const at = ['--data-dir', dataDir];
  try {
    await boreal(['up', ...at, '--port', String(sqlPort), '--storage-port-base', String(base), '--detach']);
    const connection = ['-h', '127.0.0.1', '-p', String(sqlPort), '-U', 'postgres', 'postgres'];
    const env = { ...process.env, PGPASSWORD: 'postgres' };
    const init = spawnSync('pgbench', ['-i', '-s', '1', '-q', ...connection], { env, encoding: 'utf8', timeout: 120000 });
    assert.equal(init.status, 0, init.stderr);
    const load = spawnSync('pgbench', ['-c', '4', '-j', '2', '-T', '10', ...connection], { env, encoding: 'utf8', timeout: 120000 });
    assert.equal(load.status, 0, load.stderr);
    const tps = /tps = ([\d.]+)/.exec(load.stdout)?.[1];
    // The control plane polls the reader every 500 ms.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const described = JSON.parse(await boreal(['describe-db-instances', ...at, '--db-instance-identifier', 'boreal-instance-2'])) as { DBInstances: Array<{ BorealReplicaLag: Lag | null; BorealReplicaLagMs: number | null }> };
    const lag = described.DBInstances[0]!.BorealReplicaLag;
    assert.ok(lag !== null, 'the reader reports its lag');
    assert.ok(lag.samples > 100, `one sample per VDL the writer announced (${lag.samples})`);
    assert.ok(lag.p50Ms !== null && lag.p99Ms !== null && lag.p50Ms >= 0 && lag.p99Ms >= lag.p50Ms);
    // Sanity, not a timing target: under 10 s the reader is following, not stuck.
    assert.ok(lag.p99Ms < 10000, `p99 ${lag.p99Ms} ms`);
    console.log(`# replica lag under pgbench TPC-B-like (4 clients, 10 s, ${tps} tps): p50 ${lag.p50Ms} ms, p99 ${lag.p99Ms} ms over ${lag.samples} VDL advances (target p99 <= 100 ms)`);
    const status = JSON.parse(await boreal(['status', ...at, '--json'])) as Array<{ role: string; replicaLagMs: number | null }>;
    const reader = status.find((entry) => entry.role === 'reader')!;
    assert.ok(reader.replicaLagMs !== null && reader.replicaLagMs >= 0, 'status shows the reader\'s lag');
    assert.equal(status.find((entry) => entry.role === 'writer')!.replicaLagMs, null);
  } finally {
    await boreal(['down', ...at]).catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
