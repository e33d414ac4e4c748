// The volume client: what the writer (and later the readers) link to talk to the storage
// fleet. It turns mini-transactions into redo records, sends them to all segments of their
// protection group, counts acknowledgements, and tracks the volume's durable points:
//
//   VCL: every record at or below it is on a write quorum of its PG.
//   VDL: the highest CPL (end of a mini-transaction) at or below the VCL.
//
// A commit is acknowledged when VDL >= its LSN; commits wait in a queue and never block
// the writer. LAL: the client refuses to allocate LSNs more than `lsnAheadOfVdlMax` past
// the VDL (back-pressure).
//
// States:  closed --open()--> recovering --(read quorum per PG, truncate)--> repairing
//   --(records up to the VDL on a write quorum)--> open --(fenced ack)--> fenced
// A fenced client refuses everything with StorageError('fenced'); commits it could not
// confirm fail with 'commit_unknown_result'.
//
// A reader's client (attachReader) never recovers or writes: it reads pages at the read
// point its writer announced, requiring of a segment the SCL of the PG's last record at or
// below that point (which the writer's redo stream tells it), and falls back to another
// segment when one is not complete there.

import {
  assert,
  lsnMax,
  lsnMin,
  StorageError,
  type ClientLimits,
  type Epoch,
  type Lsn,
  type NodeId,
  type PageId,
  type Random,
  type SegmentId,
  segmentId,
  protectionGroupId,
  nodeOfSegment as nodeOf,
  groupOfSegment as groupOf,
} from '../common/index.js';
import { toJson } from '../common/json.js';
import { FLAG_CPL, RedoKind, unsealPage, type RedoRecord } from '../page/index.js';
import { nodeAddress, type Address, type Message, type RecoveryReply, type TruncationEntry, type WriteAck } from '../net/messages.js';
import { LsnQueue } from './lsn-queue.js';

export interface GroupMembership {
  members: NodeId[];
  /** During a membership change: the new set. Writes need a quorum of both. */
  next?: NodeId[];
}

export interface VolumeMetadata {
  /** The volume's name, which its segment names carry; absent for a fleet's first volume. */
  volume?: string;
  /** The epoch of the last writer that opened the volume (or is opening it). */
  epoch: Epoch;
  history: TruncationEntry[];
  pagesPerGroup: number;
  groups: GroupMembership[];
  /** Each storage node's availability zone, for placement on repair. */
  nodes: Array<{ node: NodeId; availabilityZone: string }>;
}

/**
 * Whether a writer's metadata for a new epoch was derived from the stored metadata as it
 * stands. A store must refuse the new epoch otherwise: the writer read the metadata before
 * the previous writer's last change (a truncation, a membership change), and writing its
 * copy would erase that change, on which segments may already have acted.
 */
export function derivedFromStored(taking: VolumeMetadata, stored: VolumeMetadata): boolean {
  return toJson({ ...taking, epoch: 0 }) === toJson({ ...stored, epoch: 0 });
}

export interface ClientEnvironment {
  nowMs(): number;
  random: Random;
  send(to: Address, message: Message): void;
  /** Runs `task` soon, after the current step (a microtask in production). */
  defer(task: () => void): void;
  /**
   * Runs a flush of queued records later than defer, so that records appended in the same
   * turn of the event loop share a batch (setImmediate in production; defer if absent).
   */
  deferBatch?(task: () => void): void;
  /** Runs `task` after `delayMs` (a timer); without it, commits are never delayed (commitDelayMs). */
  deferAfter?(delayMs: number, task: () => void): void;
  log(event: string, fields: Record<string, unknown>): void;
  /**
   * Makes new volume metadata durable (the control plane's store). A new epoch is refused
   * unless it is above the stored one and `derivedFromStored`; an older epoch is refused.
   */
  persistMetadata(metadata: VolumeMetadata, done: (error?: Error) => void): void;
}

export interface VolumeClientOptions {
  address: Address;
  limits: ClientLimits;
  writeQuorum: number;
  readQuorum: number;
  resendAfterMs: number;
  /** An idle segment hears from the client at least this often (carries the VDL hint). */
  heartbeatMs: number;
  /** Held redo nobody waits for leaves after this long (default: heartbeatMs). */
  holdRedoMs?: number;
  /**
   * Group commit (PostgreSQL's commit_delay): a commit that finds another commit still
   * waiting for durability holds its redo back up to this long, so that the commits queued
   * meanwhile leave in the same batch per segment. A commit alone leaves at once. 0 or
   * absent: never hold.
   */
  commitDelayMs?: number;
  readTimeoutMs: number;
  /** Replace a segment whose node has not answered for this long (0: never). */
  repairAfterMs: number;
}

export interface PagePatch {
  pageId: PageId;
  kind: RedoKind;
  offset: number;
  data: Uint8Array;
}

type State = 'closed' | 'recovering' | 'repairing' | 'open' | 'fenced' | 'reader';

interface SegmentView {
  /** Counted in no quorum and read from never while set. */
  repairing: boolean;
  controlSequence: number;
  incarnation: number;
  scl: Lsn;
  dataEpoch: Epoch;
  lastSentMs: number;
  lastHeardMs: number;
}

interface PendingRead {
  pageId: PageId;
  atLsn: Lsn;
  tried: Set<SegmentId>;
  startedMs: number;
  sentMs: number;
  target: SegmentId | undefined;
  done: (error: StorageError | undefined, page?: Uint8Array) => void;
}

