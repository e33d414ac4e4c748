export { ControlPlane, ControlError, ProcessLauncher, processAlive, type ClusterRecord, type EventRecord, type InstanceLauncher, type InstanceRecord, type InstanceStatus, type ParameterGroupRecord, type EndpointRecord } from './control-plane.js';
export { ControlStore } from './store.js';
export { clusterEndpointShapes, dbClusterShape, dbInstanceShape, endpointShape, eventShape, parameterGroupShape, parametersShape, ENGINE, ENGINE_VERSION } from './rds-shapes.js';
export { ACTION_PARAMETERS, handleQuery, type Action } from './rds-api.js';
