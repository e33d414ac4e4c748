// The RDS Query API (AWS Query protocol, Version=2014-10-31): form-encoded requests with an
// Action, XML responses and errors in the RDS shapes, so that the AWS SDK's RDS client and
// the AWS CLI, pointed at the control plane with an endpoint override, can drive the
// cluster. Requests are not signature-checked: the control plane listens on loopback (or a
// private network) and any credentials are accepted, as the issue asks.

import { randomUUID } from 'node:crypto';
import type { ControlPlane } from './control-plane.js';
import { ControlError } from './control-plane.js';
import { clusterEndpointShapes, dbClusterShape, dbInstanceShape, endpointShape, eventShape, parameterGroupShape, parametersShape } from './rds-shapes.js';

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

function success(action: string, result: Record<string, unknown>): QueryResponse {
  const inner = Object.entries(result).map(([key, value]) => toXml(key, value)).join('');
  return {
    status: 200,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NAMESPACE}"><${action}Result>${inner}</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
  };
}

export function queryError(code: string, message: string): QueryResponse {
  return {
    status: NOT_FOUND.has(code) ? 404 : 400,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${NAMESPACE}"><Error><Type>Sender</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  };
}

/** One Query API call; `params` are the request's form fields (or query string). */
export async function handleQuery(plane: ControlPlane, params: URLSearchParams): Promise<QueryResponse> {
  const action = params.get('Action') ?? '';
  const version = params.get('Version');
  if (version !== null && version !== '2014-10-31') return queryError('InvalidParameterValue', `Version ${version} is not supported; use 2014-10-31.`);
  const text = (name: string): string | undefined => params.get(name) ?? undefined;
  const required = (name: string): string => {
    const value = text(name);
    if (value === undefined || value === '') throw new ControlError('MissingParameter', `The request must contain the parameter ${name}.`);
    return value;
  };
  const cluster = plane.clusterRecord;
  const checkCluster = (name: string | undefined): void => {
    if (name !== undefined && name !== cluster.id) throw new ControlError('DBClusterNotFoundFault', `DBCluster ${name} not found.`);
  };
  const instanceShape = (id: string): Record<string, unknown> => {
    const instance = plane.listInstances().find((candidate) => candidate.id === id);
    if (instance === undefined) throw new ControlError('DBInstanceNotFound', `DBInstance ${id} not found.`);
    return dbInstanceShape(instance);
  };
  try {
    switch (action) {
      case 'DescribeDBClusters':
        checkCluster(text('DBClusterIdentifier'));
        return success(action, { DBClusters: [dbClusterShape(cluster, plane.listInstances())] });
      case 'DescribeDBInstances': {
        const id = text('DBInstanceIdentifier');
        return success(action, { DBInstances: id === undefined ? plane.listInstances().map(dbInstanceShape) : [instanceShape(id)] });
      }
      case 'CreateDBInstance': {
        const tier = text('PromotionTier');
        const zone = text('AvailabilityZone');
        const engine = text('Engine');
        if (engine !== undefined && engine !== 'aurora-postgresql') throw new ControlError('InvalidParameterCombination', "The engine of a DB instance must match its cluster's (aurora-postgresql).");
        const created = await plane.createInstance({
          id: required('DBInstanceIdentifier'),
          clusterId: required('DBClusterIdentifier'),
          ...(tier !== undefined ? { promotionTier: Number(tier) } : {}),
          ...(zone !== undefined ? { availabilityZone: zone } : {}),
        });
        return success(action, { DBInstance: instanceShape(created.id) });
      }
      case 'DeleteDBInstance': {
        const id = required('DBInstanceIdentifier');
        const shape = { ...instanceShape(id), DBInstanceStatus: 'deleting' };
        await plane.deleteInstance(id);
        return success(action, { DBInstance: shape });
      }
      case 'RebootDBInstance': {
        const id = required('DBInstanceIdentifier');
        await plane.rebootInstance(id);
        return success(action, { DBInstance: instanceShape(id) });
      }
      case 'FailoverDBCluster': {
        checkCluster(required('DBClusterIdentifier'));
        await plane.failover(text('TargetDBInstanceIdentifier'));
        return success(action, { DBCluster: dbClusterShape(cluster, plane.listInstances()) });
      }
      case 'DescribeEvents': {
        const source = text('SourceIdentifier');
        const type = text('SourceType');
        const max = text('MaxRecords');
        let events = plane.listEvents().filter((event) => (source === undefined || event.sourceId === source) && (type === undefined || event.sourceType === type));
        if (max !== undefined) {
          const count = Number(max);
          if (!Number.isInteger(count) || count < 20 || count > 100) throw new ControlError('InvalidParameterValue', 'MaxRecords must be an integer from 20 to 100.');
          events = events.slice(-count);
        }
        return success(action, { Events: events.map(eventShape) });
      }
      case 'CreateDBClusterParameterGroup': {
        const group = await plane.createParameterGroup({ name: required('DBClusterParameterGroupName'), family: required('DBParameterGroupFamily'), description: required('Description') });
        return success(action, { DBClusterParameterGroup: parameterGroupShape(group) });
      }
      case 'DescribeDBClusterParameterGroups': {
        const name = text('DBClusterParameterGroupName');
        return success(action, { DBClusterParameterGroups: (name === undefined ? plane.parameterGroups() : [plane.parameterGroupNamed(name)]).map(parameterGroupShape) });
      }
      case 'DescribeDBClusterParameters':
        return success(action, { Parameters: parametersShape(plane.parameterGroupNamed(required('DBClusterParameterGroupName'))) });
      case 'ModifyDBClusterParameterGroup': {
        const name = required('DBClusterParameterGroupName');
        const changes: Array<{ name: string; value: string }> = [];
        for (let index = 1; ; index++) {
          const field = (key: string): string | undefined => text(`Parameters.Parameter.${index}.${key}`) ?? text(`Parameters.member.${index}.${key}`);
          const parameterName = field('ParameterName');
          if (parameterName === undefined) break;
          changes.push({ name: parameterName, value: field('ParameterValue') ?? '' });
        }
        await plane.modifyParameterGroup(name, changes);
        return success(action, { DBClusterParameterGroupName: name });
      }
      case 'ModifyDBCluster': {
        const group = text('DBClusterParameterGroupName');
        await plane.modifyCluster({ clusterId: required('DBClusterIdentifier'), ...(group !== undefined ? { parameterGroup: group } : {}) });
        return success(action, { DBCluster: dbClusterShape(plane.clusterRecord, plane.listInstances()) });
      }
      case 'CreateDBClusterEndpoint': {
        const list = (prefix: string): string[] => {
          const values: string[] = [];
          for (let index = 1; text(`${prefix}.member.${index}`) !== undefined; index++) values.push(text(`${prefix}.member.${index}`)!);
          return values;
        };
        const endpoint = await plane.createEndpoint({ id: required('DBClusterEndpointIdentifier'), clusterId: required('DBClusterIdentifier'), type: required('EndpointType'), staticMembers: list('StaticMembers'), excludedMembers: list('ExcludedMembers') });
        return success(action, endpointShape(cluster, endpoint));
      }
      case 'DescribeDBClusterEndpoints': {
        checkCluster(text('DBClusterIdentifier'));
        const id = text('DBClusterEndpointIdentifier');
        const all = clusterEndpointShapes(cluster, plane.endpoints());
        return success(action, { DBClusterEndpoints: id === undefined ? all : all.filter((endpoint) => endpoint.DBClusterEndpointIdentifier === id) });
      }
      case 'DeleteDBClusterEndpoint': {
        const endpoint = await plane.deleteEndpoint(required('DBClusterEndpointIdentifier'));
        return success(action, { ...endpointShape(cluster, endpoint), Status: 'deleting' });
      }
      default:
        return queryError('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
    }
  } catch (error) {
    if (error instanceof ControlError) return queryError(error.code, error.message);
    throw error;
  }
}