interface CommitWaiter {
  lsn: Lsn;
  done: (error?: StorageError) => void;
}

export class VolumeClient {
  state: State = 'closed';
  vcl: Lsn = 0n;
  vdl: Lsn = 0n;
  retentionLsn: Lsn = 0n;
  /** The newest VDL hint known to be on a write quorum (sent while repairing). */
  private durableHint: Lsn = 0n;
  private nextLsn: Lsn = 1n;
  /** The LSN writeMiniTransaction will give its next record. */
  get lsnToAssign(): Lsn {
    return this.nextLsn;
  }
  private metadata: VolumeMetadata;
  private lastLsnOfGroup: Lsn[] = [];
  /** Per PG: records sent but not yet on a write quorum (kept for resends). */
  private pending: RedoRecord[][] = [];
  private readonly cplQueue = new LsnQueue();
  private commitWaiters: CommitWaiter[] = [];
  private readonly segments = new Map<SegmentId, SegmentView>();
  private readonly reads = new Map<number, PendingRead>();
  private nextRequestId = 1;
  private flushScheduled = false;
  /** A commit's flush is held back for commitDelayMs. */
  private flushDelayed = false;
  /** Flushes of queued redo, and commits whose flush was held back (group commit). */
  readonly stats = { flushes: 0, heldCommits: 0 };
  /** Records queued in the outbox since the last flush (see ClientLimits.heldRecordsMax). */
  private heldRecords = 0;
  private heldSinceMs = 0;
  private readonly outbox = new Map<SegmentId, RedoRecord[]>();
  private recovery: RecoveryProgress | undefined;
  private openCallback: ((error?: StorageError) => void) | undefined;
  private readonly membershipChanges = new Map<number, { catchUpLsn: Lsn; newNode: NodeId }>();
  /** While repairing: per PG, the segment whose chain set the recovered VDL. */
  private recoveredFrom = new Set<SegmentId>();

  constructor(
    private readonly environment: ClientEnvironment,
    metadata: VolumeMetadata,
    private readonly options: VolumeClientOptions,
  ) {
    this.metadata = structuredClone(metadata);
  }

  get epoch(): Epoch {
    return this.metadata.epoch;
  }

  get volumeMetadata(): VolumeMetadata {
    return structuredClone(this.metadata);
  }

  groupOf(page: PageId): number {
    const group = Math.floor(page / this.metadata.pagesPerGroup);
    assert(group < this.metadata.groups.length, `page ${page} is beyond the volume`);
    return group;
  }

  get pageCount(): number {
    return this.metadata.pagesPerGroup * this.metadata.groups.length;
  }

  /** Made once per metadata object (metadata is replaced, never changed in place). */
  private segmentsCache: { metadata: VolumeMetadata; byGroup: Array<readonly SegmentId[] | undefined> } | undefined;

  private segmentsOf(group: number): readonly SegmentId[] {
    let cache = this.segmentsCache;
    if (cache === undefined || cache.metadata !== this.metadata) cache = this.segmentsCache = { metadata: this.metadata, byGroup: [] };
    let segments = cache.byGroup[group];
    if (segments === undefined) {
      const membership = this.metadata.groups[group]!;
      const nodes = new Set([...membership.members, ...(membership.next ?? [])]);
      segments = cache.byGroup[group] = [...nodes].map((node) => segmentId(protectionGroupId(group), node, this.metadata.volume));
    }
    return segments;
  }

  /** Reader: segments that let a read time out, and until when to avoid them. */
  private readonly readerSuspects = new Map<SegmentId, number>();

  /** Optional: called whenever the VDL moves (a writer announces it to its readers). */
  onVdlAdvance: ((vdl: Lsn) => void) | undefined;

  /** The SCL a segment of the page's PG must have to serve it at `atLsn` (a reader needs this from its writer). */
  requiredSclFor(group: number, atLsn: Lsn): Lsn {
    return this.requiredScl(group, atLsn);
  }

  /**
   * Makes this client a reader's: it reads at points at or below `vdl` with the PG's last
   * records at or below it as given (`lastLsnOfGroup`), and never writes. `metadata`
   * replaces what it knew (a new writer may have taken a new epoch).
   */
  attachReader(metadata: VolumeMetadata, vdl: Lsn, lastLsnOfGroup: readonly Lsn[]): void {
    assert(this.state === 'closed' || this.state === 'reader', `a ${this.state} client cannot become a reader`);
    this.metadata = structuredClone(metadata);
    this.state = 'reader';
    this.vdl = vdl;
    this.lastLsnOfGroup = [...lastLsnOfGroup];
    this.pending = metadata.groups.map(() => []);
  }

  /** A reader learned that the PG of `pageId` has a record at `lsn` at or below its read point. */
  noteReaderRecord(pageId: PageId, lsn: Lsn): void {
    const group = this.groupOf(pageId);
    if (lsn > (this.lastLsnOfGroup[group] ?? 0n)) this.lastLsnOfGroup[group] = lsn;
  }

  /** A reader's read point moved. */
  advanceReader(vdl: Lsn): void {
    assert(this.state === 'reader' && vdl >= this.vdl, 'a reader read point only moves forward');
    this.vdl = vdl;
  }

