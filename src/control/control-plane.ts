// The control plane: the cluster's metadata (clusters, instances, events) in a durable store,
// the instance processes it starts and watches, failover, and the topology that the proxy
// routes by.
//
// Rules:
//   C1. What the control plane acts on is in its store first (roles, tiers, ports), so a
//       restarted control plane picks up where it was: it adopts instance processes that are
//       still running (by pid) and restarts the ones that are not.
//   C2. At most one instance is the writer in the topology at any time, and never one whose
//       process is gone: the writer leaves the topology the moment its loss is seen, before
//       anything else happens, so the proxy holds new connections instead of sending them to
//       a dead or fenced writer.
//   C3. Failover promotes the best available reader: lowest promotion tier, then (every
//       instance has the same size) least replica lag in 10 ms steps, then the one that has
//       been serving longest (a warm cache), then by identifier. Its volume open as
//       writer bumps the volume epoch, which fences any writer still running (storage
//       invariant 3). Without a reader, the writer is restarted in place.
//   C4. Operations that change roles run one at a time (one queue); health checks only ever
//       enqueue them.
//
// Instance states: creating --ready--> available --process gone--> failed --restart--> creating
//                  available --failover/reboot--> stopping --> creating

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenOn, portFree } from '../net/listen.js';
import type { RouteTarget, Topology } from '../proxy/index.js';
import { dropVolumeOnNode } from '../net/node-request.js';
import { Settings } from '../sql/settings.js';
import { createVolume, type FleetNode } from '../volume-client/process.js';
import { handleQuery, queryError } from './rds-api.js';
import { ControlStore } from './store.js';

export type InstanceRole = 'writer' | 'reader';
export type InstanceState = 'creating' | 'available' | 'stopping' | 'failed' | 'deleting';

export interface InstanceRecord {
  id: string;
  clusterId: string;
  role: InstanceRole;
  availabilityZone: string;
  promotionTier: number;
  host: string;
  port: number;
  replicationPort: number;
  /** GET /status on this port: the instance's replica lag (instance --status-port). */
  statusPort: number;
  createdAt: string;
  pid: number | null;
  /** The instance's DB parameter group (DEFAULT_PARAMETER_GROUP when none was chosen). */
  parameterGroup?: string;
}

export interface ClusterRecord {
  id: string;
  createdAt: string;
  /** The proxy's cluster (writer) endpoint and reader endpoint for this cluster. */
  port: number;
  readerPort: number;
  /** The cluster parameter group (DEFAULT_PARAMETER_GROUP when none was chosen). */
  parameterGroup?: string;
  /** The cluster's volume: its metadata file, and its name (absent: the fleet's first volume). */
  metadataPath: string;
  volume?: string;
  /** deleting: delete-db-cluster is dropping its volume on the storage nodes. */
  status: 'available' | 'deleting';
  /** The master user's password for this cluster's instances (absent: the control plane's). */
  masterPassword?: string;
}

/** A custom endpoint (create-db-cluster-endpoint): a port that reaches a chosen set of instances. */
export interface EndpointRecord {
  id: string;
  clusterId: string;
  /** READER: only its members that are readers; ANY: the writer too. */
  type: 'READER' | 'ANY';
  /** The members; empty means every instance not excluded. */
  staticMembers: string[];
  excludedMembers: string[];
  port: number;
}

/** Custom endpoints a cluster may have, as in Aurora. */
export const CUSTOM_ENDPOINTS_MAX = 5;

/** Ports for custom endpoints (of every cluster): customEndpointPortBase and the next ones. */
const CUSTOM_ENDPOINT_PORTS = 8;

/** A parameter group (cluster or DB): setting defaults for the sessions of the instances that use it. */
export interface ParameterGroupRecord {
  name: string;
  family: string;
  description: string;
  parameters: Record<string, string>;
  /** Bumped by every change; an instance started under an older one is pending-reboot. */
  version: number;
}

/** Cluster groups hold every instance's defaults; an instance's own (DB) group overrides them. */
export type ParameterGroupKind = 'cluster' | 'instance';

const GROUP_PREFIX: Record<ParameterGroupKind, string> = { cluster: 'parameter-group/', instance: 'db-parameter-group/' };

function defaultGroup(kind: ParameterGroupKind): ParameterGroupRecord {
  return { name: DEFAULT_PARAMETER_GROUP, family: PARAMETER_GROUP_FAMILY, description: `Default ${kind === 'cluster' ? 'cluster ' : ''}parameter group for aurora-postgresql15`, parameters: {}, version: 0 };
}

export const PARAMETER_GROUP_FAMILY = 'aurora-postgresql15';
export const DEFAULT_PARAMETER_GROUP = 'default.aurora-postgresql15';

/** Parameters a group may set: session settings (validated by the SQL layer) and max_connections. */
export const MODIFIABLE_PARAMETERS = ['statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'deadlock_timeout', 'default_transaction_isolation', 'default_transaction_read_only', 'search_path', 'client_min_messages', 'application_name', 'max_connections'];

export interface EventRecord {
  sequence: number;
  time: string;
  sourceType: 'db-cluster' | 'db-instance';
  sourceId: string;
  message: string;
}

export interface InstanceStatus extends InstanceRecord {
  state: InstanceState;
  /** Milliseconds since the instance last became available (for C3's "serving longest"). */
  servingSinceMs: number | null;
  /** Readers: writer commit to visible here, in ms (the newest sample), and the last minute's. */
  replicaLagMs: number | null;
  replicaLag: ReplicaLagReport | null;
  /** in-sync, or pending-reboot when the cluster's parameters changed since it started. */
  parameterStatus: 'in-sync' | 'pending-reboot';
}

/** Starts and stops instance processes (real processes in production; tests may stub). */
export interface InstanceLauncher {
  start(instance: InstanceRecord, cluster: ClusterRecord, writer: InstanceRecord | undefined, parameters: Record<string, string>): Promise<ChildProcess>;
}

export interface ControlPlaneOptions {
  dataDir: string;
  launcher: InstanceLauncher;
  /** The cluster a fresh control plane starts with, and its instances (never made again once deleted). */
  initialInstances: Array<Omit<InstanceRecord, 'createdAt' | 'pid'>>;
  cluster: Omit<ClusterRecord, 'createdAt' | 'status'>;
  /** The storage fleet: create-db-cluster makes each new cluster's volume on it. */
  nodes: FleetNode[];
  /** Where create-db-cluster puts new volumes' metadata files. */
  volumesDir: string;
  /** Clusters made by create-db-cluster get endpoint ports from here up, in pairs (cluster, reader). */
  clusterPortBase: number;
  healthIntervalMs: number;
  log: (line: string) => void;
  /** Instance k listens on instancePortBase + k (SQL) and replicationPortBase + k (redo stream). */
  instancePortBase: number;
  replicationPortBase: number;
  statusPortBase: number;
  availabilityZones: string[];
  /** Custom endpoint k listens on customEndpointPortBase + k (k < CUSTOM_ENDPOINTS_MAX). */
  customEndpointPortBase: number;
}

/** Replica lags closer than this are equal when failover picks a reader (C3). */
const LAG_STEP_MS = 10;

/**
 * C3: the readers' identifiers, best to promote first: lowest promotion tier; then least
 * replica lag in whole LAG_STEP_MS steps (sub-step differences are noise, and the warm cache
 * of the reader serving longest is worth more; unknown lag counts as worst); then available
 * longest; then by identifier. Every instance has the same size, so size never decides.
 */
export function failoverOrder(readers: ReadonlyArray<{ id: string; promotionTier: number; lagMs: number | null; availableSince: number | null }>): string[] {
  const step = (lag: number | null): number => (lag === null ? Infinity : Math.floor(lag / LAG_STEP_MS));
  const order = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...readers]
    .sort((a, b) => a.promotionTier - b.promotionTier || order(step(a.lagMs), step(b.lagMs)) || order(a.availableSince ?? Infinity, b.availableSince ?? Infinity) || a.id.localeCompare(b.id))
    .map((reader) => reader.id);
}

