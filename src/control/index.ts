export { ControlPlane, ControlError, ProcessLauncher, processAlive, type ClusterRecord, type EventRecord, type InstanceLauncher, type InstanceRecord, type InstanceStatus } from './control-plane.js';
export { ControlStore } from './store.js';
