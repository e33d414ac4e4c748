// The `boreal` command as a user runs it: up (detached), status --json, down, and up again
// on the same data directory; bad flags and a busy port give clear errors.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { clusterPorts, runBoreal } from '../testing/fleet.js';

const boreal = (args: string[]): ReturnType<typeof runBoreal> => runBoreal(args, 60000);

interface Status {
  role: string;
  id: number | string;
  rssBytes: number | null;
  availabilityZone: string;
  pid: number | null;
  port: number;
  state: string;
  segments: Array<{ segment: string; scl: string }>;
}

test('up --detach, status --json, down, and the same volume on the next up', { timeout: 120000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-cli-'));
  const { storageBase: portBase, sqlPort } = await clusterPorts();
  try {
    const first = await boreal(['up', '--data-dir', dataDir, '--storage-port-base', String(portBase), '--port', String(sqlPort), '--master-password', 'cli secret', '--detach']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /created a new volume/);
    assert.match(first.stdout, new RegExp(`postgres://postgres:cli%20secret@127\\.0\\.0\\.1:${sqlPort}/postgres`));
    // The writer serves SQL with the master password.
    const client = new pg.Client({ connectionString: `postgres://postgres:cli%20secret@127.0.0.1:${sqlPort}/postgres` });
    await client.connect();
    await client.query('CREATE TABLE kept (id int PRIMARY KEY, note text)');
    await client.query("INSERT INTO kept VALUES (1, 'survives down and up')");
    await client.end();
    const status = await boreal(['status', '--data-dir', dataDir, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const all = JSON.parse(status.stdout) as Status[];
    const processes = all.filter((entry) => entry.role === 'storage-node');
    assert.equal(processes.length, 6);
    assert.deepStrictEqual(processes.map((entry) => entry.availabilityZone).sort(), ['az-a', 'az-a', 'az-b', 'az-b', 'az-c', 'az-c']);
    for (const entry of processes) {
      assert.equal(entry.state, 'serving');
      assert.ok(entry.pid !== null && entry.pid > 0);
      assert.ok(entry.port >= portBase && entry.port < portBase + 6);
      assert.equal(entry.segments.length, 4, 'every node hosts one segment of each of the 4 PGs');
    }
    // The rest of the cluster: a writer and a reader in other AZs, the proxy, the control plane.
    assert.deepStrictEqual(all.filter((entry) => entry.role !== 'storage-node').map((entry) => `${entry.role} ${entry.state}`).sort(), ['control-plane serving', 'proxy serving', 'reader available', 'writer available']);
    const writerEntry = all.find((entry) => entry.role === 'writer')!;
    const readerEntry = all.find((entry) => entry.role === 'reader')!;
    assert.notEqual(writerEntry.availabilityZone, readerEntry.availabilityZone);
    // Idle, the whole cluster (ten processes) fits in 1 GiB of RSS.
    const rss = all.reduce((sum, entry) => sum + (entry.rssBytes ?? 0), 0);
    assert.ok(all.every((entry) => entry.rssBytes !== null && entry.rssBytes > 0));
    assert.ok(rss <= 1024 * 1024 * 1024, `idle cluster RSS ${(rss / 1048576).toFixed(0)} MB`);
    // The reader endpoint serves the writer's data, read-only.
    const reader = new pg.Client({ connectionString: `postgres://postgres:cli%20secret@127.0.0.1:${sqlPort + 1}/postgres` });
    await reader.connect();
    for (let attempt = 0; ; attempt++) {
      const rows = (await reader.query('SELECT count(*)::int AS n FROM kept').catch(() => ({ rows: [{ n: 0 }] }))).rows;
      if (rows[0].n === 1) break;
      assert.ok(attempt < 100, 'the reader sees the committed row');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await assert.rejects(reader.query('INSERT INTO kept VALUES (2, null)'), { code: '25006' });
    await reader.end();
    const pids = all.map((entry) => entry.pid!);
    const writerPid = writerEntry.pid!;
    assert.ok(writerPid > 0);

    // A second `up` on a running cluster is refused.
    const again = await boreal(['up', '--data-dir', dataDir, '--storage-port-base', String(portBase), '--detach']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already running/);

    const down = await boreal(['down', '--data-dir', dataDir]);
    assert.equal(down.code, 0, down.stderr);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'every process is gone after down');
    assert.throws(() => process.kill(writerPid, 0), 'the writer is gone after down');
    const stopped = JSON.parse((await boreal(['status', '--data-dir', dataDir, '--json'])).stdout) as Status[];
    assert.ok(stopped.every((entry) => entry.state === 'stopped'));

    const second = await boreal(['up', '--data-dir', dataDir, '--master-password', 'cli secret', '--detach']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /reopened the data directory/);
    const again2 = new pg.Client({ connectionString: `postgres://postgres:cli%20secret@127.0.0.1:${sqlPort}/postgres` });
    await again2.connect();
    assert.deepEqual((await again2.query('SELECT id, note FROM kept')).rows, [{ id: 1, note: 'survives down and up' }]);
    await again2.end();
    const reopened = (JSON.parse((await boreal(['status', '--data-dir', dataDir, '--json'])).stdout) as Status[]).filter((entry) => entry.role === 'storage-node');
    assert.ok(reopened.every((entry) => entry.state === 'serving'));
    assert.deepStrictEqual(
      reopened.map((entry) => entry.segments.map((segment) => segment.segment).sort()),
      processes.map((entry) => entry.segments.map((segment) => segment.segment).sort()),
    );
  } finally {
    await boreal(['down', '--data-dir', dataDir]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a busy port is named in the error, and nothing is left running', { timeout: 60000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-cli-'));
  const { storageBase: portBase } = await clusterPorts();
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(portBase + 2, '127.0.0.1', resolve));
  try {
    const result = await boreal(['up', '--data-dir', dataDir, '--storage-port-base', String(portBase), '--detach']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, new RegExp(`port ${portBase + 2}`));
  } finally {
    blocker.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('bad flags and unknown commands exit non-zero with usage', async () => {
  const unknown = await boreal(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const flag = await boreal(['status', '--colour']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown flag --colour/);
  const value = await boreal(['up', '--storage-port-base', 'abc']);
  assert.equal(value.code, 2);
  assert.match(value.stderr, /must be a non-negative integer/);
  const missing = await boreal(['status', '--data-dir', path.join(os.tmpdir(), 'boreal-nothing-here')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no cluster in/);
});