  private view(segment: SegmentId): SegmentView {
    let view = this.segments.get(segment);
    if (view === undefined) {
      view = { repairing: false, controlSequence: 0, incarnation: 0, scl: 0n, dataEpoch: 0 as Epoch, lastSentMs: 0, lastHeardMs: this.environment.nowMs() };
      this.segments.set(segment, view);
    }
    return view;
  }

  // ------------------------------------------------------------------ bootstrap

  /** Creates the segments of a brand new volume on their nodes. */
  static bootstrapMessages(metadata: VolumeMetadata, from: Address): Array<{ to: Address; message: Message }> {
    const messages: Array<{ to: Address; message: Message }> = [];
    metadata.groups.forEach((membership, group) => {
      for (const node of membership.members) {
        messages.push({
          to: nodeAddress(node),
          message: {
            kind: 'membership',
            from,
            requestId: 0,
            segment: segmentId(protectionGroupId(group), node, metadata.volume),
            peers: membership.members,
            history: metadata.history,
            bootstrap: true,
          },
        });
      }
    });
    return messages;
  }

  // ------------------------------------------------------------------ recovery

  /**
   * Opens the volume as its writer: takes a new epoch, fences older writers on a read
   * quorum of every PG, computes the VDL, truncates above it, and waits until everything
   * up to the VDL is on a write quorum.
   */
  open(done: (error?: StorageError) => void): void {
    assert(this.state === 'closed', 'open called twice');
    this.state = 'recovering';
    this.openCallback = done;
    const next: VolumeMetadata = { ...this.metadata, epoch: (this.metadata.epoch + 1) as Epoch };
    this.environment.persistMetadata(next, (error) => {
      if (error) return this.failOpen(new StorageError('unavailable', `cannot persist the new epoch: ${error.message}`));
      this.metadata = next;
      this.recovery = new RecoveryProgress(this.metadata.groups.length);
      this.environment.log('recovery_started', { epoch: this.metadata.epoch });
      this.sendRecoveryQueries();
    });
  }

  private failOpen(error: StorageError): void {
    this.state = 'fenced';
    const callback = this.openCallback;
    this.openCallback = undefined;
    callback?.(error);
  }

  private sendRecoveryQueries(): void {
    const recovery = this.recovery!;
    for (let group = 0; group < this.metadata.groups.length; group++) {
      if (recovery.groupDone(group)) continue;
      for (const segment of this.segmentsOf(group)) {
        if (recovery.replies.has(segment)) continue;
        this.environment.send(nodeAddress(nodeOf(segment)), {
          kind: 'recovery-query',
          from: this.options.address,
          // The reply echoes it: a restarted recovery tells its own older queries apart.
          requestId: this.metadata.epoch,
          segment,
          newEpoch: this.metadata.epoch,
        });
      }
    }
    recovery.sentMs = this.environment.nowMs();
  }

  private onRecoveryReply(reply: RecoveryReply): void {
    const recovery = this.recovery;
    if (this.state !== 'recovering' || recovery === undefined || reply.requestId !== this.metadata.epoch) return;
    if (reply.status === 'fenced') return this.failOpen(new StorageError('fenced', `segment ${reply.segment} has seen a newer epoch`));
    if (reply.status === 'unknown_segment') {
      // A volume no writer ever opened is still being created; otherwise the node lost the
      // segment and it must hydrate from its peers.
      return this.sendMembership(reply.segment, this.metadata.history.length === 0);
    }
    if (reply.status !== 'ok' || reply.repairing) return;
    const group = groupOf(reply.segment);
    if (!this.metadata.groups[group]!.members.includes(nodeOf(reply.segment))) return;
    recovery.replies.set(reply.segment, reply);
    this.noteSegment(reply.segment, reply.incarnation, reply.scl, reply.dataEpoch);
    const count = [...recovery.replies.keys()].filter((segment) => groupOf(segment) === group).length;
    if (count >= this.options.readQuorum) recovery.markGroupDone(group);
    if (recovery.allDone() && !recovery.completing) {
      recovery.completing = true;
      this.finishRecoveryQuorum();
    }
  }

  private finishRecoveryQuorum(): void {
    const recovery = this.recovery!;
    const replies = [...recovery.replies.values()];
    let base = 0n;
    for (const reply of replies) base = lsnMax(base, reply.vdlHint);
    this.durableHint = base;
    // Per PG, the most complete chain among the quorum, clamped by truncations it missed.
    const present = new Map<Lsn, boolean>();
    const bestOfGroup: Array<{ chain: Array<[Lsn, boolean]>; atHint: Lsn }> = [];
    const recoveredFrom = new Set<SegmentId>();
    for (let group = 0; group < this.metadata.groups.length; group++) {
      let best: { chain: Array<[Lsn, boolean]>; atHint: Lsn; scl: Lsn; segment: SegmentId | undefined } = { chain: [], atHint: 0n, scl: -1n, segment: undefined };
      for (const reply of replies) {
        if (groupOf(reply.segment) !== group) continue;
        const clamp = this.clampForEpoch(reply.dataEpoch);
        const scl = lsnMin(reply.scl, clamp);
        if (scl > best.scl) best = { chain: reply.chain.filter(([lsn]) => lsn <= scl), atHint: reply.chainLsnAtHint, scl, segment: reply.segment };
      }
      bestOfGroup.push(best);
      if (best.segment !== undefined) recoveredFrom.add(best.segment);
      for (const [lsn, cpl] of best.chain) if (lsn > base) present.set(lsn, cpl);
    }
    // LSNs are dense: the VCL is where the first LSN missing from every PG is.
    let vcl = base;
    let vdl = base;
    while (present.has(vcl + 1n)) {
      vcl += 1n;
      if (present.get(vcl)) vdl = vcl;
    }
    this.lastLsnOfGroup = bestOfGroup.map((best) => {
      let last = best.atHint;
      for (const [lsn] of best.chain) if (lsn <= vdl && lsn > last) last = lsn;
      return last;
    });
    const history = [...this.metadata.history, { epoch: this.metadata.epoch, truncateAboveLsn: vdl }].slice(-64);
    const next: VolumeMetadata = { ...this.metadata, history };
    this.environment.log('recovery_quorum', {
      epoch: this.metadata.epoch,
      vdl: String(vdl),
      base: String(base),
      replies: replies.map((reply) => `${reply.segment} e${reply.dataEpoch} scl ${reply.scl} hint ${reply.vdlHint} chain ${reply.chain.length}`).join('; '),
    });
    this.environment.persistMetadata(next, (error) => {
      if (error) return this.failOpen(new StorageError('unavailable', `cannot persist the truncation: ${error.message}`));
      this.metadata = next;
      this.vcl = vdl;
      this.vdl = vdl;
      this.nextLsn = vdl + 1n;
      this.pending = this.metadata.groups.map(() => []);
      this.state = 'repairing';
      this.recovery = undefined;
      this.recoveredFrom = recoveredFrom;
      this.sendTruncates();
    });
  }