/** Readers a cluster may have, as in Aurora. */
export const READERS_MAX = 15;

/** Clusters one control plane manages (create-db-cluster beyond it: DBClusterQuotaExceededFault). */
export const CLUSTERS_MAX = 10;

interface Runtime {
  state: InstanceState;
  child: ChildProcess | undefined;
  since: number | undefined;
  /** When a failed instance is next started again. */
  retryAt: number;
  /** What the instance last reported (readers: replica lag). */
  lag: ReplicaLagReport | null;
  /** The parameter group and version the running process was started with. */
  parameters: string | undefined;
}

export interface ReplicaLagReport {
  lastMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  samples: number;
}

export class ControlPlane {
  private readonly store: ControlStore;
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly runtime = new Map<string, Runtime>();
  private readonly clusters = new Map<string, ClusterRecord>();
  private topology: Topology = { version: 0, writer: undefined, readers: [] };
  private readonly topologyWaiters = new Set<() => void>();
  private queue: Promise<void> = Promise.resolve();
  private health: NodeJS.Timeout | undefined;
  private server: http.Server | undefined;
  private nextEvent = 1;
  private stopping = false;

  constructor(private readonly options: ControlPlaneOptions) {
    this.store = new ControlStore(path.join(options.dataDir, 'control'));
  }

  /** Loads the store (or, the first time, creates the initial cluster), then brings every instance up (C1). */
  async start(): Promise<void> {
    const events = this.store.list<EventRecord>('event/');
    this.nextEvent = (events.at(-1)?.sequence ?? 0) + 1;
    // A store from before clusters were many holds one record under 'cluster'.
    const single = this.store.get<ClusterRecord>('cluster');
    if (single !== undefined) {
      await this.store.putMany([[`cluster/${single.id}`, { ...single, metadataPath: single.metadataPath ?? this.options.cluster.metadataPath, status: 'available' }], ['initialized', true]]);
      await this.store.remove('cluster');
    }
    if (this.store.get<boolean>('initialized') === undefined) {
      const cluster: ClusterRecord = { ...this.options.cluster, createdAt: new Date().toISOString(), status: 'available' };
      await this.store.putMany([[`cluster/${cluster.id}`, cluster], ['initialized', true]]);
      for (const instance of this.options.initialInstances) await this.save({ ...instance, createdAt: new Date().toISOString(), pid: null });
      await this.event('db-cluster', cluster.id, 'DB cluster created');
    }
    for (const cluster of this.store.list<ClusterRecord>('cluster/')) this.clusters.set(cluster.id, cluster);
    for (const instance of this.store.list<InstanceRecord>('instance/')) this.instances.set(instance.id, instance);
    for (const cluster of this.clusters.values()) {
      const writers = this.membersOf(cluster.id).filter((instance) => instance.role === 'writer');
      if (writers.length > 1) throw new Error(`the store names ${writers.length} writers of ${cluster.id}; expected at most one`);
    }
    for (const instance of this.instances.values()) this.runtime.set(instance.id, { state: 'failed', child: undefined, since: undefined, retryAt: Infinity, lag: null, parameters: undefined });
    // Writers first: readers attach to their writer's redo stream.
    await this.enqueue(async () => {
      await Promise.all([...this.instances.values()].filter((instance) => instance.role === 'writer').map((writer) => this.bringUp(writer)));
      await Promise.all([...this.instances.values()].filter((instance) => instance.role === 'reader').map((reader) => this.bringUp(reader)));
    });
    // A delete-db-cluster that a crash interrupted goes on.
    for (const cluster of this.clusters.values()) if (cluster.status === 'deleting') void this.enqueue(() => this.finishClusterDeletion(cluster.id)).catch(() => undefined);
    this.health = setInterval(() => this.checkHealth(), this.options.healthIntervalMs);
  }

  get currentTopology(): Topology {
    return this.topology;
  }

  listInstances(): InstanceStatus[] {
    return [...this.instances.values()].map((instance) => {
      const runtime = this.runtime.get(instance.id)!;
      return { ...instance, state: runtime.state, servingSinceMs: runtime.since === undefined ? null : Date.now() - runtime.since, replicaLagMs: instance.role === 'reader' ? runtime.lag?.lastMs ?? null : null, replicaLag: instance.role === 'reader' ? runtime.lag : null, parameterStatus: runtime.parameters === undefined || runtime.parameters === this.effectiveParameters(instance).stamp ? 'in-sync' : 'pending-reboot' };
    });
  }

  listEvents(): EventRecord[] {
    return this.store.list<EventRecord>('event/');
  }

  listClusters(): ClusterRecord[] {
    return [...this.clusters.values()];
  }

  clusterNamed(id: string): ClusterRecord {
    const cluster = this.clusters.get(id);
    if (cluster === undefined) throw new ControlError('DBClusterNotFoundFault', `DBCluster ${id} not found.`);
    return cluster;
  }

