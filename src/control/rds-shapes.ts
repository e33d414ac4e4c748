// The control plane's records in the shapes of the RDS API's responses (DBCluster,
// DBInstance, Event), as the CLI prints them and the AWS SDK reads them.

import { Settings } from '../sql/settings.js';
import { DEFAULT_PARAMETER_GROUP, MODIFIABLE_PARAMETERS, type ClusterRecord, type EndpointRecord, type EventRecord, type InstanceStatus, type ParameterGroupKind, type ParameterGroupRecord } from './control-plane.js';

export const ENGINE = 'aurora-postgresql';
export const ENGINE_VERSION = '15.8';

const RDS_STATUS: Record<InstanceStatus['state'], string> = {
  creating: 'creating',
  available: 'available',
  stopping: 'rebooting',
  failed: 'failed',
  deleting: 'deleting',
};

export function dbInstanceShape(instance: InstanceStatus): Record<string, unknown> {
  return {
    DBInstanceIdentifier: instance.id,
    DBClusterIdentifier: instance.clusterId,
    DBInstanceClass: 'db.boreal.local',
    Engine: ENGINE,
    EngineVersion: ENGINE_VERSION,
    DBInstanceStatus: RDS_STATUS[instance.state],
    Endpoint: { Address: instance.host, Port: instance.port },
    AvailabilityZone: instance.availabilityZone,
    PromotionTier: instance.promotionTier,
    InstanceCreateTime: instance.createdAt,
    MasterUsername: 'postgres',
    DBParameterGroups: [{ DBParameterGroupName: instance.parameterGroup ?? DEFAULT_PARAMETER_GROUP, ParameterApplyStatus: instance.parameterStatus }],
    // Not an RDS field: which role the instance has now (RDS tells it through DBClusterMembers).
    BorealRole: instance.role,
    BorealProcessId: instance.pid,
    BorealReplicaLagMs: instance.replicaLagMs,
    BorealReplicaLag: instance.replicaLag,
  };
}

export function dbClusterShape(cluster: ClusterRecord, instances: InstanceStatus[]): Record<string, unknown> {
  const writer = instances.find((instance) => instance.role === 'writer');
  return {
    DBClusterIdentifier: cluster.id,
    // A cluster without instances (just made, or emptied before deletion) is available.
    Status: cluster.status === 'deleting' ? 'deleting' : writer === undefined || writer.state === 'available' ? 'available' : 'failing-over',
    Engine: ENGINE,
    EngineVersion: ENGINE_VERSION,
    Endpoint: '127.0.0.1',
    ReaderEndpoint: '127.0.0.1',
    Port: cluster.port,
    BorealVolume: cluster.volume ?? null,
    BorealReaderPort: cluster.readerPort,
    MasterUsername: 'postgres',
    MultiAZ: new Set(instances.map((instance) => instance.availabilityZone)).size > 1,
    AvailabilityZones: [...new Set(instances.map((instance) => instance.availabilityZone))].sort(),
    ClusterCreateTime: cluster.createdAt,
    DBClusterParameterGroup: cluster.parameterGroup ?? DEFAULT_PARAMETER_GROUP,
    DBClusterMembers: instances.map((instance) => ({ DBInstanceIdentifier: instance.id, IsClusterWriter: instance.role === 'writer', PromotionTier: instance.promotionTier, DBClusterParameterGroupStatus: instance.parameterStatus })),
  };
}

export function eventShape(event: EventRecord): Record<string, unknown> {
  return { SourceIdentifier: event.sourceId, SourceType: event.sourceType, Message: event.message, Date: event.time, EventCategories: [] };
}

export function parameterGroupShape(kind: ParameterGroupKind, group: ParameterGroupRecord): Record<string, unknown> {
  if (kind === 'instance') {
    return { DBParameterGroupName: group.name, DBParameterGroupFamily: group.family, Description: group.description, DBParameterGroupArn: `arn:boreal:rds:local:000000000000:pg:${group.name}` };
  }
  return {
    DBClusterParameterGroupName: group.name,
    DBParameterGroupFamily: group.family,
    Description: group.description,
    DBClusterParameterGroupArn: `arn:boreal:rds:local:000000000000:cluster-pg:${group.name}`,
  };
}

/** describe-db-[cluster-]parameters: every modifiable parameter, the group's value or the default. */
export function parametersShape(group: ParameterGroupRecord): Array<Record<string, unknown>> {
  const defaults = new Settings();
  return MODIFIABLE_PARAMETERS.map((name) => {
    const set = group.parameters[name];
    return {
      ParameterName: name,
      ParameterValue: set ?? defaults.get(name),
      Source: set !== undefined ? 'user' : 'engine-default',
      ApplyType: 'static',
      DataType: name.endsWith('timeout') || name === 'max_connections' ? 'integer' : 'string',
      IsModifiable: true,
      ApplyMethod: 'pending-reboot',
    };
  });
}

/** The cluster's endpoints as describe-db-cluster-endpoints lists them: WRITER, READER, then custom ones. */
export function clusterEndpointShapes(cluster: ClusterRecord, endpoints: EndpointRecord[]): Array<Record<string, unknown>> {
  const builtIn = (type: 'WRITER' | 'READER', port: number): Record<string, unknown> => ({ DBClusterIdentifier: cluster.id, Endpoint: '127.0.0.1', Status: 'available', EndpointType: type, BorealPort: port });
  return [builtIn('WRITER', cluster.port), builtIn('READER', cluster.readerPort), ...endpoints.map((endpoint) => endpointShape(cluster, endpoint))];
}

export function endpointShape(cluster: ClusterRecord, endpoint: EndpointRecord): Record<string, unknown> {
  return {
    DBClusterEndpointIdentifier: endpoint.id,
    DBClusterIdentifier: cluster.id,
    DBClusterEndpointResourceIdentifier: `cluster-endpoint-${endpoint.id}`,
    Endpoint: '127.0.0.1',
    Status: 'available',
    EndpointType: 'CUSTOM',
    CustomEndpointType: endpoint.type,
    StaticMembers: endpoint.staticMembers,
    ExcludedMembers: endpoint.excludedMembers,
    BorealPort: endpoint.port,
  };
}