  /** The lowest truncation point among epochs newer than a segment's data epoch. */
  private clampForEpoch(dataEpoch: Epoch): Lsn {
    let clamp = (1n << 62n) - 1n;
    for (const entry of this.metadata.history) if (entry.epoch > dataEpoch) clamp = lsnMin(clamp, entry.truncateAboveLsn);
    return clamp;
  }

  private sendTruncates(segments?: SegmentId[]): void {
    const targets = segments ?? this.metadata.groups.flatMap((_, group) => this.segmentsOf(group));
    for (const segment of targets) {
      this.environment.send(nodeAddress(nodeOf(segment)), {
        kind: 'truncate',
        from: this.options.address,
        requestId: this.metadata.epoch,
        segment,
        history: this.metadata.history,
        peers: this.segmentsOf(groupOf(segment)).map(nodeOf),
      });
      this.view(segment).lastSentMs = this.environment.nowMs();
    }
  }

  /**
   * The recovered VDL may include records above the old VCL that only the segment with the
   * best chain held. If that segment has lost data since it replied (it reports repairing),
   * those records may exist nowhere, and no write quorum would ever reach the VDL. Nothing
   * up to the VDL has been confirmed to anyone yet, so recovery starts over at a new epoch,
   * whose truncation cuts the lost lineage.
   */
  private restartRecovery(segment: SegmentId): void {
    assert(this.state === 'repairing', 'only a recovery not yet open is restarted');
    this.environment.log('recovery_restarted', { epoch: this.metadata.epoch, damaged: segment });
    const done = this.openCallback;
    assert(done !== undefined, 'a repairing client has an open callback');
    this.state = 'closed';
    this.recoveredFrom = new Set();
    this.open(done);
  }

  /** Repairing ends when each PG has its records up to the VDL on a write quorum. */
  private checkRepairDone(): void {
    if (this.state !== 'repairing') return;
    for (let group = 0; group < this.metadata.groups.length; group++) {
      if (this.quorumPoint(group) < this.lastLsnOfGroup[group]!) return;
    }
    this.state = 'open';
    this.recoveredFrom = new Set();
    this.resumeMembershipChanges();
    this.environment.log('volume_open', { epoch: this.metadata.epoch, vdl: String(this.vdl) });
    const callback = this.openCallback;
    this.openCallback = undefined;
    callback?.();
  }

  // ------------------------------------------------------------------ writes

  /** Whether a mini-transaction of `records` records would be accepted now (LAL). */
  canAppend(records = 1): boolean {
    return this.state === 'open' && this.nextLsn + BigInt(records) - this.vdl <= this.options.limits.lsnAheadOfVdlMax;
  }

  /**
   * Turns one mini-transaction into redo records (the last one flagged CPL) and queues
   * them for sending. Returns the records; the last one's LSN is what commit() waits for.
   */
  writeMiniTransaction(patches: readonly PagePatch[]): RedoRecord[] {
    if (this.state === 'fenced') throw new StorageError('fenced', 'a newer writer owns the volume');
    if (this.state !== 'open') throw new StorageError('unavailable', `volume is ${this.state}`);
    assert(patches.length > 0, 'empty mini-transaction');
    if (this.nextLsn + BigInt(patches.length) - this.vdl > this.options.limits.lsnAheadOfVdlMax) {
      throw new StorageError('back_pressure', `writer is ${this.nextLsn - this.vdl} LSNs ahead of the VDL`);
    }
    const records: RedoRecord[] = [];
    patches.forEach((patch, index) => {
      const group = this.groupOf(patch.pageId);
      const lsn = this.nextLsn;
      this.nextLsn += 1n;
      const record: RedoRecord = {
        lsn,
        prevLsnOfThisPg: this.lastLsnOfGroup[group]!,
        pageId: patch.pageId,
        epoch: this.metadata.epoch,
        flags: index === patches.length - 1 ? FLAG_CPL : 0,
        kind: patch.kind,
        offset: patch.offset,
        data: patch.data,
      };
      this.lastLsnOfGroup[group] = lsn;
      this.pending[group]!.push(record);
      for (const segment of this.segmentsOf(group)) this.queueSend(segment, record);
      records.push(record);
    });
    this.cplQueue.push(records[records.length - 1]!.lsn);
    if (this.heldRecords === 0) this.heldSinceMs = this.environment.nowMs();
    this.heldRecords += records.length;
    if (this.heldRecords > this.options.limits.heldRecordsMax) this.scheduleFlush();
    return records;
  }

