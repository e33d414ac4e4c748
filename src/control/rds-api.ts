// The RDS Query API (AWS Query protocol, Version=2014-10-31): form-encoded requests with an
// Action, XML responses and errors in the RDS shapes, so that the AWS SDK's RDS client and
// the AWS CLI, pointed at the control plane with an endpoint override, can drive the
// cluster. Requests are not signature-checked: the control plane listens on loopback (or a
// private network) and any credentials are accepted, as the issue asks.

import { randomUUID } from 'node:crypto';
import type { ClusterRecord, ControlPlane, InstanceStatus } from './control-plane.js';
import { ControlError } from './control-plane.js';
import { clusterEndpointShapes, dbClusterShape, dbInstanceShape, endpointShape, ENGINE, eventShape, parameterGroupShape, parametersShape } from './rds-shapes.js';

const NAMESPACE = 'http://rds.amazonaws.com/doc/2014-10-31/';

/** The element that wraps each item of a list, by the list's name (from the RDS model). */
const LIST_MEMBERS: Record<string, string> = {
  DBClusters: 'DBCluster',
  DBInstances: 'DBInstance',
  Events: 'Event',
  DBClusterMembers: 'DBClusterMember',
  AvailabilityZones: 'AvailabilityZone',
  EventCategories: 'EventCategory',
  DBClusterParameterGroups: 'DBClusterParameterGroup',
  DBParameterGroups: 'DBParameterGroup',
  Parameters: 'Parameter',
  DBClusterEndpoints: 'DBClusterEndpointList',
};

/** Faults a client handles as "not found" get 404, as RDS answers them; the rest 400. */
const NOT_FOUND = new Set(['DBClusterNotFoundFault', 'DBInstanceNotFound', 'DBParameterGroupNotFound', 'DBClusterEndpointNotFoundFault']);

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (character) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[character]!);
}

