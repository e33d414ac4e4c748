// The management verbs as a user runs them (`boreal <aws rds verb>`), on a real cluster:
// describe, a reader created on demand (serving without a data copy), a requested failover
// to the best tier, deleting an instance, RDS-shaped errors with a non-zero exit, and a
// control plane killed with SIGKILL that comes back with all of its metadata.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CreateDBInstanceCommand, DeleteDBInstanceCommand, DescribeDBClusterEndpointsCommand, DescribeDBClusterParameterGroupsCommand, DescribeDBClustersCommand, DescribeDBInstancesCommand, DescribeDBParameterGroupsCommand, DescribeEventsCommand, FailoverDBClusterCommand, RDSClient } from '@aws-sdk/client-rds';
import pg from 'pg';
import { borealJson, clusterPorts, expectRdsFault, runBoreal } from '../testing/fleet.js';

const boreal = (args: string[]): ReturnType<typeof runBoreal> => runBoreal(args);

const json = borealJson;

interface DBInstance {
  DBInstanceIdentifier: string;
  DBInstanceStatus: string;
  PromotionTier: number;
  AvailabilityZone: string;
  Endpoint: { Address: string; Port: number };
  BorealRole: string;
}

interface DBCluster {
  DBClusterIdentifier: string;
  Status: string;
  DBClusterMembers: Array<{ DBInstanceIdentifier: string; IsClusterWriter: boolean; PromotionTier: number; DBClusterParameterGroupStatus?: string }>;
}