  private membersOf(clusterId: string): InstanceRecord[] {
    return [...this.instances.values()].filter((instance) => instance.clusterId === clusterId);
  }

  private writerOf(clusterId: string): InstanceRecord | undefined {
    return this.membersOf(clusterId).find((instance) => instance.role === 'writer');
  }

  /** failover-db-cluster: stop the writer and promote a reader (the given one, or the best). */
  failover(clusterId: string, targetId?: string): Promise<void> {
    this.clusterNamed(clusterId);
    if (targetId !== undefined) {
      const target = this.instances.get(targetId);
      if (target === undefined || target.clusterId !== clusterId) throw new ControlError('DBInstanceNotFound', `DBInstance ${targetId} not found.`);
      if (target.role !== 'reader') throw new ControlError('InvalidParameterValue', `${targetId} is already the writer.`);
    }
    if (this.writerOf(clusterId) === undefined) throw new ControlError('InvalidDBClusterStateFault', `DBCluster ${clusterId} has no writer instance.`);
    if (!this.membersOf(clusterId).some((instance) => instance.role === 'reader' && this.runtime.get(instance.id)!.state === 'available')) {
      throw new ControlError('InvalidDBClusterStateFault', 'the cluster has no available reader to promote');
    }
    return this.enqueue(() => this.doFailover(clusterId, 'requested', { target: targetId }));
  }

  /**
   * create-db-instance: the cluster's writer if it has none (a cluster made by
   * create-db-cluster starts empty), else a reader on the shared volume (no data is copied).
   */
  async createInstance(request: { id: string; clusterId: string; promotionTier?: number; availabilityZone?: string; parameterGroup?: string }): Promise<InstanceRecord> {
    validIdentifier(request.id, 'DBInstanceIdentifier');
    const cluster = this.clusterNamed(request.clusterId);
    if (cluster.status !== 'available') throw new ControlError('InvalidDBClusterStateFault', `DBCluster ${cluster.id} is ${cluster.status}.`);
    if (this.instances.has(request.id)) throw new ControlError('DBInstanceAlreadyExists', `DB instance ${request.id} already exists.`);
    const tier = validTier(request.promotionTier ?? 1);
    if (request.parameterGroup !== undefined) this.parameterGroupNamed('instance', request.parameterGroup);
    const zones = this.options.availabilityZones;
    if (request.availabilityZone !== undefined && !zones.includes(request.availabilityZone)) {
      throw new ControlError('InvalidParameterValue', `AvailabilityZone ${request.availabilityZone} is not one of ${zones.join(', ')}.`);
    }
    const role: InstanceRole = this.writerOf(cluster.id) === undefined ? 'writer' : 'reader';
    const readers = this.membersOf(cluster.id).filter((instance) => instance.role === 'reader');
    if (role === 'reader' && readers.length >= READERS_MAX) throw new ControlError('InstanceQuotaExceeded', `a cluster has at most ${READERS_MAX} readers.`);
    // The least used zone, so that readers spread over the AZs.
    const used = (zone: string): number => this.membersOf(cluster.id).filter((instance) => instance.availabilityZone === zone).length;
    const zone = request.availabilityZone ?? [...zones].sort((a, b) => used(a) - used(b))[0]!;
    // The next index whose three ports are free on this host (another program may hold one).
    let index = Math.max(0, ...[...this.instances.values()].map((instance) => instance.port - this.options.instancePortBase)) + 1;
    for (let tries = 0; tries < 100; tries++, index++) {
      const ports = [this.options.instancePortBase + index, this.options.replicationPortBase + index, this.options.statusPortBase + index];
      if ((await Promise.all(ports.map((port) => portFree('127.0.0.1', port)))).every(Boolean)) break;
    }
    const record: InstanceRecord = {
      id: request.id, clusterId: cluster.id, role, availabilityZone: zone, promotionTier: tier, host: '127.0.0.1',
      port: this.options.instancePortBase + index, replicationPort: this.options.replicationPortBase + index, statusPort: this.options.statusPortBase + index, createdAt: new Date().toISOString(), pid: null,
      ...(request.parameterGroup !== undefined ? { parameterGroup: request.parameterGroup } : {}),
    };
    this.runtime.set(record.id, { state: 'creating', child: undefined, since: undefined, retryAt: Infinity, lag: null, parameters: undefined });
    await this.save(record);
    await this.event('db-instance', record.id, 'DB instance created');
    void this.enqueue(async () => {
      if (this.instances.has(record.id)) await this.launch(this.instances.get(record.id)!);
    }).catch(() => undefined);
    return record;
  }

  /**
   * delete-db-instance: a reader goes at once; the writer fails over to a reader first (as in
   * Aurora), or, as its cluster's last instance, simply stops.
   */
  async deleteInstance(id: string): Promise<InstanceRecord> {
    const instance = this.instances.get(id);
    if (instance === undefined) throw new ControlError('DBInstanceNotFound', `DBInstance ${id} not found.`);
    await this.enqueue(async () => {
      if (this.instances.get(id)?.role === 'writer' && this.membersOf(instance.clusterId).length > 1) {
        if (this.chooseCandidate(instance.clusterId, id) === undefined) throw new ControlError('InvalidDBInstanceState', `${id} is the writer and no reader of ${instance.clusterId} is available to take over.`);
        await this.doFailover(instance.clusterId, `deleting ${id}`, { retire: true });
      }
      this.runtime.get(id)!.state = 'deleting';
      await this.stopProcess(this.instances.get(id)!);
      this.instances.delete(id);
      this.runtime.delete(id);
      this.publish();
      await this.store.remove(`instance/${id}`);
      await this.event('db-instance', id, 'DB instance deleted');
    });
    return instance;
  }

  /** reboot-db-instance: the process is stopped and started again (a writer keeps its role). */
  async rebootInstance(id: string): Promise<InstanceRecord> {
    const instance = this.instances.get(id);
    if (instance === undefined) throw new ControlError('DBInstanceNotFound', `DBInstance ${id} not found.`);
    await this.enqueue(async () => {
      await this.event('db-instance', id, 'DB instance restarted (reboot requested)');
      await this.stopProcess(instance);
      await this.launch(this.instances.get(id)!);
    });
    return this.instances.get(id)!;
  }

  // ---------------------------------------------------------------- custom endpoints

  /** Custom endpoints (of every cluster; a record from before clusters were many is the first cluster's). */
  endpoints(): EndpointRecord[] {
    return this.store.list<EndpointRecord>('endpoint/').map((endpoint) => ({ ...endpoint, clusterId: endpoint.clusterId ?? this.options.cluster.id }));
  }