function toXml(name: string, value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) {
    const member = LIST_MEMBERS[name] ?? 'member';
    return `<${name}>${value.map((item) => toXml(member, item)).join('')}</${name}>`;
  }
  if (typeof value === 'object') {
    return `<${name}>${Object.entries(value as Record<string, unknown>).map(([key, inner]) => toXml(key, inner)).join('')}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export interface QueryResponse {
  status: number;
  body: string;
}

export type QueryFormat = 'xml' | 'json';

function success(action: string, result: Record<string, unknown>, format: QueryFormat): QueryResponse {
  if (format === 'json') return { status: 200, body: JSON.stringify(result) };
  const inner = Object.entries(result).map(([key, value]) => toXml(key, value)).join('');
  return {
    status: 200,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NAMESPACE}"><${action}Result>${inner}</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
  };
}

export function queryError(code: string, message: string, format: QueryFormat = 'xml'): QueryResponse {
  const status = NOT_FOUND.has(code) ? 404 : 400;
  if (format === 'json') return { status, body: JSON.stringify({ Error: { Code: code, Message: message } }) };
  return {
    status,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${NAMESPACE}"><Error><Type>Sender</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  };
}

/**
 * The actions this API answers and the parameters each takes (the CLI's verbs are these in
 * kebab case, its flags these parameters: --db-cluster-identifier is DBClusterIdentifier).
 * List parameters (Name.member.N) and Parameters (Parameters.member.N.ParameterName) are
 * marked; ApplyImmediately, SkipFinalSnapshot and DBInstanceClass are accepted and ignored
 * (every change here applies at the next reboot; no snapshots; one instance class).
 */
export const ACTION_PARAMETERS = {
  CreateDBCluster: ['DBClusterIdentifier', 'Engine', 'EngineVersion', 'MasterUsername', 'MasterUserPassword', 'DBClusterParameterGroupName', 'Port'],
  DescribeDBClusters: ['DBClusterIdentifier'],
  DeleteDBCluster: ['DBClusterIdentifier', 'SkipFinalSnapshot', 'FinalDBSnapshotIdentifier'],
  ModifyDBCluster: ['DBClusterIdentifier', 'DBClusterParameterGroupName', 'ApplyImmediately'],
  FailoverDBCluster: ['DBClusterIdentifier', 'TargetDBInstanceIdentifier'],
  DescribeDBInstances: ['DBInstanceIdentifier'],
  CreateDBInstance: ['DBClusterIdentifier', 'DBInstanceIdentifier', 'PromotionTier', 'AvailabilityZone', 'DBParameterGroupName', 'DBInstanceClass', 'Engine'],
  ModifyDBInstance: ['DBInstanceIdentifier', 'PromotionTier', 'DBParameterGroupName', 'ApplyImmediately'],
  DeleteDBInstance: ['DBInstanceIdentifier', 'SkipFinalSnapshot'],
  RebootDBInstance: ['DBInstanceIdentifier'],
  DescribeEvents: ['SourceIdentifier', 'SourceType', 'MaxRecords'],
  CreateDBClusterParameterGroup: ['DBClusterParameterGroupName', 'DBParameterGroupFamily', 'Description'],
  DescribeDBClusterParameterGroups: ['DBClusterParameterGroupName'],
  ModifyDBClusterParameterGroup: ['DBClusterParameterGroupName', 'Parameters[]'],
  DeleteDBClusterParameterGroup: ['DBClusterParameterGroupName'],
  DescribeDBClusterParameters: ['DBClusterParameterGroupName', 'Source'],
  CreateDBParameterGroup: ['DBParameterGroupName', 'DBParameterGroupFamily', 'Description'],
  DescribeDBParameterGroups: ['DBParameterGroupName'],
  ModifyDBParameterGroup: ['DBParameterGroupName', 'Parameters[]'],
  DeleteDBParameterGroup: ['DBParameterGroupName'],
  DescribeDBParameters: ['DBParameterGroupName', 'Source'],
  CreateDBClusterEndpoint: ['DBClusterIdentifier', 'DBClusterEndpointIdentifier', 'EndpointType', 'StaticMembers[]', 'ExcludedMembers[]'],
  DescribeDBClusterEndpoints: ['DBClusterIdentifier', 'DBClusterEndpointIdentifier'],
  DeleteDBClusterEndpoint: ['DBClusterEndpointIdentifier'],
} as const satisfies Record<string, readonly string[]>;

export type Action = keyof typeof ACTION_PARAMETERS;

/** One Query API call; `params` are the request's form fields (or query string). */
export async function handleQuery(plane: ControlPlane, params: URLSearchParams, format: QueryFormat = 'xml'): Promise<QueryResponse> {
  const action = params.get('Action') ?? '';
  const version = params.get('Version');
  if (version !== null && version !== '2014-10-31') return queryError('InvalidParameterValue', `Version ${version} is not supported; use 2014-10-31.`, format);
  if (!Object.hasOwn(ACTION_PARAMETERS, action)) return queryError('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`, format);
  try {
    return success(action, await runAction(plane, action as Action, params), format);
  } catch (error) {
    if (error instanceof ControlError) return queryError(error.code, error.message, format);
    throw error;
  }
}