  /** Calls done once VDL >= lsn (or with an error if that can no longer be known). */
  commit(lsn: Lsn, done: (error?: StorageError) => void): void {
    if (lsn <= this.vdl) return this.environment.defer(() => done());
    if (this.state === 'fenced') return this.environment.defer(() => done(new StorageError('commit_unknown_result', 'writer fenced before the commit was durable')));
    if (this.commitWaiters.length >= this.options.limits.commitWaitersMax) {
      return this.environment.defer(() => done(new StorageError('overloaded', 'too many commits waiting')));
    }
    if (this.heldRecords > 0) this.requestFlush();
    const waiter = { lsn, done };
    const waiters = this.commitWaiters;
    if (waiters.length === 0 || waiters[waiters.length - 1]!.lsn <= lsn) waiters.push(waiter);
    else waiters.splice(waiters.findIndex((other) => other.lsn > lsn), 0, waiter);
  }

  private queueSend(segment: SegmentId, record: RedoRecord): void {
    let queue = this.outbox.get(segment);
    if (queue === undefined) {
      queue = [];
      this.outbox.set(segment, queue);
    }
    queue.push(record);
  }

  /** A commit needs its redo sent: now, or after commitDelayMs when other commits are waiting too. */
  private requestFlush(): void {
    const delayMs = this.options.commitDelayMs ?? 0;
    if (delayMs <= 0 || this.commitWaiters.length === 0 || this.environment.deferAfter === undefined) return this.scheduleFlush();
    if (this.flushDelayed || this.flushScheduled) return;
    this.flushDelayed = true;
    this.stats.heldCommits++;
    const hold = this.stats.heldCommits;
    this.environment.deferAfter(delayMs, () => {
      // A flush since has ended this hold; a later hold has its own timer.
      if (!this.flushDelayed || this.stats.heldCommits !== hold) return;
      this.flushDelayed = false;
      if (this.heldRecords > 0) this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (this.environment.deferBatch !== undefined) this.environment.deferBatch(() => this.flush());
    else this.environment.defer(() => this.flush());
  }

  /** Sends everything queued, one batch per segment (split at the batch limit). */
  flush(): void {
    this.flushScheduled = false;
    this.flushDelayed = false;
    if (this.outbox.size > 0) this.stats.flushes++;
    this.heldRecords = 0;
    for (const [segment, records] of this.outbox) {
      for (let start = 0; start < records.length; start += this.options.limits.batchRecordsMax) {
        this.sendBatch(segment, records.slice(start, start + this.options.limits.batchRecordsMax));
      }
    }
    this.outbox.clear();
  }

  private sendBatch(segment: SegmentId, records: RedoRecord[]): void {
    this.view(segment).lastSentMs = this.environment.nowMs();
    this.environment.send(nodeAddress(nodeOf(segment)), {
      kind: 'write',
      from: this.options.address,
      segment,
      epoch: this.metadata.epoch,
      // A hint promises that everything at or below it is on a write quorum: while repairing,
      // the recovered VDL is not yet, so the hint stays at the last point that was.
      vdlHint: this.state === 'open' ? this.vdl : this.durableHint,
      retentionLsn: this.retentionLsn,
      records,
    });
  }

  private onWriteAck(ack: WriteAck): void {
    const group = groupOf(ack.segment);
    if (group >= this.metadata.groups.length) return;
    switch (ack.status) {
      case 'ok': {
        const view = this.view(ack.segment);
        // A reordered ack from before a control change says nothing about the segment now.
        if (ack.controlSequence < view.controlSequence && ack.incarnation <= view.incarnation) return;
        const controlMoved = ack.controlSequence > view.controlSequence;
        this.noteSegment(ack.segment, ack.incarnation, ack.scl, ack.dataEpoch);
        // A control change (damage, hydration, repair) can lower the SCL within one
        // incarnation and epoch: the newest control state's SCL replaces the old one.
        if (controlMoved && ack.incarnation === view.incarnation && ack.dataEpoch === view.dataEpoch) view.scl = ack.scl;
        view.controlSequence = ack.controlSequence;
        view.repairing = ack.repairing;
        if (ack.repairing && this.state === 'repairing' && this.recoveredFrom.has(ack.segment)) return this.restartRecovery(ack.segment);
        if (ack.repairing && !ack.repairTargetKnown) this.sendRepairTarget(ack.segment);
        this.onGroupProgress(group);
        return;
      }
      case 'fenced':
        if (ack.fencedEpoch > this.metadata.epoch) this.becomeFenced(ack.segment);
        return;
      case 'stale_epoch':
        if (this.state === 'open' || this.state === 'repairing') this.sendTruncates([ack.segment]);
        return;
      case 'unknown_segment':
        // The node lost the segment (new disk): create it again; it hydrates from peers.
        this.sendMembership(ack.segment, false);
        return;
      default:
        this.environment.log('write_refused', { segment: ack.segment, status: ack.status });
    }
  }

  /**
   * Everything the segment may have helped make durable: the PG's last record that left the
   * pending queue (the PG's own quorum point can run ahead of the volume's VCL).
   */
  private sendRepairTarget(segment: SegmentId): void {
    if (this.state !== 'open' && this.state !== 'repairing') return;
    const group = groupOf(segment);
    const firstPending = this.pending[group]?.[0];
    const targetLsn = lsnMax(firstPending ? firstPending.prevLsnOfThisPg : (this.lastLsnOfGroup[group] ?? 0n), this.requiredScl(group, lsnMax(this.vcl, this.vdl)));
    this.environment.send(nodeAddress(nodeOf(segment)), { kind: 'repair-target', from: this.options.address, segment, targetLsn });
  }

  private becomeFenced(segment: SegmentId): void {
    if (this.state === 'fenced') return;
    this.environment.log('writer_fenced', { epoch: this.metadata.epoch, by: segment });
    this.state = 'fenced';
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    for (const waiter of waiters) waiter.done(new StorageError('commit_unknown_result', 'writer fenced before the commit was durable'));
    if (this.openCallback) this.failOpen(new StorageError('fenced', 'a newer writer owns the volume'));
  }

  private noteSegment(segment: SegmentId, incarnation: number, scl: Lsn, dataEpoch: Epoch): void {
    const view = this.view(segment);
    view.lastHeardMs = this.environment.nowMs();
    // Newer facts replace older ones: a new incarnation (restart), or a new data epoch (a
    // truncation can move the SCL down, and the LSNs above it are reused by the new lineage).
    if (incarnation < view.incarnation || dataEpoch < view.dataEpoch) return;
    if (incarnation > view.incarnation || dataEpoch > view.dataEpoch) {
      view.incarnation = incarnation;
      view.scl = scl;
    } else view.scl = lsnMax(view.scl, scl);
    view.dataEpoch = dataEpoch;
  }

  /** k-th highest SCL among segments of the set at this epoch (k = write quorum). */
  private quorumPointOf(group: number, nodes: readonly NodeId[]): Lsn {
    const scls = nodes
      .map((node) => this.segments.get(segmentId(protectionGroupId(group), node, this.metadata.volume)))
      .map((view) => (view !== undefined && view.dataEpoch === this.metadata.epoch && !view.repairing ? view.scl : -1n))
      .sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    return scls[this.options.writeQuorum - 1] ?? -1n;
  }

  private quorumPoint(group: number): Lsn {
    const membership = this.metadata.groups[group]!;
    const current = this.quorumPointOf(group, membership.members);
    return membership.next ? lsnMin(current, this.quorumPointOf(group, membership.next)) : current;
  }

  private onGroupProgress(group: number): void {
    if (this.state === 'repairing') return this.checkRepairDone();
    if (this.state !== 'open') return;
    const durable = this.quorumPoint(group);
    const pending = this.pending[group]!;
    let drop = 0;
    while (drop < pending.length && pending[drop]!.lsn <= durable) drop++;
    if (drop > 0) pending.splice(0, drop);
    this.advanceDurablePoints();
    this.checkMembershipChange(group);
  }

  private advanceDurablePoints(): void {
    let vcl = this.nextLsn - 1n;
    for (const pending of this.pending) {
      const first = pending[0];
      if (first !== undefined) vcl = lsnMin(vcl, first.lsn - 1n);
    }
    assert(vcl >= this.vcl, 'VCL went backwards');
    this.vcl = vcl;
    let vdl = this.vdl;
    while (this.cplQueue.size > 0 && this.cplQueue.first() <= vcl) vdl = this.cplQueue.shift();
    assert(vdl >= this.vdl, 'VDL went backwards');
    const moved = vdl > this.vdl;
    this.vdl = vdl;
    if (moved) this.onVdlAdvance?.(vdl);
    let fired = 0;
    while (fired < this.commitWaiters.length && this.commitWaiters[fired]!.lsn <= vdl) fired++;
    if (fired === 0) return;
    const ready = this.commitWaiters.splice(0, fired);
    for (const waiter of ready) waiter.done();
  }

  // ------------------------------------------------------------------ reads

  /** Reads a page as of atLsn from one segment known complete there, falling back to others. */
  readPage(pageId: PageId, atLsn: Lsn, done: (error: StorageError | undefined, page?: Uint8Array) => void): void {
    if (this.reads.size >= this.options.limits.readsInFlightMax) {
      return this.environment.defer(() => done(new StorageError('overloaded', 'too many reads in flight')));
    }
    const requestId = this.nextRequestId++;
    const now = this.environment.nowMs();
    this.reads.set(requestId, { pageId, atLsn, tried: new Set(), startedMs: now, sentMs: 0, target: undefined, done });
    this.tryRead(requestId);
  }

  private tryRead(requestId: number): void {
    const read = this.reads.get(requestId)!;
    const group = this.groupOf(read.pageId);
    const required = this.requiredScl(group, read.atLsn);
    const now = this.environment.nowMs();
    const candidates = this.segmentsOf(group).filter((segment) => {
      // A reader knows no SCLs: it asks, and a segment not complete at the point says so.
      // It skips, for a while, segments that let a read time out (their node may be down).
      if (this.state === 'reader') return !read.tried.has(segment) && (this.readerSuspects.get(segment) ?? 0) <= now;
      const view = this.segments.get(segment);
      return !read.tried.has(segment) && view !== undefined && !view.repairing && view.dataEpoch === this.metadata.epoch && view.scl >= required;
    });
    if (candidates.length === 0) {
      // Nobody is known complete right now; retry from scratch on the next tick.
      read.target = undefined;
      read.tried.clear();
      read.sentMs = this.environment.nowMs();
      return;
    }
    const target = this.environment.random.pick(candidates);
    read.target = target;
    read.tried.add(target);
    read.sentMs = this.environment.nowMs();
    this.environment.send(nodeAddress(nodeOf(target)), {
      kind: 'get-page',
      from: this.options.address,
      requestId,
      segment: target,
      epoch: this.metadata.epoch,
      pageId: read.pageId,
      atLsn: read.atLsn,
      requiredScl: required,
    });
  }

  /**
   * The SCL a segment of `group` must have reached to hold everything of the PG up to
   * `atLsn`. SCLs are LSNs of the PG's own records, so the answer must be one too, or a
   * quiet PG would never reach it: the PG's last record at or below atLsn when the client
   * knows it, else the nearest record above it that is already on a write quorum.
   */
  private requiredScl(group: number, atLsn: Lsn): Lsn {
    const pending = this.pending[group] ?? [];
    let lastAtOrBelow: Lsn | undefined;
    for (const record of pending) {
      if (record.lsn > atLsn) break;
      lastAtOrBelow = record.lsn;
    }
    if (lastAtOrBelow !== undefined) return lastAtOrBelow;
    const first = pending[0];
    if (first !== undefined) return first.prevLsnOfThisPg;
    return this.lastLsnOfGroup[group] ?? 0n;
  }

  private onPage(message: Extract<Message, { kind: 'page' }>): void {
    const read = this.reads.get(message.requestId);
    if (read === undefined || read.target !== message.segment) return;
    const page = message.status === 'ok' ? unsealPage(message.page) : undefined;
    if (page === undefined) {
      this.environment.log('read_fallback', { segment: message.segment, status: message.status });
      return this.tryRead(message.requestId);
    }
    this.reads.delete(message.requestId);
    read.done(undefined, page);
  }

  // ------------------------------------------------------------------ membership

  /**
   * Replaces `oldNode` by `newNode` in a PG (ABCDEF -> ABCDEG). Until the new segment has
   * caught up to the VCL of this moment, writes need a quorum of both sets.
   */
  replaceSegment(group: number, oldNode: NodeId, newNode: NodeId, done: (error?: Error) => void): void {
    const membership = this.metadata.groups[group]!;
    assert(membership.next === undefined, 'one membership change at a time per PG');
    assert(membership.members.includes(oldNode) && !membership.members.includes(newNode), 'bad replacement');
    const next: VolumeMetadata = structuredClone(this.metadata);
    next.groups[group]!.next = membership.members.map((node) => (node === oldNode ? newNode : node));
    this.environment.persistMetadata(next, (error) => {
      if (error) return done(error);
      this.metadata = next;
      this.membershipChanges.set(group, { catchUpLsn: this.requiredScl(group, this.vcl), newNode });
      this.environment.log('membership_change_started', { group, oldNode, newNode });
      this.announceMembership(group);
      done();
    });
  }

  /** A change a previous writer started (its `next` set is in the metadata) is finished by this one. */
  private resumeMembershipChanges(): void {
    this.metadata.groups.forEach((membership, group) => {
      if (membership.next === undefined || this.membershipChanges.has(group)) return;
      const newNode = membership.next.find((node) => !membership.members.includes(node));
      if (newNode === undefined) return;
      this.membershipChanges.set(group, { catchUpLsn: this.requiredScl(group, this.vdl), newNode });
      this.announceMembership(group);
    });
  }

  private announceMembership(group: number): void {
    for (const segment of this.segmentsOf(group)) this.sendMembership(segment, false);
  }

  private sendMembership(segment: SegmentId, bootstrap: boolean): void {
    this.environment.send(nodeAddress(nodeOf(segment)), {
      kind: 'membership',
      from: this.options.address,
      requestId: 0,
      segment,
      peers: this.segmentsOf(groupOf(segment)).map(nodeOf),
      history: this.metadata.history,
      bootstrap,
    });
  }

  private checkMembershipChange(group: number): void {
    const change = this.membershipChanges.get(group);
    const membership = this.metadata.groups[group]!;
    if (change === undefined || membership.next === undefined) return;
    const view = this.segments.get(segmentId(protectionGroupId(group), change.newNode, this.metadata.volume));
    if (view === undefined || view.dataEpoch !== this.metadata.epoch || view.scl < change.catchUpLsn) return;
    const next: VolumeMetadata = structuredClone(this.metadata);
    next.groups[group] = { members: membership.next };
    this.membershipChanges.delete(group);
    this.environment.persistMetadata(next, (error) => {
      if (error) {
        this.membershipChanges.set(group, change);
        return;
      }
      this.metadata = next;
      this.environment.log('membership_change_done', { group, members: next.groups[group]!.members });
      this.announceMembership(group);
    });
  }

  /** Replaces segments on nodes silent for longer than repairAfterMs with spares of the same AZ. */
  private repairSilentNodes(now: number): void {
    if (this.options.repairAfterMs <= 0 || this.state !== 'open') return;
    this.metadata.groups.forEach((membership, group) => {
      if (membership.next !== undefined || this.membershipChanges.has(group)) return;
      for (const node of membership.members) {
        const view = this.segments.get(segmentId(protectionGroupId(group), node, this.metadata.volume));
        if (view === undefined || now - view.lastHeardMs < this.options.repairAfterMs) continue;
        const zone = this.metadata.nodes.find((entry) => entry.node === node)?.availabilityZone;
        const spares = this.metadata.nodes.filter(
          (entry) => entry.availabilityZone === zone && !membership.members.includes(entry.node) && this.nodeResponsive(entry.node, now),
        );
        if (spares.length === 0) continue;
        const spare = this.environment.random.pick(spares).node;
        this.membershipChanges.set(group, { catchUpLsn: this.requiredScl(group, this.vcl), newNode: spare });
        this.replaceSegment(group, node, spare, (error) => {
          if (error) this.membershipChanges.delete(group);
        });
        return;
      }
    });
  }

  private nodeResponsive(node: NodeId, now: number): boolean {
    for (const [segment, view] of this.segments) {
      if (nodeOf(segment) === node && now - view.lastHeardMs < this.options.repairAfterMs) return true;
    }
    // A node we have never talked to is given the benefit of the doubt.
    return ![...this.segments.keys()].some((segment) => nodeOf(segment) === node);
  }

  /** For failure reports and status: the client's view of every PG. */
  describe(): string {
    return this.metadata.groups
      .map((membership, group) => {
        const segments = this.segmentsOf(group).map((segment) => {
          const view = this.segments.get(segment);
          return `${nodeOf(segment)}:${view ? `${view.scl}@e${view.dataEpoch}` : '?'}`;
        });
        return `pg${group} last ${this.lastLsnOfGroup[group]} quorum ${this.quorumPoint(group)} members ${membership.members.join(',')}${membership.next ? ` next ${membership.next.join(',')}` : ''} [${segments.join(' ')}]`;
      })
      .join('; ');
  }

  // ------------------------------------------------------------------ messages and time

  receive(message: Message): void {
    switch (message.kind) {
      case 'write-ack':
        return this.onWriteAck(message);
      case 'page':
        return this.onPage(message);
      case 'recovery-reply':
        return this.onRecoveryReply(message);
      case 'truncate-ack':
        // A fence of this client's own truncate from before a restarted recovery says nothing.
        if (message.status === 'fenced' && message.requestId === this.metadata.epoch) return this.becomeFenced(message.segment);
        if (message.status === 'ok') {
          this.noteSegment(message.segment, message.incarnation, message.scl, message.dataEpoch);
          this.onGroupProgress(groupOf(message.segment));
        }
        // The segment was never created (its bootstrap was lost) or its node lost it. Until
        // it exists it joins no quorum, and a PG short of segments never opens: create it;
        // it hydrates from its peers.
        if (message.status === 'unknown_segment') this.sendMembership(message.segment, false);
        return;
      case 'membership-ack':
        if (message.status === 'ok') this.view(message.segment).lastHeardMs = this.environment.nowMs();
        return;
      default:
        this.environment.log('unexpected_message', { kind: message.kind });
    }
  }

  tick(): void {
    const now = this.environment.nowMs();
    if (this.state === 'recovering' && this.recovery && now - this.recovery.sentMs >= this.options.resendAfterMs) this.sendRecoveryQueries();
    // Held redo nobody has asked for leaves after a while anyway.
    if (this.heldRecords > 0 && !this.flushScheduled && now - this.heldSinceMs >= (this.options.holdRedoMs ?? this.options.heartbeatMs)) this.flush();
    if (this.state === 'repairing' || this.state === 'open') {
      this.resend(now);
      this.repairSilentNodes(now);
    }
    for (const [requestId, read] of this.reads) {
      if (now - read.startedMs >= this.options.readTimeoutMs * 10) {
        this.reads.delete(requestId);
        read.done(new StorageError('unavailable', `no segment served page ${read.pageId} at ${read.atLsn}`));
      } else if (now - read.sentMs >= this.options.readTimeoutMs) {
        if (this.state === 'reader' && read.target !== undefined) this.readerSuspects.set(read.target, now + 5 * this.options.readTimeoutMs);
        this.tryRead(requestId);
      }
    }
  }

  /** Resends pending records to lagging segments; heartbeats the rest (carries the VDL). */
  private resend(now: number): void {
    for (let group = 0; group < this.metadata.groups.length; group++) {
      const pending = this.pending[group]!;
      for (const segment of this.segmentsOf(group)) {
        const view = this.view(segment);
        if (now - view.lastSentMs < this.options.resendAfterMs) continue;
        if (view.dataEpoch !== this.metadata.epoch) {
          this.sendTruncates([segment]);
          continue;
        }
        const missing = pending.filter((record) => record.lsn > view.scl).slice(0, this.options.limits.batchRecordsMax);
        if (missing.length > 0 || now - view.lastSentMs >= this.options.heartbeatMs) this.sendBatch(segment, missing);
      }
    }
  }
}

class RecoveryProgress {
  readonly replies = new Map<SegmentId, RecoveryReply>();
  private readonly done: boolean[];
  sentMs = 0;
  completing = false;
  constructor(groups: number) {
    this.done = new Array<boolean>(groups).fill(false);
  }
  groupDone(group: number): boolean {
    return this.done[group]!;
  }
  markGroupDone(group: number): void {
    this.done[group] = true;
  }
  allDone(): boolean {
    return this.done.every(Boolean);
  }
}
