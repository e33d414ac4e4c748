// Many clusters on one storage fleet, as a user drives them with `boreal <aws rds verb>`:
// create-db-cluster makes a second cluster (its own volume, endpoints and master password)
// beside the one `up` made; its first instance is its writer; its data is its own; it fails
// over on its own; a killed control plane comes back with both; delete-db-cluster (once its
// instances are gone) drops its volume on every storage node and leaves the first cluster
// untouched; the first cluster can be deleted too, and does not come back with the next up.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { queryNodeStatus } from '../net/node-request.js';
import { borealJson, clusterPorts, expectRdsFault, runBoreal } from '../testing/fleet.js';

const json = borealJson;

interface DBCluster {
  DBClusterIdentifier: string;
  Status: string;
  Port: number;
  BorealReaderPort: number;
  BorealVolume: string | null;
  DBClusterMembers: Array<{ DBInstanceIdentifier: string; IsClusterWriter: boolean }>;
}

interface DBInstance {
  DBInstanceIdentifier: string;
  DBClusterIdentifier: string;
  DBInstanceStatus: string;
  BorealRole: string;
}

/** Runs one statement on a fresh connection, retrying while the endpoint has nothing to route to. */
async function query(url: string, sql: string, attempts = 100): Promise<unknown[]> {
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client(url);
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.query(sql)).rows;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= attempts || (code !== undefined && code !== '57P03')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