/** An action's result in the RDS shapes (one implementation for the Query API and the CLI). */
async function runAction(plane: ControlPlane, action: Action, params: URLSearchParams): Promise<Record<string, unknown>> {
  const text = (name: string): string | undefined => params.get(name) ?? undefined;
  const required = (name: string): string => {
    const value = text(name);
    if (value === undefined || value === '') throw new ControlError('MissingParameter', `The request must contain the parameter ${name}.`);
    return value;
  };
  const integer = (name: string): number | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    if (!/^-?\d+$/.test(value)) throw new ControlError('InvalidParameterValue', `${name} must be an integer, got "${value}".`);
    return Number(value);
  };
  /** A list parameter: Name.member.1, Name.member.2, … (or Name.<Item>.N, as some SDKs send). */
  const list = (prefix: string, item = 'member'): string[] => {
    const values: string[] = [];
    for (let index = 1; ; index++) {
      const value = text(`${prefix}.member.${index}`) ?? text(`${prefix}.${item}.${index}`);
      if (value === undefined) return values;
      values.push(value);
    }
  };
  /** Parameters.member.N.ParameterName / .ParameterValue (ModifyDB[Cluster]ParameterGroup). */
  const parameterChanges = (): Array<{ name: string; value: string }> => {
    const changes: Array<{ name: string; value: string }> = [];
    for (let index = 1; ; index++) {
      const field = (key: string): string | undefined => text(`Parameters.Parameter.${index}.${key}`) ?? text(`Parameters.member.${index}.${key}`);
      const parameterName = field('ParameterName');
      if (parameterName === undefined) return changes;
      changes.push({ name: parameterName, value: field('ParameterValue') ?? '' });
    }
  };
  const members = (cluster: ClusterRecord): InstanceStatus[] => plane.listInstances().filter((instance) => instance.clusterId === cluster.id);
  const clusterShape = (id: string): Record<string, unknown> => {
    const cluster = plane.clusterNamed(id);
    return dbClusterShape(cluster, members(cluster));
  };
  const instanceShape = (id: string): Record<string, unknown> => {
    const instance = plane.listInstances().find((candidate) => candidate.id === id);
    if (instance === undefined) throw new ControlError('DBInstanceNotFound', `DBInstance ${id} not found.`);
    return dbInstanceShape(instance);
  };
  const groupKind = action.includes('DBCluster') ? 'cluster' : 'instance';
  const groupName = groupKind === 'cluster' ? 'DBClusterParameterGroupName' : 'DBParameterGroupName';
  switch (action) {
    case 'CreateDBCluster': {
      const engine = required('Engine');
      if (engine !== ENGINE) throw new ControlError('InvalidParameterValue', `Engine ${engine} is not supported; use ${ENGINE}.`);
      const version = text('EngineVersion');
      if (version !== undefined && !/^15(\.\d+)?$/.test(version)) throw new ControlError('InvalidParameterCombination', `Cannot find version ${version} for ${ENGINE}; this engine is PostgreSQL 15 compatible.`);
      const user = text('MasterUsername');
      if (user !== undefined && user !== 'postgres') throw new ControlError('InvalidParameterValue', 'MasterUsername must be postgres (the only role Boreal has so far).');
      const group = text('DBClusterParameterGroupName');
      const password = text('MasterUserPassword');
      const port = integer('Port');
      const cluster = await plane.createCluster({
        id: required('DBClusterIdentifier'),
        ...(group !== undefined ? { parameterGroup: group } : {}),
        ...(password !== undefined ? { masterPassword: password } : {}),
        ...(port !== undefined ? { port } : {}),
      });
      return { DBCluster: clusterShape(cluster.id) };
    }
    case 'DescribeDBClusters': {
      const id = text('DBClusterIdentifier');
      return { DBClusters: (id === undefined ? plane.listClusters().map((cluster) => cluster.id) : [id]).map(clusterShape) };
    }
    case 'DeleteDBCluster': {
      const id = required('DBClusterIdentifier');
      if (text('SkipFinalSnapshot') !== 'true') {
        throw new ControlError('InvalidParameterCombination', 'FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified, and Boreal takes no snapshots yet: give SkipFinalSnapshot (--skip-final-snapshot).');
      }
      const deleting = await plane.deleteCluster(id);
      return { DBCluster: dbClusterShape(deleting, []) };
    }
    case 'ModifyDBCluster': {
      const group = text('DBClusterParameterGroupName');
      const id = required('DBClusterIdentifier');
      await plane.modifyCluster({ clusterId: id, ...(group !== undefined ? { parameterGroup: group } : {}) });
      return { DBCluster: clusterShape(id) };
    }
    case 'FailoverDBCluster': {
      const id = required('DBClusterIdentifier');
      await plane.failover(id, text('TargetDBInstanceIdentifier'));
      return { DBCluster: clusterShape(id) };
    }
    case 'DescribeDBInstances': {
      const id = text('DBInstanceIdentifier');
      return { DBInstances: id === undefined ? plane.listInstances().map(dbInstanceShape) : [instanceShape(id)] };
    }
    case 'CreateDBInstance': {
      const tier = integer('PromotionTier');
      const zone = text('AvailabilityZone');
      const group = text('DBParameterGroupName');
      const engine = text('Engine');
      if (engine !== undefined && engine !== ENGINE) throw new ControlError('InvalidParameterCombination', `The engine of a DB instance must match its cluster's (${ENGINE}).`);
      const created = await plane.createInstance({
        id: required('DBInstanceIdentifier'),
        clusterId: required('DBClusterIdentifier'),
        ...(tier !== undefined ? { promotionTier: tier } : {}),
        ...(zone !== undefined ? { availabilityZone: zone } : {}),
        ...(group !== undefined ? { parameterGroup: group } : {}),
      });
      return { DBInstance: instanceShape(created.id) };
    }
    case 'ModifyDBInstance': {
      const tier = integer('PromotionTier');
      const group = text('DBParameterGroupName');
      const id = required('DBInstanceIdentifier');
      await plane.modifyInstance({ id, ...(tier !== undefined ? { promotionTier: tier } : {}), ...(group !== undefined ? { parameterGroup: group } : {}) });
      return { DBInstance: instanceShape(id) };
    }
    case 'DeleteDBInstance': {
      const id = required('DBInstanceIdentifier');
      const shape = { ...instanceShape(id), DBInstanceStatus: 'deleting' };
      await plane.deleteInstance(id);
      return { DBInstance: shape };
    }
    case 'RebootDBInstance': {
      const id = required('DBInstanceIdentifier');
      await plane.rebootInstance(id);
      return { DBInstance: instanceShape(id) };
    }
    case 'DescribeEvents': {
      const source = text('SourceIdentifier');
      const type = text('SourceType');
      const max = integer('MaxRecords');
      let events = plane.listEvents().filter((event) => (source === undefined || event.sourceId === source) && (type === undefined || event.sourceType === type));
      if (max !== undefined) {
        if (max < 20 || max > 100) throw new ControlError('InvalidParameterValue', 'MaxRecords must be an integer from 20 to 100.');
        events = events.slice(-max);
      }
      return { Events: events.map(eventShape) };
    }
    case 'CreateDBClusterParameterGroup':
    case 'CreateDBParameterGroup': {
      const group = await plane.createParameterGroup(groupKind, { name: required(groupName), family: required('DBParameterGroupFamily'), description: required('Description') });
      return { [groupKind === 'cluster' ? 'DBClusterParameterGroup' : 'DBParameterGroup']: parameterGroupShape(groupKind, group) };
    }
    case 'DescribeDBClusterParameterGroups':
    case 'DescribeDBParameterGroups': {
      const name = text(groupName);
      const groups = name === undefined ? plane.parameterGroups(groupKind) : [plane.parameterGroupNamed(groupKind, name)];
      return { [groupKind === 'cluster' ? 'DBClusterParameterGroups' : 'DBParameterGroups']: groups.map((group) => parameterGroupShape(groupKind, group)) };
    }
    case 'DescribeDBClusterParameters':
    case 'DescribeDBParameters': {
      const source = text('Source');
      const parameters = parametersShape(plane.parameterGroupNamed(groupKind, required(groupName)));
      return { Parameters: parameters.filter((parameter) => source === undefined || parameter.Source === source) };
    }
    case 'ModifyDBClusterParameterGroup':
    case 'ModifyDBParameterGroup': {
      const name = required(groupName);
      await plane.modifyParameterGroup(groupKind, name, parameterChanges());
      return { [groupName]: name };
    }
    case 'DeleteDBClusterParameterGroup':
    case 'DeleteDBParameterGroup':
      await plane.deleteParameterGroup(groupKind, required(groupName));
      return {};
    case 'CreateDBClusterEndpoint': {
      const endpoint = await plane.createEndpoint({ id: required('DBClusterEndpointIdentifier'), clusterId: required('DBClusterIdentifier'), type: required('EndpointType'), staticMembers: list('StaticMembers'), excludedMembers: list('ExcludedMembers') });
      return endpointShape(plane.clusterNamed(endpoint.clusterId), endpoint);
    }
    case 'DescribeDBClusterEndpoints': {
      const clusterId = text('DBClusterIdentifier');
      const clusters = clusterId === undefined ? plane.listClusters() : [plane.clusterNamed(clusterId)];
      const id = text('DBClusterEndpointIdentifier');
      const all = clusters.flatMap((cluster) => clusterEndpointShapes(cluster, plane.endpoints().filter((endpoint) => endpoint.clusterId === cluster.id)));
      return { DBClusterEndpoints: id === undefined ? all : all.filter((endpoint) => endpoint.DBClusterEndpointIdentifier === id) };
    }
    case 'DeleteDBClusterEndpoint': {
      const endpoint = await plane.deleteEndpoint(required('DBClusterEndpointIdentifier'));
      return { ...endpointShape(plane.clusterNamed(endpoint.clusterId), endpoint), Status: 'deleting' };
    }
  }
}
