// A storage node: hosts segments of many protection groups, one hot log and one page
// store shared by them. Pure logic behind NodeEnvironment/LogDisk/OrderedStore, so the
// same class runs in the simulator and in the `boreal storage-node` process.
//
// States: starting (incarnation bump, hot log replay) -> serving. Messages that arrive
// while starting are dropped: senders retry, and nothing was acknowledged for them.

import { assert, groupOfSegment, VOLUME_NAME, volumeOfSegment, type Epoch, type NodeId, type SegmentId, type StorageLimits } from '../common/index.js';
import { fromJson } from '../common/json.js';
import { decodeRedo } from '../page/index.js';
import type { AckStatus, DropVolume, Message } from '../net/messages.js';
import type { LogDisk, NodeEnvironment, OrderedStore } from './environment.js';
import { decodeLogFile, encodeLogFrames, LogFrameType, LogWriter, logFileSequence } from './log-writer.js';
import { Segment, type SegmentControl } from './segment.js';
import * as keys from './store-keys.js';

export interface StorageNodeOptions {
  node: NodeId;
  availabilityZone: string;
  limits: StorageLimits;
  groupCommit: boolean;
  /** How often a segment that knows it lacks records pulls from a peer. */
  gossipIntervalMs: number;
  /** How often any other segment pulls (default 4 x gossipIntervalMs). */
  gossipIdleIntervalMs?: number;
  coalesceIntervalMs: number;
  /** A hydration chunk not answered in this time is asked of another peer. */
  hydrationTimeoutMs: number;
  /** Deliberate bug, for proving that the simulator catches it. */
  acknowledgeBeforeSync?: boolean;
}

const textDecoder = new TextDecoder();

/** Page store keys deleted per commit while a dropped volume's segments are cleaned up. */
const DROP_DELETES_PER_COMMIT = 10_000;

/**
 * A dropped volume's segments on their way out: their Drop frames are durable (replay
 * forgets them); their page store keys are deleted in the background, and the Drop frames
 * are released (so the log file can go) only once that has committed.
 */
interface DropCleanup {
  segments: Segment[];
  file: string;
  frameCount: number;
  running: boolean;
}

export class StorageNode {
  private readonly segments = new Map<SegmentId, Segment>();
  private log!: LogWriter;
  private incarnation = 0;
  private serving = false;
  private lastGossipMs = 0;
  private readonly cleanups: DropCleanup[] = [];

  constructor(
    private readonly environment: NodeEnvironment,
    private readonly disk: LogDisk,
    private readonly store: OrderedStore,
    private readonly options: StorageNodeOptions,
  ) {}

  /** Bumps the incarnation durably, replays the hot log, then serves. */
  start(ready: (error?: Error) => void): void {
    const previous = this.store.get(keys.INCARNATION_KEY);
    this.incarnation = (previous ? keys.decodeU32(previous) : 0) + 1;
    this.store.commit([[keys.INCARNATION_KEY, keys.encodeU32(this.incarnation)]], [], (error) => {
      if (error) return ready(error);
      this.replay();
      this.serving = true;
      this.environment.log('storage_node_serving', { node: this.options.node, incarnation: this.incarnation, segments: this.segments.size });
      ready();
    });
  }

  private services(): ConstructorParameters<typeof Segment>[0] {
    return {
      node: this.options.node,
      environment: this.environment,
      store: this.store,
      log: this.log,
      limits: this.options.limits,
      incarnation: () => this.incarnation,
    };
  }

  private replay(): void {
    const files = this.disk.list().filter((name) => logFileSequence(name) >= 0).sort();
    const lastSequence = files.length > 0 ? logFileSequence(files[files.length - 1]!) : 0;
    // Never append after a possibly torn tail: new frames go to a new file.
    this.log = new LogWriter(
      this.disk,
      {
        groupCommit: this.options.groupCommit,
        fileBytesMax: this.options.limits.logFileBytesMax,
        queueMax: this.options.limits.nodeAppendQueueMax,
        queueBytesMax: this.options.limits.nodeAppendQueueBytesMax,
        ...(this.options.acknowledgeBeforeSync ? { acknowledgeBeforeSync: true } : {}),
      },
      lastSequence + 1,
    );
    for (const [, value] of this.store.range(keys.metaRange)) {
      const meta = Segment.decodeMeta(value);
      this.segments.set(meta.segment, new Segment(this.services(), meta));
    }
    let damaged = false;
    for (const file of files) {
      const decoded = decodeLogFile(this.disk.read(file));
      if (decoded.damaged) this.environment.log(decoded.corrupt ? 'hot_log_corrupt' : 'hot_log_torn_tail', { file, validBytes: decoded.validBytes });
      if (decoded.corrupt) damaged = true;
      this.log.adoptReplayed(file, decoded.frames.length);
      for (const frame of decoded.frames) this.replayFrame(frame.type, frame.segment as SegmentId, frame.payload, file);
    }
    for (const segment of this.segments.values()) segment.finishReplay();
    // Acknowledged frames were lost: no segment here can vouch for what it acknowledged, so
    // each one leaves read quorums and copies itself back from its peers.
    if (damaged) for (const segment of this.segments.values()) segment.markDamaged();
  }