test('create-db-cluster and delete-db-cluster: a second cluster on the same fleet, with its own volume, endpoints and failover', { timeout: 240000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-clusters-'));
  const { storageBase, sqlPort } = await clusterPorts();
  const at = ['--data-dir', dataDir];
  const expectFault = (args: string[], code: string): Promise<void> => expectRdsFault([...args, ...at], code);
  const waitAvailable = async (id: string): Promise<DBInstance> => {
    for (let attempt = 0; attempt < 300; attempt++) {
      const instance = (await json<{ DBInstances: DBInstance[] }>(['describe-db-instances', ...at, '--db-instance-identifier', id])).DBInstances[0]!;
      if (instance.DBInstanceStatus === 'available') return instance;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`${id} never became available`);
  };
  try {
    const up = await runBoreal(['up', ...at, '--port', String(sqlPort), '--storage-port-base', String(storageBase), '--detach']);
    assert.equal(up.code, 0, up.stderr);
    const firstUrl = `postgres://postgres:postgres@127.0.0.1:${sqlPort}/postgres`;
    await query(firstUrl, 'CREATE TABLE item (id int PRIMARY KEY, name text)');
    await query(firstUrl, "INSERT INTO item VALUES (1, 'first cluster')");

    // A second cluster: a volume of its own on the same six nodes, no instances yet.
    const made = (await json<{ DBCluster: DBCluster }>(['create-db-cluster', ...at, '--db-cluster-identifier', 'orders', '--engine', 'aurora-postgresql', '--master-username', 'postgres', '--master-user-password', 'orders-secret-1'])).DBCluster;
    assert.deepStrictEqual([made.DBClusterIdentifier, made.Status, made.Port, made.BorealReaderPort, made.DBClusterMembers.length], ['orders', 'available', sqlPort + 60, sqlPort + 61, 0]);
    assert.match(made.BorealVolume ?? '', /^orders-[0-9a-f]{8}$/);
    await expectFault(['create-db-cluster', '--db-cluster-identifier', 'orders', '--engine', 'aurora-postgresql'], 'DBClusterAlreadyExistsFault');
    await expectFault(['create-db-cluster', '--db-cluster-identifier', 'other', '--engine', 'mysql'], 'InvalidParameterValue');
    await expectFault(['create-db-cluster', '--db-cluster-identifier', 'other'], 'MissingParameter');
    await expectFault(['create-db-cluster', '--db-cluster-identifier', '9lives', '--engine', 'aurora-postgresql'], 'InvalidParameterValue');
    await expectFault(['delete-db-cluster', '--db-cluster-identifier', 'nope', '--skip-final-snapshot'], 'DBClusterNotFoundFault');
    await expectFault(['create-db-instance', '--db-cluster-identifier', 'nope', '--db-instance-identifier', 'x1'], 'DBClusterNotFoundFault');

    // Its first instance is its writer; its endpoints take its own password; its data is its own.
    const writer = (await json<{ DBInstance: DBInstance }>(['create-db-instance', ...at, '--db-cluster-identifier', 'orders', '--db-instance-identifier', 'orders-1'])).DBInstance;
    assert.deepStrictEqual([writer.BorealRole, writer.DBClusterIdentifier], ['writer', 'orders']);
    await waitAvailable('orders-1');
    const ordersUrl = `postgres://postgres:orders-secret-1@127.0.0.1:${sqlPort + 60}/postgres`;
    await query(ordersUrl, 'CREATE TABLE purchase (id int PRIMARY KEY, amount int)');
    await query(ordersUrl, 'INSERT INTO purchase SELECT g, g * 10 FROM generate_series(1, 500) g');
    await assert.rejects(query(`postgres://postgres:postgres@127.0.0.1:${sqlPort + 60}/postgres`, 'SELECT 1'), (error: Error & { code?: string }) => error.code === '28P01');
    await assert.rejects(query(firstUrl, 'SELECT count(*) FROM purchase'), (error: Error & { code?: string }) => error.code === '42P01', 'the first cluster does not see the second one\'s tables');
    await assert.rejects(query(ordersUrl, 'SELECT count(*) FROM item'), (error: Error & { code?: string }) => error.code === '42P01');

    // A reader of its own behind its reader endpoint.
    const reader = (await json<{ DBInstance: DBInstance }>(['create-db-instance', ...at, '--db-cluster-identifier', 'orders', '--db-instance-identifier', 'orders-2', '--promotion-tier', '0'])).DBInstance;
    assert.equal(reader.BorealRole, 'reader');
    await waitAvailable('orders-2');
    const ordersReaderUrl = `postgres://postgres:orders-secret-1@127.0.0.1:${sqlPort + 61}/postgres`;
    assert.deepEqual(await query(ordersReaderUrl, 'SELECT count(*)::int AS n, sum(amount)::int AS total FROM purchase'), [{ n: 500, total: 1252500 }]);
    assert.deepEqual(await query(ordersReaderUrl, 'SHOW transaction_read_only'), [{ transaction_read_only: 'on' }]);

    // kill -9 of the control plane: it comes back with both clusters and adopts their instances.
    const status = JSON.parse((await runBoreal(['status', ...at, '--json'])).stdout) as Array<{ role: string; pid: number }>;
    process.kill(status.find((entry) => entry.role === 'control-plane')!.pid, 'SIGKILL');
    let clusters: DBCluster[] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      const result = await runBoreal(['describe-db-clusters', ...at]);
      if (result.code === 0) {
        clusters = (JSON.parse(result.stdout) as { DBClusters: DBCluster[] }).DBClusters;
        if (clusters.length === 2 && clusters.every((cluster) => cluster.Status === 'available')) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepStrictEqual(clusters.map((cluster) => `${cluster.DBClusterIdentifier} ${cluster.DBClusterMembers.map((member) => `${member.DBInstanceIdentifier}${member.IsClusterWriter ? '*' : ''}`).sort().join(',')}`).sort(), ['boreal-cluster boreal-instance-1*,boreal-instance-2', 'orders orders-1*,orders-2']);

    // It fails over on its own: the first cluster's writer stays where it is.
    const failedOver = (await json<{ DBCluster: DBCluster }>(['failover-db-cluster', ...at, '--db-cluster-identifier', 'orders'])).DBCluster;
    assert.deepStrictEqual(failedOver.DBClusterMembers.filter((member) => member.IsClusterWriter).map((member) => member.DBInstanceIdentifier), ['orders-2']);
    assert.deepEqual(await query(ordersUrl, 'INSERT INTO purchase VALUES (501, 5010) RETURNING id'), [{ id: 501 }]);
    const first = (await json<{ DBClusters: DBCluster[] }>(['describe-db-clusters', ...at, '--db-cluster-identifier', 'boreal-cluster'])).DBClusters[0]!;
    assert.deepStrictEqual(first.DBClusterMembers.filter((member) => member.IsClusterWriter).map((member) => member.DBInstanceIdentifier), ['boreal-instance-1']);

    // delete-db-cluster: not while it has instances, not without --skip-final-snapshot.
    await expectFault(['delete-db-cluster', '--db-cluster-identifier', 'orders', '--skip-final-snapshot'], 'InvalidDBClusterStateFault');
    await expectFault(['delete-db-cluster', '--db-cluster-identifier', 'orders'], 'InvalidParameterCombination');
    await json(['delete-db-instance', ...at, '--db-instance-identifier', 'orders-1']);
    await json(['delete-db-instance', ...at, '--db-instance-identifier', 'orders-2']); // its writer, and last instance
    const metadataPath = path.join(dataDir, 'volumes', `${made.BorealVolume}.json`);
    assert.ok(fs.existsSync(metadataPath));
    const deleting = (await json<{ DBCluster: DBCluster }>(['delete-db-cluster', ...at, '--db-cluster-identifier', 'orders', '--skip-final-snapshot'])).DBCluster;
    assert.equal(deleting.Status, 'deleting');
    let left: string[] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      left = (await json<{ DBClusters: DBCluster[] }>(['describe-db-clusters', ...at])).DBClusters.map((cluster) => cluster.DBClusterIdentifier);
      if (left.length === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepStrictEqual(left, ['boreal-cluster']);
    assert.ok(!fs.existsSync(metadataPath), 'its volume metadata is gone');
    // No storage node keeps a segment of its volume; each still has the first cluster's.
    for (let node = 0; node < 6; node++) {
      const reply = await queryNodeStatus('127.0.0.1', storageBase + node, 3000);
      assert.ok(reply !== undefined, `storage node on port ${storageBase + node} answers`);
      const names = reply.segments.map((segment) => segment.segment as string);
      assert.deepStrictEqual(names.filter((name) => name.startsWith(`${made.BorealVolume}/`)), []);
      assert.ok(names.some((name) => /^pg\d+@node\d+$/.test(name)));
    }
    await expectFault(['describe-db-clusters', '--db-cluster-identifier', 'orders'], 'DBClusterNotFoundFault');
    const events = (await json<{ Events: Array<{ SourceIdentifier: string; Message: string }> }>(['describe-events', ...at, '--source-identifier', 'orders'])).Events.map((event) => event.Message);
    assert.ok(events.includes('DB cluster deleted'), JSON.stringify(events));

    // The first cluster never noticed.
    assert.deepEqual(await query(firstUrl, "INSERT INTO item VALUES (2, 'after') RETURNING id"), [{ id: 2 }]);
    assert.deepEqual(await query(`postgres://postgres:postgres@127.0.0.1:${sqlPort + 1}/postgres`, 'SELECT count(*)::int AS n FROM item', 200), [{ n: 2 }]);

    // The first cluster can go too (its volume is the fleet's unnamed one), and stays gone
    // across down and up.
    await json(['delete-db-instance', ...at, '--db-instance-identifier', 'boreal-instance-2']);
    await json(['delete-db-instance', ...at, '--db-instance-identifier', 'boreal-instance-1']);
    await json(['delete-db-cluster', ...at, '--db-cluster-identifier', 'boreal-cluster', '--skip-final-snapshot']);
    for (let attempt = 0; attempt < 200; attempt++) {
      left = (await json<{ DBClusters: DBCluster[] }>(['describe-db-clusters', ...at])).DBClusters.map((cluster) => cluster.DBClusterIdentifier);
      if (left.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepStrictEqual(left, []);
    for (let node = 0; node < 6; node++) assert.deepStrictEqual((await queryNodeStatus('127.0.0.1', storageBase + node, 3000))?.segments, [], 'no segment is left on any node');
    assert.equal((await runBoreal(['down', ...at])).code, 0);
    const again = await runBoreal(['up', ...at, '--detach']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepStrictEqual((await json<{ DBClusters: DBCluster[] }>(['describe-db-clusters', ...at])).DBClusters, []);
    for (let node = 0; node < 6; node++) assert.deepStrictEqual((await queryNodeStatus('127.0.0.1', storageBase + node, 3000))?.segments, []);
  } finally {
    await runBoreal(['down', ...at]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