  async createEndpoint(request: { id: string; clusterId: string; type: string; staticMembers?: string[]; excludedMembers?: string[] }): Promise<EndpointRecord> {
    validIdentifier(request.id, 'DBClusterEndpointIdentifier');
    const cluster = this.clusterNamed(request.clusterId);
    const existing = this.endpoints();
    if (existing.some((endpoint) => endpoint.id === request.id)) throw new ControlError('DBClusterEndpointAlreadyExistsFault', `DB cluster endpoint ${request.id} already exists.`);
    if (existing.filter((endpoint) => endpoint.clusterId === cluster.id).length >= CUSTOM_ENDPOINTS_MAX) throw new ControlError('DBClusterEndpointQuotaExceededFault', `a cluster has at most ${CUSTOM_ENDPOINTS_MAX} custom endpoints.`);
    const type = request.type.toUpperCase();
    if (type !== 'READER' && type !== 'ANY') throw new ControlError('InvalidParameterValue', `EndpointType must be READER or ANY, got ${request.type}.`);
    const staticMembers = request.staticMembers ?? [];
    const excludedMembers = request.excludedMembers ?? [];
    if (staticMembers.length > 0 && excludedMembers.length > 0) throw new ControlError('InvalidParameterCombination', 'StaticMembers and ExcludedMembers cannot both be given.');
    for (const member of [...staticMembers, ...excludedMembers]) {
      if (this.instances.get(member)?.clusterId !== cluster.id) throw new ControlError('DBInstanceNotFound', `DBInstance ${member} not found.`);
    }
    // The next port no endpoint has and nothing on this host holds (the proxy listens on it).
    const used = new Set(existing.map((endpoint) => endpoint.port));
    let port = this.options.customEndpointPortBase;
    while (used.has(port) || !(await portFree('127.0.0.1', port))) {
      port++;
      if (port >= this.options.customEndpointPortBase + CUSTOM_ENDPOINT_PORTS) throw new ControlError('DBClusterEndpointQuotaExceededFault', 'no free port for another custom endpoint.');
    }
    const record: EndpointRecord = { id: request.id, clusterId: cluster.id, type, staticMembers, excludedMembers, port };
    await this.store.put(`endpoint/${record.id}`, record);
    await this.event('db-cluster', cluster.id, `custom endpoint ${record.id} created (${type}, port ${port})`);
    this.publish();
    return record;
  }

  async deleteEndpoint(id: string): Promise<EndpointRecord> {
    const endpoint = this.endpoints().find((candidate) => candidate.id === id);
    if (endpoint === undefined) throw new ControlError('DBClusterEndpointNotFoundFault', `DB cluster endpoint ${id} not found.`);
    await this.store.remove(`endpoint/${id}`);
    await this.event('db-cluster', endpoint.clusterId, `custom endpoint ${id} deleted`);
    this.publish();
    return endpoint;
  }

  // ---------------------------------------------------------------- parameter groups

  /** Every group of a kind: the default one first, then those created. */
  parameterGroups(kind: ParameterGroupKind): ParameterGroupRecord[] {
    return [defaultGroup(kind), ...this.store.list<ParameterGroupRecord>(GROUP_PREFIX[kind])];
  }

  parameterGroupNamed(kind: ParameterGroupKind, name: string): ParameterGroupRecord {
    const group = name === DEFAULT_PARAMETER_GROUP ? defaultGroup(kind) : this.store.get<ParameterGroupRecord>(`${GROUP_PREFIX[kind]}${name}`);
    if (group === undefined) throw new ControlError('DBParameterGroupNotFound', `${kind === 'cluster' ? 'DBClusterParameterGroup' : 'DBParameterGroup'} not found: ${name}`);
    return group;
  }

  /**
   * What an instance's sessions start with: the cluster group's parameters, then its own
   * (DB) group's, which win where both set one (as in Aurora). The stamp names both groups'
   * versions: an instance started under another stamp is pending-reboot.
   */
  private effectiveParameters(instance: InstanceRecord): { parameters: Record<string, string>; stamp: string } {
    const cluster = this.parameterGroupNamed('cluster', this.clusters.get(instance.clusterId)?.parameterGroup ?? DEFAULT_PARAMETER_GROUP);
    const own = this.parameterGroupNamed('instance', instance.parameterGroup ?? DEFAULT_PARAMETER_GROUP);
    return { parameters: { ...cluster.parameters, ...own.parameters }, stamp: `${cluster.name}@${cluster.version}/${own.name}@${own.version}` };
  }

  async createParameterGroup(kind: ParameterGroupKind, request: { name: string; family: string; description: string }): Promise<ParameterGroupRecord> {
    validIdentifier(request.name, kind === 'cluster' ? 'DBClusterParameterGroupName' : 'DBParameterGroupName');
    if (request.family !== PARAMETER_GROUP_FAMILY) throw new ControlError('InvalidParameterValue', `DBParameterGroupFamily ${request.family} is not supported; use ${PARAMETER_GROUP_FAMILY}.`);
    if (request.name === DEFAULT_PARAMETER_GROUP || this.store.get(`${GROUP_PREFIX[kind]}${request.name}`) !== undefined) {
      throw new ControlError('DBParameterGroupAlreadyExists', `Parameter group ${request.name} already exists`);
    }
    const group: ParameterGroupRecord = { name: request.name, family: request.family, description: request.description, parameters: {}, version: 1 };
    await this.store.put(`${GROUP_PREFIX[kind]}${group.name}`, group);
    return group;
  }

  /** Changes apply to instances when they next start (their status shows pending-reboot). */
  async modifyParameterGroup(kind: ParameterGroupKind, name: string, changes: Array<{ name: string; value: string }>): Promise<ParameterGroupRecord> {
    if (name === DEFAULT_PARAMETER_GROUP) throw new ControlError('InvalidDBParameterGroupState', 'Default parameter groups cannot be modified.');
    const group = this.parameterGroupNamed(kind, name);
    if (changes.length === 0 || changes.length > 20) throw new ControlError('InvalidParameterValue', 'Parameters must name from 1 to 20 parameters.');
    const parameters = { ...group.parameters };
    for (const change of changes) {
      const key = change.name.toLowerCase();
      if (!MODIFIABLE_PARAMETERS.includes(key)) throw new ControlError('InvalidParameterValue', `Parameter ${change.name} is not modifiable; modifiable parameters: ${MODIFIABLE_PARAMETERS.join(', ')}.`);
      parameters[key] = validParameterValue(key, change.value);
    }
    const next: ParameterGroupRecord = { ...group, parameters, version: group.version + 1 };
    await this.store.put(`${GROUP_PREFIX[kind]}${name}`, next);
    return next;
  }