  private replayFrame(type: LogFrameType, id: SegmentId, payload: Uint8Array, file: string): void {
    if (type === LogFrameType.Drop) {
      // Dropped before the crash: forgotten now; its store keys may still need deleting.
      const segment = this.segments.get(id) ?? new Segment(this.services(), Segment.fresh(id, groupOfSegment(id)));
      this.segments.delete(id);
      this.cleanups.push({ segments: [segment], file, frameCount: 1, running: false });
      return;
    }
    if (type === LogFrameType.Control) {
      const control = fromJson<SegmentControl>(textDecoder.decode(payload));
      this.segmentOrCreate(id, control.group).replayControl(control, file);
      return;
    }
    const segment = this.segments.get(id);
    const decoded = decodeRedo(payload);
    if (segment === undefined || !decoded.ok) {
      this.environment.log('hot_log_frame_skipped', { file, segment: id, reason: segment ? decoded.ok || decoded.error : 'unknown segment' });
      this.log.release(file);
      return;
    }
    segment.replayRecord(decoded.value, file);
  }

  private segmentOrCreate(id: SegmentId, group: number): Segment {
    let segment = this.segments.get(id);
    if (segment === undefined) {
      segment = new Segment(this.services(), Segment.fresh(id, group));
      this.segments.set(id, segment);
    }
    return segment;
  }

  receive(message: Message): void {
    if (!this.serving) return;
    switch (message.kind) {
      case 'status-request':
        return this.environment.send(message.from, {
          kind: 'status-reply',
          requestId: message.requestId,
          node: this.options.node,
          availabilityZone: this.options.availabilityZone,
          incarnation: this.incarnation,
          segments: [...this.segments.values()].map((segment) => segment.status()),
        });
      case 'drop-volume':
        return this.dropVolume(message);
      case 'membership': {
        const segment = this.segments.get(message.segment);
        if (segment === undefined) return this.createSegment(message);
        return segment.onMembership(message);
      }
      case 'write':
      case 'repair-target':
      case 'get-page':
      case 'recovery-query':
      case 'truncate':
      case 'gossip-pull':
      case 'gossip-push':
      case 'hydrate-request':
      case 'hydrate-chunk':
        return this.dispatch(message);
      case 'write-ack':
      case 'page':
      case 'recovery-reply':
      case 'truncate-ack':
      case 'membership-ack':
      case 'status-reply':
      case 'drop-volume-ack':
      case 'hello':
        this.environment.log('unexpected_message', { kind: message.kind });
        return;
      default:
        assertNever(message);
    }
  }

  private dispatch(message: Extract<Message, { segment: SegmentId }>): void {
    const segment = this.segments.get(message.segment);
    if (segment === undefined) return this.refuseUnknown(message);
    switch (message.kind) {
      case 'write':
        return segment.onWrite(message);
      case 'repair-target':
        return segment.onRepairTarget(message);
      case 'get-page':
        return segment.onGetPage(message);
      case 'recovery-query':
        return segment.onRecoveryQuery(message);
      case 'truncate':
        return segment.onTruncate(message);
      case 'gossip-pull':
        return segment.onGossipPull(message);
      case 'gossip-push':
        return segment.onGossipPush(message);
      case 'hydrate-request':
        return segment.onHydrateRequest(message, message.fromSegment);
      case 'hydrate-chunk':
        return segment.onHydrateChunk(message);
      default:
        this.environment.log('unexpected_message', { kind: message.kind });
    }
  }

  private refuseUnknown(message: Extract<Message, { segment: SegmentId }>): void {
    this.environment.log('unknown_segment', { kind: message.kind, segment: message.segment });
    const status: AckStatus = 'unknown_segment';
    const zero = 0 as Epoch;
    switch (message.kind) {
      case 'write':
        return this.environment.send(message.from, {
          kind: 'write-ack',
          segment: message.segment,
          status,
          dataEpoch: zero,
          fencedEpoch: zero,
          scl: 0n,
          incarnation: this.incarnation,
          repairing: false,
          repairTargetKnown: false,
          controlSequence: 0,
        });
      case 'get-page':
        return this.environment.send(message.from, { kind: 'page', requestId: message.requestId, segment: message.segment, status, page: new Uint8Array(0) });
      case 'recovery-query':
        return this.environment.send(message.from, {
          kind: 'recovery-reply',
          requestId: message.requestId,
          segment: message.segment,
          status,
          dataEpoch: zero,
          scl: 0n,
          vdlHint: 0n,
          chainLsnAtHint: 0n,
          chain: [],
          repairing: false,
          incarnation: this.incarnation,
        });
      case 'truncate':
        return this.environment.send(message.from, { kind: 'truncate-ack', requestId: message.requestId, segment: message.segment, status, dataEpoch: zero, scl: 0n, incarnation: this.incarnation });
      default:
        return;
    }
  }