test('aws rds verbs: describe, create-db-instance, failover-db-cluster, delete-db-instance, errors, control plane restart', { timeout: 240000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-rds-'));
  const { storageBase: base, sqlPort } = await clusterPorts();
  const at = ['--data-dir', dataDir];
  try {
    const up = await boreal(['up', ...at, '--port', String(sqlPort), '--storage-port-base', String(base), '--detach']);
    assert.equal(up.code, 0, up.stderr);
    const writerUrl = `postgres://postgres:postgres@127.0.0.1:${sqlPort}/postgres`;
    const setup = new pg.Client(writerUrl);
    await setup.connect();
    await setup.query('CREATE TABLE item (id int PRIMARY KEY, name text)');
    await setup.query("INSERT INTO item SELECT g, 'item ' || g FROM generate_series(1, 1000) g");
    await setup.end();

    const clusters = (await json<{ DBClusters: DBCluster[] }>(['describe-db-clusters', ...at])).DBClusters;
    assert.equal(clusters.length, 1);
    assert.equal(clusters[0]!.Status, 'available');
    assert.deepStrictEqual(clusters[0]!.DBClusterMembers.map((member) => [member.DBInstanceIdentifier, member.IsClusterWriter]), [['boreal-instance-1', true], ['boreal-instance-2', false]]);

    // A reader on demand: it serves the writer's data from the shared volume.
    const started = Date.now();
    const created = await json<{ DBInstance: DBInstance }>(['create-db-instance', ...at, '--db-cluster-identifier', 'boreal-cluster', '--db-instance-identifier', 'reporting-1', '--promotion-tier', '0']);
    assert.equal(created.DBInstance.DBInstanceStatus, 'creating');
    assert.equal(created.DBInstance.PromotionTier, 0);
    let reader: DBInstance | undefined;
    for (let attempt = 0; attempt < 300; attempt++) {
      reader = (await json<{ DBInstances: DBInstance[] }>(['describe-db-instances', ...at, '--db-instance-identifier', 'reporting-1'])).DBInstances[0];
      if (reader?.DBInstanceStatus === 'available') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(reader?.DBInstanceStatus, 'available');
    const direct = new pg.Client(`postgres://postgres:postgres@127.0.0.1:${reader!.Endpoint.Port}/postgres`);
    await direct.connect();
    assert.deepEqual((await direct.query('SELECT count(*)::int AS n FROM item')).rows, [{ n: 1000 }]);
    console.log(`# create-db-instance to first query on the new reader: ${Date.now() - started} ms (1,000 rows)`);
    await direct.end();
    assert.notEqual(reader!.AvailabilityZone, 'az-a', 'the new reader goes to a less used AZ');

    // Errors in the RDS shape, with a non-zero exit.
    const expectFault = (args: string[], code: string): Promise<void> => expectRdsFault([...args, ...at], code);
    await expectFault(['describe-db-instances', '--db-instance-identifier', 'nope'], 'DBInstanceNotFound');
    await expectFault(['describe-db-clusters', '--db-cluster-identifier', 'nope'], 'DBClusterNotFoundFault');
    await expectFault(['create-db-instance', '--db-cluster-identifier', 'boreal-cluster', '--db-instance-identifier', '1-bad--name'], 'InvalidParameterValue');
    await expectFault(['create-db-instance', '--db-cluster-identifier', 'boreal-cluster', '--db-instance-identifier', 'reporting-1'], 'DBInstanceAlreadyExists');
    await expectFault(['create-db-instance', '--db-cluster-identifier', 'boreal-cluster', '--db-instance-identifier', 'r9', '--promotion-tier', '16'], 'InvalidParameterValue');
    await expectFault(['delete-db-instance', '--db-instance-identifier', 'ghost'], 'DBInstanceNotFound');
    await expectFault(['failover-db-cluster', '--db-cluster-identifier', 'nope'], 'DBClusterNotFoundFault');
    const badFlag = await boreal(['describe-db-instances', '--db-instance-id', 'x', ...at]);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /unknown flag --db-instance-id/);

    // A requested failover promotes the best tier (reporting-1, tier 0) and writes go on.
    const failover = await json<{ DBCluster: DBCluster }>(['failover-db-cluster', ...at, '--db-cluster-identifier', 'boreal-cluster']);
    assert.deepStrictEqual(failover.DBCluster.DBClusterMembers.filter((member) => member.IsClusterWriter).map((member) => member.DBInstanceIdentifier), ['reporting-1']);
    const after = new pg.Client(writerUrl);
    await after.connect();
    await after.query("INSERT INTO item VALUES (1001, 'after failover')");
    await after.end();

    // Deleting an instance (the old writer, now a reader).
    const deleted = await json<{ DBInstance: DBInstance }>(['delete-db-instance', ...at, '--db-instance-identifier', 'boreal-instance-1']);
    assert.equal(deleted.DBInstance.DBInstanceIdentifier, 'boreal-instance-1');
    const left = (await json<{ DBInstances: DBInstance[] }>(['describe-db-instances', ...at])).DBInstances.map((instance) => `${instance.DBInstanceIdentifier} ${instance.BorealRole}`).sort();
    assert.deepStrictEqual(left, ['boreal-instance-2 reader', 'reporting-1 writer']);

    // kill -9 of the control plane: `up` restarts it, and it has every record and event.
    const status = JSON.parse((await boreal(['status', ...at, '--json'])).stdout) as Array<{ role: string; pid: number }>;
    const control = status.find((entry) => entry.role === 'control-plane')!;
    process.kill(control.pid, 'SIGKILL');
    let again: DBInstance[] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      const result = await boreal(['describe-db-instances', ...at]);
      if (result.code === 0) {
        again = (JSON.parse(result.stdout) as { DBInstances: DBInstance[] }).DBInstances;
        if (again.every((instance) => instance.DBInstanceStatus === 'available')) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepStrictEqual(again.map((instance) => `${instance.DBInstanceIdentifier} ${instance.BorealRole} ${instance.DBInstanceStatus}`).sort(), ['boreal-instance-2 reader available', 'reporting-1 writer available']);
    const events = (await json<{ Events: Array<{ SourceIdentifier: string; Message: string }> }>(['describe-events', ...at])).Events;
    assert.ok(events.some((event) => event.Message === 'completed failover to DB instance reporting-1' || /^completed failover to DB instance reporting-1 /.test(event.Message)), JSON.stringify(events));
    assert.ok(events.some((event) => event.SourceIdentifier === 'boreal-instance-1' && event.Message === 'DB instance deleted'));
    // The AWS SDK's RDS client, pointed at the control plane with any credentials.
    const rds = new RDSClient({ endpoint: `http://127.0.0.1:${base + 99}`, region: 'local-1', credentials: { accessKeyId: 'any', secretAccessKey: 'any' } });
    const sdkClusters = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'boreal-cluster' }));
    assert.equal(sdkClusters.DBClusters?.[0]?.DBClusterIdentifier, 'boreal-cluster');
    assert.equal(sdkClusters.DBClusters?.[0]?.Port, sqlPort);
    assert.deepStrictEqual(sdkClusters.DBClusters?.[0]?.DBClusterMembers?.filter((member) => member.IsClusterWriter === true).map((member) => member.DBInstanceIdentifier), ['reporting-1']);
    assert.ok(sdkClusters.DBClusters?.[0]?.ClusterCreateTime instanceof Date);
    await assert.rejects(rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'nope' })), (error: Error) => error.name === 'DBClusterNotFoundFault');
    await assert.rejects(rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'nope' })), (error: Error) => error.name === 'DBInstanceNotFoundFault' || error.name === 'DBInstanceNotFound');
    const sdkCreated = await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: 'sdk-reader', DBClusterIdentifier: 'boreal-cluster', Engine: 'aurora-postgresql', DBInstanceClass: 'db.r6g.large', PromotionTier: 2 }));
    assert.equal(sdkCreated.DBInstance?.DBInstanceIdentifier, 'sdk-reader');
    assert.equal(sdkCreated.DBInstance?.PromotionTier, 2);
    let sdkReader: string | undefined;
    for (let attempt = 0; attempt < 200 && sdkReader !== 'available'; attempt++) {
      sdkReader = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'sdk-reader' }))).DBInstances?.[0]?.DBInstanceStatus;
      if (sdkReader !== 'available') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(sdkReader, 'available');
    const sdkFailover = await rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'boreal-cluster', TargetDBInstanceIdentifier: 'sdk-reader' }));
    assert.deepStrictEqual(sdkFailover.DBCluster?.DBClusterMembers?.filter((member) => member.IsClusterWriter === true).map((member) => member.DBInstanceIdentifier), ['sdk-reader']);
    // Deleting the writer fails over first, to the best reader (reporting-1, tier 0), as in Aurora.
    const sdkDeleted = await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: 'sdk-reader' }));
    assert.equal(sdkDeleted.DBInstance?.DBInstanceStatus, 'deleting');
    const sdkInstances = (await rds.send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
    assert.deepStrictEqual(sdkInstances.map((instance) => instance.DBInstanceIdentifier).sort(), ['boreal-instance-2', 'reporting-1']);
    assert.equal(sdkInstances.find((instance) => instance.DBInstanceIdentifier === 'reporting-1')?.DBClusterIdentifier, 'boreal-cluster');
    assert.deepStrictEqual((await rds.send(new DescribeDBClustersCommand({}))).DBClusters?.[0]?.DBClusterMembers?.filter((member) => member.IsClusterWriter === true).map((member) => member.DBInstanceIdentifier), ['reporting-1']);
    assert.equal(sdkInstances.find((instance) => instance.DBInstanceIdentifier === 'reporting-1')?.Endpoint?.Port, reader!.Endpoint.Port);
    const sdkEvents = (await rds.send(new DescribeEventsCommand({ SourceType: 'db-cluster' }))).Events ?? [];
    assert.ok(sdkEvents.some((event) => /completed failover to DB instance sdk-reader/.test(event.Message ?? '')));
    assert.ok(sdkEvents.every((event) => event.Date instanceof Date && event.SourceIdentifier === 'boreal-cluster'));

    // A cluster parameter group: made, changed, attached; an instance picks it up when it reboots.
    const made = await json<{ DBClusterParameterGroup: { DBClusterParameterGroupName: string } }>(['create-db-cluster-parameter-group', ...at, '--db-cluster-parameter-group-name', 'tight', '--db-parameter-group-family', 'aurora-postgresql15', '--description', 'short timeouts']);
    assert.equal(made.DBClusterParameterGroup.DBClusterParameterGroupName, 'tight');
    await json(['modify-db-cluster-parameter-group', ...at, '--db-cluster-parameter-group-name', 'tight', '--parameters', 'ParameterName=statement_timeout,ParameterValue=1500ms,ApplyMethod=pending-reboot ParameterName=max_connections,ParameterValue=50,ApplyMethod=pending-reboot']);
    await expectFault(['modify-db-cluster-parameter-group', '--db-cluster-parameter-group-name', 'default.aurora-postgresql15', '--parameters', 'ParameterName=statement_timeout,ParameterValue=1s'], 'InvalidDBParameterGroupState');
    await expectFault(['modify-db-cluster-parameter-group', '--db-cluster-parameter-group-name', 'tight', '--parameters', 'ParameterName=shared_buffers,ParameterValue=1GB'], 'InvalidParameterValue');
    await expectFault(['modify-db-cluster-parameter-group', '--db-cluster-parameter-group-name', 'tight', '--parameters', 'ParameterName=lock_timeout,ParameterValue=soon'], 'InvalidParameterValue');
    await expectFault(['describe-db-cluster-parameters', '--db-cluster-parameter-group-name', 'loose'], 'DBParameterGroupNotFound');
    await expectFault(['modify-db-cluster', '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-parameter-group-name', 'loose'], 'DBParameterGroupNotFound');
    const userParameters = (await json<{ Parameters: Array<{ ParameterName: string; ParameterValue: string }> }>(['describe-db-cluster-parameters', ...at, '--db-cluster-parameter-group-name', 'tight', '--source', 'user'])).Parameters;
    assert.deepStrictEqual(userParameters.map((parameter) => `${parameter.ParameterName}=${parameter.ParameterValue}`).sort(), ['max_connections=50', 'statement_timeout=1500ms']);
    const modified = await json<{ DBCluster: DBCluster & { DBClusterParameterGroup: string } }>(['modify-db-cluster', ...at, '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-parameter-group-name', 'tight']);
    assert.equal(modified.DBCluster.DBClusterParameterGroup, 'tight');
    assert.ok(modified.DBCluster.DBClusterMembers.every((member) => member.DBClusterParameterGroupStatus === 'pending-reboot'));
    await json(['reboot-db-instance', ...at, '--db-instance-identifier', 'reporting-1']);
    const tuned = new pg.Client(writerUrl);
    await tuned.connect();
    assert.deepEqual((await tuned.query('SHOW statement_timeout')).rows, [{ statement_timeout: '1500ms' }]);
    assert.deepEqual((await tuned.query('SHOW max_connections')).rows, [{ max_connections: '50' }]);
    await tuned.end();
    const members = (await json<{ DBClusters: Array<{ DBClusterMembers: Array<{ DBInstanceIdentifier: string; DBClusterParameterGroupStatus: string }> }> }>(['describe-db-clusters', ...at])).DBClusters[0]!.DBClusterMembers;
    assert.deepStrictEqual(members.map((member) => `${member.DBInstanceIdentifier} ${member.DBClusterParameterGroupStatus}`).sort(), ['boreal-instance-2 pending-reboot', 'reporting-1 in-sync']);
    const sdkGroups = (await rds.send(new DescribeDBClusterParameterGroupsCommand({}))).DBClusterParameterGroups ?? [];
    assert.deepStrictEqual(sdkGroups.map((group) => group.DBClusterParameterGroupName).sort(), ['default.aurora-postgresql15', 'tight']);

    // A DB (instance) parameter group overrides the cluster group's values on the instances
    // that use it, from their next start; groups in use cannot be deleted.
    await json(['create-db-parameter-group', ...at, '--db-parameter-group-name', 'reporting', '--db-parameter-group-family', 'aurora-postgresql15', '--description', 'longer timeout']);
    await json(['modify-db-parameter-group', ...at, '--db-parameter-group-name', 'reporting', '--parameters', 'ParameterName=statement_timeout,ParameterValue=2500ms,ApplyMethod=pending-reboot']);
    await expectFault(['modify-db-instance', '--db-instance-identifier', 'boreal-instance-2', '--db-parameter-group-name', 'nope'], 'DBParameterGroupNotFound');
    const repointed = await json<{ DBInstance: DBInstance & { DBParameterGroups: Array<{ DBParameterGroupName: string; ParameterApplyStatus: string }> } }>(['modify-db-instance', ...at, '--db-instance-identifier', 'boreal-instance-2', '--db-parameter-group-name', 'reporting', '--apply-immediately']);
    assert.deepStrictEqual(repointed.DBInstance.DBParameterGroups, [{ DBParameterGroupName: 'reporting', ParameterApplyStatus: 'pending-reboot' }]);
    await expectFault(['delete-db-parameter-group', '--db-parameter-group-name', 'reporting'], 'InvalidDBParameterGroupState');
    await expectFault(['delete-db-cluster-parameter-group', '--db-cluster-parameter-group-name', 'tight'], 'InvalidDBParameterGroupState');
    await expectFault(['delete-db-parameter-group', '--db-parameter-group-name', 'default.aurora-postgresql15'], 'InvalidDBParameterGroupState');
    await json(['reboot-db-instance', ...at, '--db-instance-identifier', 'boreal-instance-2']);
    const second = (await json<{ DBInstances: Array<DBInstance & { DBParameterGroups: Array<{ DBParameterGroupName: string; ParameterApplyStatus: string }> }> }>(['describe-db-instances', ...at, '--db-instance-identifier', 'boreal-instance-2'])).DBInstances[0]!;
    assert.deepStrictEqual(second.DBParameterGroups, [{ DBParameterGroupName: 'reporting', ParameterApplyStatus: 'in-sync' }]);
    const ownGroup = new pg.Client(`postgres://postgres:postgres@127.0.0.1:${second.Endpoint.Port}/postgres`);
    await ownGroup.connect();
    assert.deepEqual((await ownGroup.query('SHOW statement_timeout')).rows, [{ statement_timeout: '2500ms' }], 'the DB parameter group wins');
    assert.deepEqual((await ownGroup.query('SHOW max_connections')).rows, [{ max_connections: '50' }], 'the cluster group still applies where the DB group is silent');
    await ownGroup.end();
    const dbParameters = (await json<{ Parameters: Array<{ ParameterName: string; ParameterValue: string }> }>(['describe-db-parameters', ...at, '--db-parameter-group-name', 'reporting', '--source', 'user'])).Parameters;
    assert.deepStrictEqual(dbParameters.map((parameter) => `${parameter.ParameterName}=${parameter.ParameterValue}`), ['statement_timeout=2500ms']);
    await json(['create-db-parameter-group', ...at, '--db-parameter-group-name', 'spare', '--db-parameter-group-family', 'aurora-postgresql15', '--description', 'unused']);
    const spareDeleted = await boreal(['delete-db-parameter-group', ...at, '--db-parameter-group-name', 'spare']);
    assert.equal(spareDeleted.code, 0, spareDeleted.stderr);
    await expectFault(['describe-db-parameter-groups', '--db-parameter-group-name', 'spare'], 'DBParameterGroupNotFound');
    const sdkDbGroups = (await rds.send(new DescribeDBParameterGroupsCommand({}))).DBParameterGroups ?? [];
    assert.deepStrictEqual(sdkDbGroups.map((group) => group.DBParameterGroupName).sort(), ['default.aurora-postgresql15', 'reporting']);

    // Custom endpoints: a READER one over boreal-instance-2, an ANY one over the writer.
    const analytics = await json<{ BorealPort: number; CustomEndpointType: string }>(['create-db-cluster-endpoint', ...at, '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-endpoint-identifier', 'analytics', '--endpoint-type', 'READER', '--static-members', 'boreal-instance-2']);
    assert.equal(analytics.CustomEndpointType, 'READER');
    const readWrite = await json<{ BorealPort: number }>(['create-db-cluster-endpoint', ...at, '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-endpoint-identifier', 'all-rw', '--endpoint-type', 'ANY', '--static-members', 'reporting-1']);
    assert.notEqual(analytics.BorealPort, readWrite.BorealPort);
    await expectFault(['create-db-cluster-endpoint', '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-endpoint-identifier', 'analytics', '--endpoint-type', 'READER'], 'DBClusterEndpointAlreadyExistsFault');
    await expectFault(['create-db-cluster-endpoint', '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-endpoint-identifier', 'e3', '--endpoint-type', 'WRITER'], 'InvalidParameterValue');
    await expectFault(['create-db-cluster-endpoint', '--db-cluster-identifier', 'boreal-cluster', '--db-cluster-endpoint-identifier', 'e4', '--endpoint-type', 'ANY', '--static-members', 'ghost'], 'DBInstanceNotFound');
    const viaEndpoint = async (port: number, sql: string): Promise<unknown[]> => {
      for (let attempt = 0; ; attempt++) {
        const client = new pg.Client(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`);
        try {
          await client.connect();
          return (await client.query(sql)).rows;
        } catch (error) {
          if (attempt >= 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        } finally {
          await client.end().catch(() => undefined);
        }
      }
    };
    assert.deepEqual(await viaEndpoint(analytics.BorealPort, 'SHOW transaction_read_only'), [{ transaction_read_only: 'on' }]);
    assert.deepEqual(await viaEndpoint(readWrite.BorealPort, "INSERT INTO item VALUES (1002, 'via a custom endpoint') RETURNING id"), [{ id: 1002 }]);
    const sdkEndpoints = (await rds.send(new DescribeDBClusterEndpointsCommand({ DBClusterIdentifier: 'boreal-cluster' }))).DBClusterEndpoints ?? [];
    assert.deepStrictEqual(sdkEndpoints.map((endpoint) => `${endpoint.EndpointType} ${endpoint.DBClusterEndpointIdentifier ?? ''} ${endpoint.CustomEndpointType ?? ''} ${(endpoint.StaticMembers ?? []).join(',')}`), ['WRITER   ', 'READER   ', 'CUSTOM all-rw ANY reporting-1', 'CUSTOM analytics READER boreal-instance-2']);
    await json(['delete-db-cluster-endpoint', ...at, '--db-cluster-endpoint-identifier', 'all-rw']);
    const left2 = (await json<{ DBClusterEndpoints: Array<{ EndpointType: string; DBClusterEndpointIdentifier?: string }> }>(['describe-db-cluster-endpoints', ...at])).DBClusterEndpoints;
    assert.deepStrictEqual(left2.map((endpoint) => endpoint.DBClusterEndpointIdentifier ?? endpoint.EndpointType), ['WRITER', 'READER', 'analytics']);
    rds.destroy();

    const final = new pg.Client(writerUrl);
    await final.connect();
    assert.deepEqual((await final.query('SELECT count(*)::int AS n FROM item')).rows, [{ n: 1002 }]);
    await final.end();
  } finally {
    await boreal(['down', ...at]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