  /** A group in use (by the cluster, or by an instance) cannot be deleted, nor a default one. */
  async deleteParameterGroup(kind: ParameterGroupKind, name: string): Promise<void> {
    if (name === DEFAULT_PARAMETER_GROUP) throw new ControlError('InvalidDBParameterGroupState', 'Default parameter groups cannot be deleted.');
    this.parameterGroupNamed(kind, name);
    const user = kind === 'cluster'
      ? [...this.clusters.values()].find((cluster) => cluster.parameterGroup === name)?.id
      : [...this.instances.values()].find((instance) => instance.parameterGroup === name)?.id;
    if (user !== undefined) throw new ControlError('InvalidDBParameterGroupState', `Parameter group ${name} is in use by ${user}.`);
    await this.store.remove(`${GROUP_PREFIX[kind]}${name}`);
  }

  /** modify-db-instance: its promotion tier (now) and its DB parameter group (at its next start). */
  async modifyInstance(request: { id: string; parameterGroup?: string; promotionTier?: number }): Promise<InstanceRecord> {
    const instance = this.instances.get(request.id);
    if (instance === undefined) throw new ControlError('DBInstanceNotFound', `DBInstance ${request.id} not found.`);
    if (request.parameterGroup !== undefined) this.parameterGroupNamed('instance', request.parameterGroup);
    if (request.promotionTier !== undefined) validTier(request.promotionTier);
    await this.enqueue(async () => {
      const current = this.instances.get(request.id);
      if (current === undefined) throw new ControlError('DBInstanceNotFound', `DBInstance ${request.id} not found.`);
      await this.save({ ...current, ...(request.parameterGroup !== undefined ? { parameterGroup: request.parameterGroup } : {}), ...(request.promotionTier !== undefined ? { promotionTier: request.promotionTier } : {}) });
      if (request.parameterGroup !== undefined) await this.event('db-instance', request.id, `DB parameter group changed to ${request.parameterGroup} (applies at the instance's next reboot)`);
    });
    return this.instances.get(request.id)!;
  }

  /** modify-db-cluster: the cluster's parameter group (applied at each instance's next start). */
  async modifyCluster(request: { clusterId: string; parameterGroup?: string }): Promise<ClusterRecord> {
    const cluster = this.clusterNamed(request.clusterId);
    if (request.parameterGroup !== undefined) {
      this.parameterGroupNamed('cluster', request.parameterGroup);
      const next = { ...cluster, parameterGroup: request.parameterGroup };
      await this.store.put(`cluster/${cluster.id}`, next);
      this.clusters.set(cluster.id, next);
      await this.event('db-cluster', cluster.id, `DB cluster parameter group changed to ${request.parameterGroup} (applies at each instance's next reboot)`);
    }
    return this.clusters.get(cluster.id)!;
  }

  // ---------------------------------------------------------------- clusters

  /**
   * create-db-cluster: a new volume on the same storage fleet (its segments carry its name)
   * and endpoints on the proxy; no instances yet: the first create-db-instance is its writer.
   */
  async createCluster(request: { id: string; parameterGroup?: string; port?: number; masterPassword?: string }): Promise<ClusterRecord> {
    validIdentifier(request.id, 'DBClusterIdentifier');
    if (this.clusters.has(request.id)) throw new ControlError('DBClusterAlreadyExistsFault', `DB cluster ${request.id} already exists.`);
    if (this.clusters.size >= CLUSTERS_MAX) throw new ControlError('DBClusterQuotaExceededFault', `a control plane manages at most ${CLUSTERS_MAX} clusters.`);
    if (request.parameterGroup !== undefined) this.parameterGroupNamed('cluster', request.parameterGroup);
    if (request.masterPassword !== undefined && (request.masterPassword.length < 8 || request.masterPassword.length > 128 || /[/"@\s]/.test(request.masterPassword))) {
      throw new ControlError('InvalidParameterValue', 'MasterUserPassword must be 8 to 128 printable characters other than /, ", @ and spaces.');
    }
    const taken = new Set([...this.clusters.values()].flatMap((cluster) => [cluster.port, cluster.readerPort]));
    // A cluster endpoint and its reader endpoint (the next port): neither given out nor held by anything.
    const pairFree = async (first: number): Promise<boolean> => !taken.has(first) && !taken.has(first + 1) && (await portFree('127.0.0.1', first)) && (await portFree('127.0.0.1', first + 1));
    let port = request.port;
    if (port !== undefined) {
      if (!Number.isInteger(port) || port < 1150 || port > 65534) throw new ControlError('InvalidParameterValue', `Port must be an integer from 1150 to 65534, got ${port}.`);
      if (!(await pairFree(port))) throw new ControlError('InvalidParameterValue', `Port ${port} (or ${port + 1}, its reader endpoint) is in use.`);
    } else {
      port = this.options.clusterPortBase;
      while (!(await pairFree(port))) port += 2;
    }
    // A name no volume of this fleet had: the cluster's, lower-cased, and a random suffix.
    const volume = `${request.id.toLowerCase().slice(0, 48)}-${randomBytes(4).toString('hex')}`;
    const cluster: ClusterRecord = {
      id: request.id, createdAt: new Date().toISOString(), port, readerPort: port + 1, metadataPath: path.join(this.options.volumesDir, `${volume}.json`), volume, status: 'available',
      ...(request.parameterGroup !== undefined ? { parameterGroup: request.parameterGroup } : {}),
      ...(request.masterPassword !== undefined ? { masterPassword: request.masterPassword } : {}),
    };
    await this.enqueue(async () => {
      if (this.clusters.has(request.id)) throw new ControlError('DBClusterAlreadyExistsFault', `DB cluster ${request.id} already exists.`);
      await createVolume(cluster.metadataPath, this.options.nodes, volume);
      await this.store.put(`cluster/${cluster.id}`, cluster);
      this.clusters.set(cluster.id, cluster);
      this.publish();
      await this.event('db-cluster', cluster.id, `DB cluster created (volume ${volume}, endpoints on ports ${port} and ${port + 1})`);
    });
    return cluster;
  }

  /**
   * delete-db-cluster: only a cluster without instances (as in RDS). Its volume is dropped on
   * every storage node (durably on each before the cluster's record goes); a node that does
   * not answer keeps the cluster 'deleting', and the drop is retried until it does.
   */
  async deleteCluster(id: string): Promise<ClusterRecord> {
    const cluster = this.clusterNamed(id);
    if (this.membersOf(id).length > 0) throw new ControlError('InvalidDBClusterStateFault', `Cluster cannot be deleted, it still contains DB instances in non-deleting state.`);
    const deleting: ClusterRecord = { ...cluster, status: 'deleting' };
    await this.enqueue(async () => {
      await this.store.put(`cluster/${id}`, deleting);
      this.clusters.set(id, deleting);
      for (const endpoint of this.endpoints().filter((candidate) => candidate.clusterId === id)) await this.store.remove(`endpoint/${endpoint.id}`);
      this.publish();
      await this.event('db-cluster', id, 'DB cluster deletion started');
    });
    void this.enqueue(() => this.finishClusterDeletion(id)).catch(() => undefined);
    return deleting;
  }

  private async finishClusterDeletion(id: string): Promise<void> {
    const cluster = this.clusters.get(id);
    if (cluster === undefined || cluster.status !== 'deleting') return;
    const acks = await Promise.all(this.options.nodes.map((node) => dropVolumeOnNode(node.host, node.port, cluster.volume ?? '', 5000)));
    const missing = this.options.nodes.filter((_, index) => acks[index]?.status !== 'ok');
    if (missing.length > 0) {
      await this.event('db-cluster', id, `DB cluster deletion waits for storage node(s) ${missing.map((node) => node.id).join(', ')}; retrying`);
      this.dropRetryAt.set(id, Date.now() + 2000);
      return;
    }
    this.dropRetryAt.delete(id);
    fs.rmSync(cluster.metadataPath, { force: true });
    await this.store.remove(`cluster/${id}`);
    this.clusters.delete(id);
    this.publish();
    await this.event('db-cluster', id, 'DB cluster deleted');
  }

  /** Clusters whose volume drop is retried, and when. */
  private readonly dropRetryAt = new Map<string, number>();

  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.health);
    for (const wake of [...this.topologyWaiters]) wake();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.queue.catch(() => undefined);
    // Readers first, then the writer, each given time to stop cleanly.
    const ordered = [...this.instances.values()].sort((a, b) => (a.role === b.role ? 0 : a.role === 'reader' ? -1 : 1));
    for (const instance of ordered) await this.stopProcess(instance);
    await this.store.close();
  }