  /**
   * Drops every segment of a volume (S-drop): they leave the node's routing at once (later
   * messages get unknown_segment), their Drop frames go to the hot log behind everything
   * they appended before, and the ack follows the sync. Idempotent: a volume with no
   * segments here is acknowledged with dropped 0. The volume '' is the fleet's first one
   * (its segments' names carry no volume).
   */
  private dropVolume(message: DropVolume): void {
    const reply = (status: AckStatus, dropped: number): void =>
      this.environment.send(message.from, { kind: 'drop-volume-ack', requestId: message.requestId, volume: message.volume, status, dropped });
    if (typeof message.volume !== 'string' || (message.volume !== '' && !VOLUME_NAME.test(message.volume))) return reply('malformed', 0);
    const segments = [...this.segments.values()].filter((segment) => (volumeOfSegment(segment.id) ?? '') === message.volume);
    if (segments.length === 0) return reply('ok', 0);
    for (const segment of segments) this.segments.delete(segment.id);
    const restore = (): void => {
      for (const segment of segments) this.segments.set(segment.id, segment);
    };
    const frames = segments.map((segment) => encodeLogFrames(LogFrameType.Drop, segment.id, [new Uint8Array(0)]));
    const queued = this.log.append(frames, (error, file) => {
      if (error) {
        restore();
        this.environment.log('drop_volume_failed', { volume: message.volume, error: error.message });
        return reply('disk_error', 0);
      }
      this.environment.log('volume_dropped', { volume: message.volume, segments: segments.length });
      reply('ok', segments.length);
      this.cleanups.push({ segments, file, frameCount: frames.length, running: false });
      this.runCleanups();
    });
    if (!queued) {
      restore();
      reply('overloaded', 0);
    }
  }

  /** Deletes dropped segments' page store keys once none of their commits is in flight. */
  private runCleanups(): void {
    for (const cleanup of this.cleanups) {
      if (cleanup.running || !cleanup.segments.every((segment) => segment.storeQuiet)) continue;
      cleanup.running = true;
      for (const segment of cleanup.segments) segment.detach();
      const deletes: string[] = [];
      for (const segment of cleanup.segments) {
        const id = segment.id;
        if (this.store.has(keys.metaKey(id))) deletes.push(keys.metaKey(id));
        for (const range of [keys.versionsOfSegment(id), keys.recordsOfSegment(id), keys.ordersOfSegment(id)]) deletes.push(...this.store.rangeKeys(range));
      }
      const next = (at: number): void => {
        if (at >= deletes.length) {
          this.cleanups.splice(this.cleanups.indexOf(cleanup), 1);
          this.log.release(cleanup.file, cleanup.frameCount);
          return;
        }
        this.store.commit([], deletes.slice(at, at + DROP_DELETES_PER_COMMIT), (error) => {
          if (error) {
            // Tried again from the start on a later tick (deleting what is gone is harmless).
            this.environment.log('drop_cleanup_failed', { error: error.message });
            cleanup.running = false;
            return;
          }
          next(at + DROP_DELETES_PER_COMMIT);
        });
      };
      next(0);
    }
  }

  private createSegment(message: Extract<Message, { kind: 'membership' }>): void {
    const group = groupOfSegment(message.segment);
    this.segmentOrCreate(message.segment, group).initialize(message);
    this.environment.log('segment_created', { segment: message.segment, bootstrap: message.bootstrap });
  }

  tick(): void {
    if (!this.serving) return;
    this.runCleanups();
    const now = this.environment.nowMs();
    const gossipDue = now - this.lastGossipMs >= this.options.gossipIntervalMs;
    if (gossipDue) this.lastGossipMs = now;
    for (const segment of this.segments.values()) {
      segment.tick(now, this.options);
      if (gossipDue) segment.gossip(now, this.options.gossipIdleIntervalMs ?? 4 * this.options.gossipIntervalMs);
    }
  }

  get nodeId(): NodeId {
    return this.options.node;
  }

  segment(id: SegmentId): Segment | undefined {
    return this.segments.get(id);
  }

  allSegments(): Segment[] {
    return [...this.segments.values()];
  }

  get currentIncarnation(): number {
    return this.incarnation;
  }
}

function assertNever(message: never): never {
  assert(false, `unhandled message ${JSON.stringify(message)}`);
}