  // ---------------------------------------------------------------- operations

  private enqueue(operation: () => Promise<void>): Promise<void> {
    const run = this.queue.then(operation);
    this.queue = run.catch((error: Error) => this.options.log(`operation failed: ${error.stack ?? error.message}`));
    return run;
  }

  private async save(instance: InstanceRecord): Promise<void> {
    this.instances.set(instance.id, instance);
    await this.store.put(`instance/${instance.id}`, instance);
  }

  private async event(sourceType: EventRecord['sourceType'], sourceId: string, message: string): Promise<void> {
    const record: EventRecord = { sequence: this.nextEvent++, time: new Date().toISOString(), sourceType, sourceId, message };
    this.options.log(`event: ${sourceId}: ${message}`);
    await this.store.put(`event/${String(record.sequence).padStart(12, '0')}`, record);
  }

  /** Adopts a live process of a previous control plane, or starts the instance (C1). */
  private async bringUp(instance: InstanceRecord): Promise<void> {
    const runtime = this.runtime.get(instance.id)!;
    if (instance.pid !== null && processAlive(instance.pid) && (await portAnswers(instance.host, instance.port))) {
      runtime.state = 'available';
      runtime.since = Date.now();
      this.publish();
      return;
    }
    await this.launch(instance);
  }

  private async launch(instance: InstanceRecord): Promise<void> {
    const runtime = this.runtime.get(instance.id)!;
    runtime.state = 'creating';
    runtime.since = undefined;
    this.publish();
    const cluster = this.clusterNamed(instance.clusterId);
    const writer = instance.role === 'reader' ? this.writerOf(instance.clusterId) : undefined;
    let child: ChildProcess;
    const { parameters, stamp } = this.effectiveParameters(instance);
    try {
      child = await this.options.launcher.start(instance, cluster, writer, parameters);
    } catch (error) {
      runtime.state = 'failed';
      runtime.retryAt = Date.now() + 2000;
      await this.event('db-instance', instance.id, `could not start the instance: ${(error as Error).message.split('\n')[0]}`);
      throw error;
    }
    runtime.child = child;
    runtime.state = 'available';
    runtime.since = Date.now();
    runtime.parameters = stamp;
    await this.save({ ...instance, pid: child.pid ?? null });
    child.once('exit', () => {
      if (runtime.child === child) this.lost(instance.id);
    });
    this.publish();
    await this.event('db-instance', instance.id, instance.role === 'writer' ? 'DB instance available as the writer' : 'DB instance available as a reader');
  }

  private async stopProcess(instance: InstanceRecord): Promise<void> {
    const runtime = this.runtime.get(instance.id)!;
    const pid = runtime.child?.pid ?? instance.pid ?? undefined;
    runtime.child = undefined;
    runtime.state = 'stopping';
    runtime.since = undefined;
    this.publish();
    if (pid === undefined || !processAlive(pid)) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (processAlive(pid) && Date.now() < deadline) await sleep(20);
    if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    while (processAlive(pid)) await sleep(10);
  }

  private lastLagPoll = 0;

  private checkHealth(): void {
    if (this.stopping) return;
    if (Date.now() - this.lastLagPoll >= 500) {
      this.lastLagPoll = Date.now();
      for (const instance of this.instances.values()) {
        const runtime = this.runtime.get(instance.id)!;
        if (instance.role !== 'reader' || runtime.state !== 'available') continue;
        void fetch(`http://${instance.host}:${instance.statusPort}/status`, { signal: AbortSignal.timeout(1000) })
          .then((response) => response.json() as Promise<{ replicaLag: ReplicaLagReport | null }>)
          .then((report) => (runtime.lag = report.replicaLag), () => undefined);
      }
    }
    for (const [id, at] of this.dropRetryAt) {
      if (Date.now() < at) continue;
      this.dropRetryAt.set(id, Infinity);
      void this.enqueue(() => this.finishClusterDeletion(id)).catch(() => undefined);
    }
    for (const instance of this.instances.values()) {
      const runtime = this.runtime.get(instance.id)!;
      if (runtime.state === 'failed' && Date.now() >= runtime.retryAt) {
        runtime.retryAt = Infinity;
        void this.enqueue(async () => {
          const current = this.instances.get(instance.id);
          if (current !== undefined && this.runtime.get(instance.id)!.state === 'failed') await this.launch(current);
        }).catch(() => undefined);
      }
      if (runtime.state !== 'available') continue;
      const pid = runtime.child?.pid ?? instance.pid ?? undefined;
      if (!processAlive(pid)) this.lost(instance.id);
    }
  }

  /** An instance process is gone (C2: a writer leaves the topology at once). */
  private lost(id: string): void {
    if (this.stopping) return;
    const instance = this.instances.get(id);
    const runtime = this.runtime.get(id);
    if (instance === undefined || runtime === undefined || runtime.state !== 'available') return;
    runtime.state = 'failed';
    runtime.child = undefined;
    runtime.since = undefined;
    this.publish();
    this.options.log(`${instance.role} ${id} is gone`);
    if (instance.role === 'writer') void this.enqueue(() => this.doFailover(instance.clusterId, 'writer lost')).catch(() => undefined);
    else {
      void this.enqueue(async () => {
        await this.event('db-instance', id, 'DB instance restarted (its process was lost)');
        const current = this.instances.get(id);
        if (current !== undefined && this.runtime.get(id)!.state === 'failed') await this.launch(current);
      }).catch(() => undefined);
    }
  }

  private chooseCandidate(clusterId: string, exclude: string, targetId?: string): InstanceRecord | undefined {
    const readers = this.membersOf(clusterId).filter((instance) => instance.role === 'reader' && instance.id !== exclude && this.runtime.get(instance.id)!.state === 'available');
    if (targetId !== undefined) return readers.find((reader) => reader.id === targetId);
    const ranked = failoverOrder(readers.map((reader) => {
      const runtime = this.runtime.get(reader.id)!;
      return { id: reader.id, promotionTier: reader.promotionTier, lagMs: runtime.lag?.p50Ms ?? null, availableSince: runtime.since ?? null };
    }));
    return readers.find((reader) => reader.id === ranked[0]);
  }

  /**
   * Fails over to the best reader (or `target`). The old writer comes back as a reader,
   * unless it is being retired (delete-db-instance), when it stays stopped.
   */
  private async doFailover(clusterId: string, reason: string, options: { target?: string | undefined; retire?: boolean } = {}): Promise<void> {
    const old = this.writerOf(clusterId);
    if (old === undefined) return;
    const started = Date.now();
    await this.event('db-cluster', clusterId, `started failover (${reason})`);
    // C2: out of the topology before anything else.
    await this.stopProcess(old);
    const candidate = this.chooseCandidate(clusterId, old.id, options.target);
    if (candidate === undefined) {
      await this.event('db-cluster', clusterId, `no reader to promote: restarting ${old.id} as the writer`);
      await this.launch(old);
    } else {
      await this.stopProcess(candidate);
      // Both roles change in one commit: a crash here leaves exactly one writer in the store.
      const promoted: InstanceRecord = { ...candidate, role: 'writer' };
      const demoted: InstanceRecord = { ...old, role: 'reader' };
      await this.store.putMany([[`instance/${promoted.id}`, promoted], [`instance/${demoted.id}`, demoted]]);
      this.instances.set(promoted.id, promoted);
      this.instances.set(demoted.id, demoted);
      await this.launch(promoted);
    }
    const writer = this.writerOf(clusterId)!;
    await this.event('db-cluster', clusterId, `completed failover to DB instance ${writer.id} in ${Date.now() - started} ms`);
    // The readers follow the new writer's redo stream; the old writer comes back as a reader
    // (unless it is being retired).
    const readers = this.membersOf(clusterId).filter((instance) => instance.role === 'reader' && !(options.retire === true && instance.id === old.id));
    await Promise.all(
      readers.map(async (reader) => {
        await this.stopProcess(reader);
        await this.launch(reader);
      }),
    );
  }

  // ---------------------------------------------------------------- topology and API

  /**
   * The topology: the first cluster (the one on the proxy's own ports) as writer/readers,
   * every other cluster with its two ports, and the custom endpoints with the available
   * instances of their cluster that they cover.
   */
  private publish(): void {
    const target = (instance: InstanceRecord): RouteTarget => ({ id: instance.id, address: { host: instance.host, port: instance.port } });
    const available = [...this.instances.values()].filter((instance) => this.runtime.get(instance.id)?.state === 'available');
    const routes = (clusterId: string): { writer: RouteTarget | undefined; readers: RouteTarget[] } => {
      const writer = available.find((instance) => instance.clusterId === clusterId && instance.role === 'writer');
      return { writer: writer ? target(writer) : undefined, readers: available.filter((instance) => instance.clusterId === clusterId && instance.role === 'reader').map(target) };
    };
    const live = [...this.clusters.values()].filter((cluster) => cluster.status === 'available');
    const first = live.find((cluster) => cluster.port === this.options.cluster.port);
    const custom = this.endpoints().filter((endpoint) => this.clusters.get(endpoint.clusterId)?.status === 'available').map((endpoint) => ({
      id: endpoint.id,
      port: endpoint.port,
      targets: available.filter((instance) => instance.clusterId === endpoint.clusterId && endpointIncludes(endpoint, instance)).map(target),
    }));
    const clusters = live.filter((cluster) => cluster !== first).map((cluster) => ({ id: cluster.id, port: cluster.port, readerPort: cluster.readerPort, ...routes(cluster.id) }));
    const next: Topology = { version: Math.max(this.topology.version + 1, Date.now()), ...(first !== undefined ? routes(first.id) : { writer: undefined, readers: [] }), custom, clusters };
    if (JSON.stringify({ ...next, version: 0 }) === JSON.stringify({ ...this.topology, version: 0 })) return;
    this.topology = next;
    for (const wake of [...this.topologyWaiters]) wake();
  }

  /** The JSON API the proxy and the CLI use (the RDS-shaped API sits beside it). */
  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    this.server = http.createServer((request, response) => void this.handle(request, response));
    return listenOn(this.server, port, host);
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://control');
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    try {
      if (url.pathname === '/' && (request.method === 'POST' || url.searchParams.has('Action'))) {
        // The RDS Query API (rds-api.ts): form fields in the body, or in the query string.
        // XML as RDS answers; JSON (the same shapes) for a client that accepts only JSON,
        // which is how the CLI's aws-rds verbs call it.
        const params = request.method === 'POST' ? new URLSearchParams(await readBody(request)) : url.searchParams;
        const format = request.headers.accept === 'application/json' ? 'json' : 'xml';
        const answer = await handleQuery(this, params, format).catch((error: Error) => queryError('InternalFailure', error.message, format));
        response.writeHead(answer.status, { 'content-type': format === 'json' ? 'application/json' : 'text/xml' });
        response.end(answer.body);
        return;
      }
      if (request.method === 'GET' && url.pathname === '/v1/topology') {
        // Long poll: answers when the topology is newer than `after`, or after 20 s.
        const after = Number(url.searchParams.get('after') ?? '0');
        if (this.topology.version <= after && !this.stopping) {
          await new Promise<void>((resolve) => {
            const wake = (): void => {
              this.topologyWaiters.delete(wake);
              clearTimeout(timer);
              resolve();
            };
            const timer = setTimeout(wake, 20_000);
            this.topologyWaiters.add(wake);
            request.once('close', wake);
          });
        }
        return reply(200, this.topology);
      }
      if (request.method === 'GET' && url.pathname === '/v1/status') return reply(200, { started: this.health !== undefined, clusters: this.listClusters().map(({ masterPassword: _, ...cluster }) => cluster), instances: this.listInstances(), topology: this.topology });
      if (request.method === 'GET' && url.pathname === '/v1/events') return reply(200, this.listEvents());
      reply(404, { code: 'UnknownOperation', message: `no such operation: ${request.method} ${url.pathname}` });
    } catch (error) {
      if (error instanceof ControlError) return reply(400, { code: error.code, message: error.message });
      reply(500, { code: 'InternalFailure', message: (error as Error).message });
    }
  }
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 1_000_000) request.destroy(new Error('request body too large'));
    });
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

function endpointIncludes(endpoint: EndpointRecord, instance: InstanceRecord): boolean {
  if (endpoint.type === 'READER' && instance.role !== 'reader') return false;
  if (endpoint.staticMembers.length > 0) return endpoint.staticMembers.includes(instance.id);
  return !endpoint.excludedMembers.includes(instance.id);
}

/** A parameter's value as the SQL layer would take it (max_connections: 1 to 10,000). */
function validParameterValue(name: string, value: string): string {
  if (name === 'max_connections') {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) throw new ControlError('InvalidParameterValue', `max_connections must be an integer from 1 to 10000, got "${value}".`);
    return value;
  }
  try {
    const settings = new Settings();
    settings.set(name, value, { local: false, inTransaction: false });
    return settings.get(name);
  } catch (error) {
    throw new ControlError('InvalidParameterValue', `invalid value for parameter ${name}: "${value}" (${(error as Error).message})`);
  }
}

/** A promotion tier: an integer from 0 (promoted first) to 15. */
function validTier(tier: number): number {
  if (!Number.isInteger(tier) || tier < 0 || tier > 15) throw new ControlError('InvalidParameterValue', `PromotionTier must be an integer from 0 to 15, got ${tier}.`);
  return tier;
}

/** RDS identifier rules: 1-63 letters, digits or hyphens; a letter first; no trailing or double hyphen. */
export function validIdentifier(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || !/^[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}$/.test(value) || value.endsWith('-')) {
    throw new ControlError('InvalidParameterValue', `The parameter ${name} is not a valid identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens.`);
  }
}

/** An error shaped like the RDS API's (code is the fault name without "Fault"). */
export class ControlError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function processAlive(pid: number | null | undefined): boolean {
  if (pid === null || pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}



/** The text of a file from `offset` to its end. */
function readFrom(file: string, offset: number): string {
  const descriptor = fs.openSync(file, 'r');
  try {
    const length = Math.max(0, fs.fstatSync(descriptor).size - offset);
    const buffer = Buffer.alloc(length);
    let at = 0;
    while (at < length) {
      const read = fs.readSync(descriptor, buffer, at, length - at, offset + at);
      if (read === 0) break;
      at += read;
    }
    return buffer.toString('utf8', 0, at);
  } finally {
    fs.closeSync(descriptor);
  }
}

async function portAnswers(host: string, port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Starts instance processes of `boreal instance`, logging to <dir>/instances/<id>/process.log. */
export class ProcessLauncher implements InstanceLauncher {
  constructor(
    private readonly options: { cliEntry: string; dataDir: string; peers: string; masterPassword: string; cacheMb: number; nodeArgs?: string[] },
  ) {}

  start(instance: InstanceRecord, cluster: ClusterRecord, writer: InstanceRecord | undefined, parameters: Record<string, string>): Promise<ChildProcess> {
    const { max_connections: maxConnections, ...settings } = parameters;
    const dir = path.join(this.options.dataDir, 'instances', instance.id);
    fs.mkdirSync(dir, { recursive: true });
    const logPath = path.join(dir, 'process.log');
    const output = fs.openSync(logPath, 'a');
    // Only what this start writes is read while waiting (the log grows across restarts).
    const startOffset = fs.fstatSync(output).size;
    const args = [
      ...(this.options.nodeArgs ?? []),
      this.options.cliEntry, 'instance', '--role', instance.role, '--metadata', cluster.metadataPath, '--peers', this.options.peers,
      '--host', instance.host, '--port', String(instance.port), '--cache-mb', String(this.options.cacheMb),
      '--status-port', String(instance.statusPort),
      ...(Object.keys(settings).length > 0 ? ['--parameters', JSON.stringify(settings)] : []),
      ...(maxConnections !== undefined ? ['--max-connections', maxConnections] : []),
      ...(instance.role === 'writer' ? ['--replication-port', String(instance.replicationPort)] : ['--writer', `${writer!.host}:${writer!.replicationPort}`]),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', output, output], env: { ...process.env, BOREAL_MASTER_PASSWORD: cluster.masterPassword ?? this.options.masterPassword } });
    fs.closeSync(output);
    // Ready when its log says so (it prints one JSON line with its pid when it serves).
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + 60_000;
      const poll = (): void => {
        const lines = readFrom(logPath, startOffset).trim().split('\n');
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`the ${instance.role} ${instance.id} exited during start-up:\n${lines.slice(-5).join('\n')}`));
        if (lines.some((line) => line.includes('"ready":true') && line.includes(`"pid":${child.pid}`))) return resolve(child);
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          return reject(new Error(`the ${instance.role} ${instance.id} did not serve within 60 s (log: ${logPath})`));
        }
        setTimeout(poll, 25);
      };
      poll();
    });
  }
}
