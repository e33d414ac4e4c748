// One segment: one copy of one protection group on this node.
//
// Durable state lives in two places. The hot log (shared by the node's segments) holds
// records and control changes the moment they are acknowledged; the page store holds
// records, materialized page versions and a snapshot of the segment's state (`meta`),
// written in the background by coalescing. A log file is deleted only once everything in
// it is also in the page store. Start-up = page store meta + replay of the hot log.
//
// Segment complete LSN (SCL): every record of this protection group at or below it is
// durable here. It advances only along the prevLsnOfThisPg chain, so a hole (a lost
// message) stops it until gossip or a resend fills the hole.
//
// States:  active --(data lost: corrupt log or record; too far behind its peers; created
//   to replace another)--> repairing+hydrating (copying pages from a peer; serves nothing)
//   --snapshot in--> repairing (catching up by gossip; counts in no quorum)
//   --SCL reaches the repair target the writer sent--> active
// A repairing segment may have lost records it acknowledged, so until it has caught up with
// the writer's VCL of the moment it learned of the loss, it must not count in any quorum:
// with 4/6 writes and 3/6 reads, one copy that forgot is enough to make a read quorum miss.
// Epochs:  fencedEpoch >= dataEpoch. A recovery query raises fencedEpoch (writes with a
// lower epoch are refused from then on); a truncate raises dataEpoch to fencedEpoch and
// discards every record above the recovered VDL written under an older epoch.

import { assert, concatBytes, groupOfSegment, lsnMax, lsnMin, nodeOfSegment, PAGE_BYTES, protectionGroupId, segmentId, volumeOfSegment, type Epoch, type Lsn, type NodeId, type PageId, type SegmentId, type StorageLimits } from '../common/index.js';
import { fromJson, toJson } from '../common/json.js';
import { applyRedo, decodeRedo, emptyPage, encodeRedo, isCpl, sealPage, unsealPage, type RedoRecord } from '../page/index.js';
import type {
  AckStatus,
  Address,
  GetPage,
  GossipPull,
  GossipPush,
  HydrateChunk,
  HydrateRequest,
  Membership,
  Message,
  RecoveryQuery,
  Truncate,
  TruncationEntry,
  WriteBatch,
} from '../net/messages.js';
import type { NodeEnvironment, OrderedStore } from './environment.js';
import { encodeLogFrame, encodeLogFrames, LogFrameType, type LogWriter } from './log-writer.js';
import * as keys from './store-keys.js';

/** State changed only by control messages; written to the hot log before it is acted on. */
export interface SegmentControl {
  segment: SegmentId;
  group: number;
  controlSequence: number;
  dataEpoch: Epoch;
  fencedEpoch: Epoch;
  history: TruncationEntry[];
  peers: NodeId[];
  hydrating: boolean;
  repairing: boolean;
  /** Where a repairing segment is whole again; null until the writer has said. */
  repairTargetLsn: Lsn | null;
}

/** What the page store knows about a segment as of its last coalesce. */
export interface SegmentMeta extends SegmentControl {
  scl: Lsn;
  versionedLsn: Lsn;
  vdlHint: Lsn;
  gcLsn: Lsn;
  /** The newest record at or below gcLsn: GC may have deleted its order key. */
  gcChainLsn: Lsn;
  retentionLsn: Lsn;
}

export interface SegmentServices {
  node: NodeId;
  environment: NodeEnvironment;
  store: OrderedStore;
  log: LogWriter;
  limits: StorageLimits;
  incarnation: () => number;
}

interface TailEntry {
  record: RedoRecord;
  /** Hot log file holding the record, released once the record is in the page store. */
  file: string | undefined;
}

type ChunkBody = Omit<HydrateChunk, 'kind' | 'segment' | 'fromSegment' | 'dataEpoch' | 'session' | 'afterPageId'>;

/**
 * Records in LSN order. Module-level on purpose: a comparator written inline is a new
 * closure on every call, and V8 optimizes each such closure anew once a sort of a
 * coalescing pass makes it hot (about a tenth of a node's CPU went to recompiling them).
 */
function byLsn(a: { lsn: Lsn }, b: { lsn: Lsn }): number {
  return a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : 0;
}

type StoreJob = () => { puts: Array<[string, Uint8Array]>; deletes: string[]; after: () => void } | undefined;

const SEALED_PAGE_BYTES = PAGE_BYTES + 4;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** A record survives the history if no later truncation cut it off. */
export function survivesHistory(record: { lsn: Lsn; epoch: Epoch }, history: readonly TruncationEntry[]): boolean {
  for (const entry of history) {
    if (entry.epoch > record.epoch && record.lsn > entry.truncateAboveLsn) return false;
  }
  return true;
}

export function mergeHistory(mine: readonly TruncationEntry[], theirs: readonly TruncationEntry[], keepMax: number): TruncationEntry[] {
  const byEpoch = new Map<number, TruncationEntry>();
  for (const entry of [...mine, ...theirs]) byEpoch.set(entry.epoch, entry);
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch).slice(-keepMax);
}

/** Pages one GC job cleans up at most (each costs two range reads and its deletes). */
const GC_PAGES_PER_JOB = 4096;

export class Segment {
  control: SegmentControl;
  scl: Lsn;
  /** SCL as far as the page store alone covers it. */
  private storedScl: Lsn;
  versionedLsn: Lsn;
  vdlHint: Lsn;
  gcLsn: Lsn;
  gcChainLsn: Lsn;
  retentionLsn: Lsn;
  /** Records appended to the hot log but not yet in the page store. */
  private readonly tail = new Map<Lsn, TailEntry>();
  /** The tail's records by page, so materializing a page does not walk the whole tail. */
  private readonly tailByPage = new Map<PageId, Map<Lsn, RedoRecord>>();
  /** Records known above the SCL: lsn -> prevLsnOfThisPg, and the reverse. */
  private readonly aboveChain = new Map<Lsn, Lsn>();
  private readonly byPrevious = new Map<Lsn, Lsn>();
  /** Records on their way to the hot log. */
  private readonly appending = new Set<Lsn>();
  /** Control frames in the hot log not yet covered by a page store meta: [file, sequence]. */
  private controlFrames: Array<[string, number]> = [];
  private readonly storeJobs: StoreJob[] = [];
  private storeRetryAtMs = 0;
  /** Weighted chain records per page since its last version (a heuristic: restarts begin at zero). */
  private readonly recordsSinceVersion = new Map<PageId, number>();
  /**
   * Pages whose newest version (its LSN here) makes older versions and records garbage once
   * GC passes it. Kept in memory: after a restart, a page's old garbage goes with its next version.
   */
  private readonly collectable = new Map<PageId, Lsn>();
  private storeBusy = false;
  private storedControlSequence: number;
  private hydration: { peer: SegmentId; session: number; atLsn: Lsn; chainLsn: Lsn; afterPageId: number; sentMs: number; finishing: boolean } | undefined;
  private lastCoalesceMs = 0;
  private lastPullMs = -Infinity;
  /** Dropped with its volume: runs no more store jobs; its log frames are released. */
  private dropped = false;

  constructor(
    private readonly services: SegmentServices,
    meta: SegmentMeta,
  ) {
    this.control = { ...meta, history: [...meta.history], peers: [...meta.peers] };
    this.scl = meta.scl;
    this.storedScl = meta.scl;
    this.versionedLsn = meta.versionedLsn;
    this.vdlHint = meta.vdlHint;
    this.gcLsn = meta.gcLsn;
    this.gcChainLsn = meta.gcChainLsn;
    this.retentionLsn = meta.retentionLsn;
    this.storedControlSequence = meta.controlSequence;
    this.durableControlSequence = meta.controlSequence;
  }

  static fresh(segment: SegmentId, group: number): SegmentMeta {
    return {
      segment,
      group,
      controlSequence: 0,
      dataEpoch: 0 as Epoch,
      fencedEpoch: 0 as Epoch,
      history: [],
      peers: [],
      hydrating: false,
      repairing: false,
      repairTargetLsn: null,
      scl: 0n,
      versionedLsn: 0n,
      vdlHint: 0n,
      gcLsn: 0n,
      gcChainLsn: 0n,
      retentionLsn: 0n,
    };
  }

  static decodeMeta(bytes: Uint8Array): SegmentMeta {
    return fromJson<SegmentMeta>(textDecoder.decode(bytes));
  }

  get id(): SegmentId {
    return this.control.segment;
  }

  // ---------------------------------------------------------------- start-up replay

  replayControl(control: SegmentControl, file: string): void {
    if (control.controlSequence <= this.control.controlSequence) {
      this.services.log.release(file);
      return;
    }
    this.adoptControl(control);
    this.durableControlSequence = control.controlSequence;
    this.controlFrames.push([file, control.controlSequence]);
  }

  replayRecord(record: RedoRecord, file: string): void {
    const held = this.tail.get(record.lsn);
    // A truncated LSN can come back under a newer epoch: the newer record wins.
    if (held !== undefined && held.record.epoch < record.epoch) this.dropTailEntry(record.lsn);
    const duplicate = this.tail.has(record.lsn) || record.lsn <= this.scl || this.storeHasRecord(record);
    if (duplicate || !survivesHistory(record, this.control.history)) {
      this.services.log.release(file);
      return;
    }
    this.addTailEntry(record, file);
  }

  /** After replay: drop what the history cut off, rebuild the chain, finish truncation. */
  finishReplay(): void {
    for (const [lsn, entry] of this.tail) {
      if (!survivesHistory(entry.record, this.control.history) || entry.record.lsn <= this.scl) this.dropTailEntry(lsn);
    }
    const storedAbove = this.services.store.range({ start: keys.orderKey(this.id, this.scl + 1n), end: `${keys.orderPrefix(this.id)}g` });
    for (const [key, value] of storedAbove) {
      const page = keys.decodeU32(value);
      if (page === keys.HYDRATION_MARKER_PAGE) continue;
      const record = this.readStoredRecord(page, keys.lsnOfKey(key));
      if (record && survivesHistory(record, this.control.history)) this.noteAboveChain(record);
    }
    for (const entry of this.tail.values()) this.noteAboveChain(entry.record);
    this.advanceChain();
    this.scheduleStoreTruncation();
  }

  // ---------------------------------------------------------------- writes

  onWrite(batch: WriteBatch): void {
    const status = this.writeStatus(batch.epoch);
    if (status !== 'ok') return this.ack(batch.from, status);
    this.vdlHint = lsnMax(this.vdlHint, batch.vdlHint);
    this.retentionLsn = lsnMax(this.retentionLsn, batch.retentionLsn);
    this.acceptRecords(batch.records, batch.epoch, (acceptStatus) => this.ack(batch.from, acceptStatus));
  }

  private writeStatus(batchEpoch: Epoch): AckStatus {
    if (batchEpoch < this.control.fencedEpoch) return 'fenced';
    if (batchEpoch > this.control.dataEpoch) return 'stale_epoch';
    return 'ok';
  }

  /**
   * Appends the new records to the hot log; `done` runs once they are durable. Records at
   * or below the SCL, already held, or cut off by the history are dropped as duplicates.
   */
  private acceptRecords(records: readonly RedoRecord[], recordsEpoch: Epoch, done: (status: AckStatus) => void): void {
    const limits = this.services.limits;
    const fresh: RedoRecord[] = [];
    for (const record of records) {
      if (record.lsn <= this.scl || this.aboveChain.has(record.lsn) || this.appending.has(record.lsn)) continue;
      if (record.epoch > recordsEpoch || !survivesHistory(record, this.control.history)) continue;
      if (record.lsn <= this.gcLsn) continue;
      fresh.push(record);
    }
    if (fresh.length === 0) return done('ok');
    if (this.tail.size + this.appending.size + fresh.length > limits.hotTailRecordsMax) return done('overloaded');
    if (this.aboveChain.size + this.appending.size + fresh.length > limits.holeRecordsMax) return done('overloaded');
    for (const record of fresh) this.appending.add(record.lsn);
    const frames = encodeLogFrames(LogFrameType.Record, this.id, fresh.map((record) => encodeRedo(record)));
    const queued = this.services.log.appendEncoded(frames, fresh.length, (error, file) => {
      for (const record of fresh) this.appending.delete(record.lsn);
      if (error) {
        this.services.environment.log('hot_log_append_failed', { segment: this.id, error: error.message });
        return done('disk_error');
      }
      for (const record of fresh) {
        // The epoch may have moved while the log was syncing: a truncation may cut it off.
        if (record.lsn <= this.scl || this.aboveChain.has(record.lsn) || !survivesHistory(record, this.control.history)) {
          this.services.log.release(file);
          continue;
        }
        this.addTailEntry(record, file);
        this.noteAboveChain(record);
      }
      this.advanceChain();
      done('ok');
    });
    if (!queued) {
      for (const record of fresh) this.appending.delete(record.lsn);
      done('overloaded');
    }
  }

  private noteAboveChain(record: RedoRecord): void {
    if (record.lsn <= this.scl) return;
    this.aboveChain.set(record.lsn, record.prevLsnOfThisPg);
    this.byPrevious.set(record.prevLsnOfThisPg, record.lsn);
  }

  private advanceChain(): void {
    // A hydrating segment's chain is anchored only when the peer's snapshot is in.
    if (this.control.hydrating) return;
    for (;;) {
      const next = this.byPrevious.get(this.scl);
      if (next === undefined) break;
      this.byPrevious.delete(this.scl);
      this.aboveChain.delete(next);
      assert(next > this.scl, 'chain must move forward');
      this.scl = next;
    }
    this.checkRepaired();
  }

  private ack(to: Address, status: AckStatus): void {
    this.services.environment.send(to, {
      kind: 'write-ack',
      segment: this.id,
      status,
      dataEpoch: this.control.dataEpoch,
      fencedEpoch: this.control.fencedEpoch,
      scl: this.readableScl(),
      incarnation: this.services.incarnation(),
      repairing: this.control.repairing,
      repairTargetKnown: this.control.repairTargetLsn !== null,
      controlSequence: this.control.controlSequence,
    });
  }

  onRepairTarget(target: Extract<Message, { kind: 'repair-target' }>): void {
    if (!this.control.repairing) return this.ack(target.from, 'ok');
    const current = this.control.repairTargetLsn;
    if (current !== null && current >= target.targetLsn) return this.afterControlDurable(() => this.ack(target.from, 'ok'));
    this.persistControl({ ...this.control, repairTargetLsn: target.targetLsn }, (error) => {
      this.ack(target.from, error ? 'disk_error' : 'ok');
      this.checkRepaired();
    });
  }

  /** Leaves the repairing state once the chain has reached the writer's target. */
  private checkRepaired(): void {
    const target = this.control.repairTargetLsn;
    if (!this.control.repairing || this.control.hydrating || target === null || this.scl < target || this.repairDonePending) return;
    this.repairDonePending = true;
    this.persistControl({ ...this.control, repairing: false, repairTargetLsn: null }, () => {
      this.repairDonePending = false;
      this.services.environment.log('segment_repaired', { segment: this.id, scl: String(this.scl) });
    });
  }

  private repairDonePending = false;

  /** A hydrating segment's chain is not yet anchored: it reports nothing complete. */
  private readableScl(): Lsn {
    return this.control.hydrating ? 0n : this.scl;
  }

  // ---------------------------------------------------------------- reads

  onGetPage(request: GetPage): void {
    const reply = (status: AckStatus, page: Uint8Array = new Uint8Array(0)): void =>
      this.services.environment.send(request.from, { kind: 'page', requestId: request.requestId, segment: this.id, status, page });
    if (request.epoch !== this.control.dataEpoch) return reply('stale_epoch');
    if (this.control.repairing || request.requiredScl > this.scl || request.atLsn < this.gcLsn) return reply('not_readable');
    const result = this.materialize(request.pageId, request.atLsn);
    if (!result.ok) return reply(result.status);
    reply('ok', sealPage(result.page));
  }

  /** The page as of `atLsn`: newest stored version at or below it, plus later records. */
  materialize(page: PageId, atLsn: Lsn): { ok: true; page: Uint8Array; found: boolean } | { ok: false; status: AckStatus } {
    const store = this.services.store;
    const storeUpTo = this.storeCeiling(atLsn);
    const versions = store.range({ start: keys.versionPrefix(this.id, page), end: keys.versionKey(this.id, page, storeUpTo + 1n), reverse: true, limit: 1 });
    let image = emptyPage();
    let baseLsn = 0n;
    let found = false;
    const newest = versions[0];
    if (newest) {
      const unsealed = unsealPage(newest[1]);
      if (!unsealed) {
        this.reportCorruptVersion(page, keys.lsnOfKey(newest[0]));
        return { ok: false, status: 'checksum_mismatch' };
      }
      image = unsealed;
      baseLsn = keys.lsnOfKey(newest[0]);
      found = true;
    }
    const records = new Map<Lsn, RedoRecord>();
    for (const [key, value] of store.range({ start: keys.recordKey(this.id, page, baseLsn + 1n), end: keys.recordKey(this.id, page, storeUpTo + 1n) })) {
      const decoded = decodeRedo(value);
      if (!decoded.ok) {
        this.services.environment.log('corrupt_record', { segment: this.id, page, lsn: String(keys.lsnOfKey(key)) });
        this.markDamaged();
        return { ok: false, status: 'checksum_mismatch' };
      }
      records.set(decoded.value.lsn, decoded.value);
    }
    for (const record of this.tailByPage.get(page)?.values() ?? []) {
      if (record.lsn > baseLsn && record.lsn <= atLsn) records.set(record.lsn, record);
    }
    const ordered = [...records.values()].sort(byLsn);
    for (const record of ordered) applyRedo(image, record);
    return { ok: true, page: image, found: found || ordered.length > 0 };
  }

  private reportCorruptVersion(page: PageId, versionLsn: Lsn): void {
    this.services.environment.log('corrupt_page_version', { segment: this.id, page, lsn: String(versionLsn) });
    // Repair: ask a peer for the page as of that version's LSN and store it over the bad one.
    const peer = this.randomPeer();
    if (peer === undefined) return;
    this.services.environment.send(`node:${peer}`, {
      kind: 'hydrate-request',
      segment: peerSegment(this.id, peer),
      fromSegment: this.id,
      dataEpoch: this.control.dataEpoch,
      atLsn: versionLsn,
      afterPageId: -(page + 2),
      session: 0,
    });
  }

  // ---------------------------------------------------------------- recovery and fencing

  onRecoveryQuery(query: RecoveryQuery): void {
    if (query.newEpoch < this.control.fencedEpoch) return this.replyRecovery(query, 'fenced');
    if (query.newEpoch === this.control.fencedEpoch) return this.afterControlDurable(() => this.replyRecovery(query, 'ok'));
    this.persistControl({ ...this.control, fencedEpoch: query.newEpoch }, (error) => this.replyRecovery(query, error ? 'disk_error' : 'ok'));
  }

  private replyRecovery(query: RecoveryQuery, status: AckStatus): void {
    const chain: Array<[Lsn, boolean]> = [];
    let chainLsnAtHint = 0n;
    const base = lsnMax(this.vdlHint, this.gcLsn);
    if (status === 'ok' && !this.control.repairing) {
      for (const record of this.chainRecords(base, this.scl, Number.MAX_SAFE_INTEGER)) chain.push([record.lsn, isCpl(record)]);
      chainLsnAtHint = this.chainLsnAtOrBelow(base);
    }
    this.services.environment.send(query.from, {
      kind: 'recovery-reply',
      requestId: query.requestId,
      segment: this.id,
      status,
      dataEpoch: this.control.dataEpoch,
      scl: this.readableScl(),
      vdlHint: base,
      chainLsnAtHint,
      chain,
      repairing: this.control.repairing,
      incarnation: this.services.incarnation(),
    });
  }

  onTruncate(request: Truncate): void {
    const reply = (status: AckStatus): void =>
      this.services.environment.send(request.from, {
        kind: 'truncate-ack',
        requestId: request.requestId,
        segment: this.id,
        status,
        dataEpoch: this.control.dataEpoch,
        scl: this.readableScl(),
        incarnation: this.services.incarnation(),
      });
    const newest = request.history[request.history.length - 1];
    if (newest === undefined) return reply('malformed');
    if (newest.epoch < this.control.fencedEpoch) return reply('fenced');
    if (newest.epoch === this.control.dataEpoch) {
      if (sameNodes(request.peers, this.control.peers)) return this.afterControlDurable(() => reply('ok'));
      return this.persistControl({ ...this.control, peers: [...request.peers] }, (error) => reply(error ? 'disk_error' : 'ok'));
    }
    const history = mergeHistory(this.control.history, request.history, this.services.limits.epochHistoryMax);
    this.persistControl({ ...this.control, history, peers: [...request.peers], dataEpoch: newest.epoch, fencedEpoch: newest.epoch }, (error) =>
      reply(error ? 'disk_error' : 'ok'),
    );
  }

  /**
   * Makes a control change durable (hot log), then applies it. Applying a new data epoch
   * discards everything the history cuts off, in memory at once and in the store next.
   */
  private persistControl(next: SegmentControl, done: (error?: Error) => void): void {
    this.adoptControl({ ...next, controlSequence: this.control.controlSequence + 1 });
    this.appendControl(done);
  }

  /**
   * Appends the current control state. If the append fails, the state stays adopted in
   * memory (refusing more, never less) and tick() appends it again; nothing that depends on
   * it is confirmed to anyone before it is durable (afterControlDurable).
   */
  private appendControl(done: (error?: Error) => void): void {
    const control = this.control;
    const frame = encodeLogFrame({ type: LogFrameType.Control, segment: this.id, payload: textEncoder.encode(toJson(control)) });
    this.controlAppendsInFlight += 1;
    const queued = this.services.log.append([frame], (error, file) => {
      this.controlAppendsInFlight -= 1;
      if (error) {
        this.services.environment.log('control_append_failed', { segment: this.id, error: error.message });
        return done(error);
      }
      this.controlFrames.push([file, control.controlSequence]);
      this.noteControlDurable(control.controlSequence);
      done();
    });
    if (!queued) {
      this.controlAppendsInFlight -= 1;
      done(new Error('hot log queue full'));
    }
  }

  private noteControlDurable(sequence: number): void {
    if (sequence <= this.durableControlSequence) return;
    this.durableControlSequence = sequence;
    const ready = this.controlWaiters.filter((waiter) => waiter.sequence <= sequence);
    this.controlWaiters = this.controlWaiters.filter((waiter) => waiter.sequence > sequence);
    for (const waiter of ready) waiter.run();
  }

  /** Runs `run` once the control state as of now is durable. */
  private afterControlDurable(run: () => void): void {
    const sequence = this.control.controlSequence;
    if (sequence <= this.durableControlSequence) return run();
    this.controlWaiters.push({ sequence, run });
  }

  private durableControlSequence: number;
  private controlWaiters: Array<{ sequence: number; run: () => void }> = [];
  private controlAppendsInFlight = 0;

  /**
   * Applies control state in memory. Called before the control frame is durable: until it
   * is, no reply that depends on it has been sent, and replay after a crash simply does not
   * see it (a fence or truncate that was never acknowledged).
   */
  private adoptControl(control: SegmentControl): void {
    const epochMoved = control.dataEpoch > this.control.dataEpoch;
    // A repair target names a point of the old lineage; the new writer sets a new one.
    this.control = epochMoved && control.repairing ? { ...control, repairTargetLsn: null } : control;
    if (!epochMoved) return;
    for (const [lsn, entry] of this.tail) if (!survivesHistory(entry.record, control.history)) this.dropTailEntry(lsn);
    const cut = this.truncationPoint();
    if (cut !== undefined) {
      for (const lsn of [...this.aboveChain.keys()]) {
        if (lsn > cut) {
          const previous = this.aboveChain.get(lsn)!;
          this.aboveChain.delete(lsn);
          if (this.byPrevious.get(previous) === lsn) this.byPrevious.delete(previous);
        }
      }
      // The SCL is always the LSN of a record of this PG (the chain links by LSN), so a
      // cut between records moves it back to the last record at or below the cut.
      if (this.scl > cut) this.scl = this.chainLsnAtOrBelow(cut);
      this.versionedLsn = lsnMin(this.versionedLsn, cut);
      this.vdlHint = lsnMin(this.vdlHint, cut);
    }
    this.scheduleStoreTruncation();
  }

  /** Lowest truncation point among history entries newer than the store's data epoch. */
  private truncationPoint(): Lsn | undefined {
    let cut: Lsn | undefined;
    for (const entry of this.control.history) {
      if (entry.epoch > this.storedDataEpoch()) cut = cut === undefined ? entry.truncateAboveLsn : lsnMin(cut, entry.truncateAboveLsn);
    }
    return cut;
  }

  private storedEpoch: Epoch | undefined;
  private storedDataEpoch(): Epoch {
    if (this.storedEpoch === undefined) {
      const bytes = this.services.store.get(keys.metaKey(this.id));
      this.storedEpoch = bytes ? Segment.decodeMeta(bytes).dataEpoch : (0 as Epoch);
    }
    return this.storedEpoch;
  }

  private scheduleStoreTruncation(): void {
    this.enqueueStoreJob(() => {
      const cut = this.truncationPoint();
      if (cut === undefined) return undefined;
      const deletes: string[] = [];
      for (const [key, value] of this.services.store.range({ start: keys.orderKey(this.id, cut + 1n), end: `${keys.orderPrefix(this.id)}g` })) {
        const lsn = keys.lsnOfKey(key);
        const page = keys.decodeU32(value);
        deletes.push(key);
        if (page === keys.HYDRATION_MARKER_PAGE) continue;
        deletes.push(keys.recordKey(this.id, page, lsn), keys.versionKey(this.id, page, lsn));
      }
      const storedScl = lsnMin(this.storedScl, this.scl);
      const meta = this.metaSnapshot({ versionedLsn: this.versionedLsn, gcLsn: this.gcLsn, gcChainLsn: this.gcChainLsn, scl: storedScl });
      const epoch = this.control.dataEpoch;
      return {
        puts: [[keys.metaKey(this.id), meta]],
        deletes,
        after: () => {
          this.storedEpoch = epoch;
          this.storedScl = lsnMin(this.storedScl, storedScl);
        },
      };
    });
  }

  // ---------------------------------------------------------------- gossip

  /**
   * Pulls from a random peer. A segment with a hole above its SCL, or one repairing, pulls at
   * every call (the node's gossip interval); any other pulls once per `idleIntervalMs`, since
   * the writer itself resends what a segment it hears from lacks: the slow pull only covers
   * a tail missed after the writer stopped, and teaches truncation histories.
   */
  gossip(nowMs: number, idleIntervalMs: number): void {
    const behind = this.aboveChain.size > 0 || this.control.repairing || this.control.hydrating;
    if (!behind && nowMs - this.lastPullMs < idleIntervalMs) return;
    this.lastPullMs = nowMs;
    const peer = this.randomPeer();
    if (peer === undefined) return;
    this.services.environment.send(`node:${peer}`, {
      kind: 'gossip-pull',
      segment: peerSegment(this.id, peer),
      fromSegment: this.id,
      dataEpoch: this.control.dataEpoch,
      scl: this.readableScl(),
      history: this.control.history,
    });
  }

  onGossipPull(pull: GossipPull): void {
    this.learnHistory(pull.history);
    const push: GossipPush = {
      kind: 'gossip-push',
      segment: pull.fromSegment,
      fromSegment: this.id,
      dataEpoch: this.control.dataEpoch,
      vdlHint: this.vdlHint,
      history: this.control.history,
      hydrateFromLsn: 0n,
      records: [],
    };
    const nodeOfPuller = nodeOfSegment(pull.fromSegment);
    if (pull.dataEpoch === this.control.dataEpoch && !this.control.hydrating && this.scl > pull.scl) {
      // GC has deleted chain records up to gcChainLsn (the newest at or below gcLsn): a
      // puller below it needs a snapshot; one at or above it lacks only records GC kept.
      if (pull.scl < this.gcChainLsn) push.hydrateFromLsn = this.gcLsn;
      else push.records = this.chainRecords(pull.scl, this.scl, this.services.limits.batchRecordsMax);
    }
    if (push.records.length === 0 && push.hydrateFromLsn === 0n && pull.dataEpoch >= this.control.dataEpoch) return;
    this.services.environment.send(`node:${nodeOfPuller}`, push);
  }

  onGossipPush(push: GossipPush): void {
    this.learnHistory(push.history);
    if (push.dataEpoch !== this.control.dataEpoch) return;
    if (push.hydrateFromLsn > this.scl && !this.control.hydrating) {
      this.services.environment.log('segment_needs_hydration', { segment: this.id, scl: String(this.scl), peerGcLsn: String(push.hydrateFromLsn) });
      // A segment that merely lags lost nothing it acknowledged: everything up to its SCL
      // comes back with the peer's snapshot, so it needs no target from a writer (which,
      // if it is recovering, may itself be waiting for this segment).
      this.persistControl({ ...this.control, hydrating: true, repairing: true, repairTargetLsn: this.scl }, () => undefined);
      return;
    }
    if (push.records.length > 0) {
      this.vdlHint = lsnMax(this.vdlHint, lsnMin(push.vdlHint, push.records[push.records.length - 1]!.lsn));
      this.acceptRecords(push.records, this.control.dataEpoch, () => undefined);
    }
  }

  /** Adopts truncations this segment missed (it was down or partitioned during recovery). */
  private learnHistory(history: readonly TruncationEntry[]): void {
    const newest = history[history.length - 1];
    if (newest === undefined || newest.epoch <= this.control.dataEpoch) return;
    if (newest.epoch < this.control.fencedEpoch) return;
    const merged = mergeHistory(this.control.history, history, this.services.limits.epochHistoryMax);
    this.persistControl({ ...this.control, history: merged, dataEpoch: newest.epoch, fencedEpoch: newest.epoch }, () => undefined);
  }

  // ---------------------------------------------------------------- membership and hydration

  onMembership(request: Membership): void {
    const reply = (status: AckStatus): void =>
      this.services.environment.send(request.from, {
        kind: 'membership-ack',
        requestId: request.requestId,
        segment: this.id,
        status,
        scl: this.readableScl(),
        incarnation: this.services.incarnation(),
      });
    if (sameNodes(request.peers, this.control.peers)) return this.afterControlDurable(() => reply('ok'));
    this.persistControl({ ...this.control, peers: [...request.peers] }, (error) => reply(error ? 'disk_error' : 'ok'));
  }

  markDamaged(): void {
    if (this.control.hydrating) return;
    this.services.environment.log('segment_damaged', { segment: this.id });
    this.persistControl({ ...this.control, hydrating: true, repairing: true, repairTargetLsn: null }, () => undefined);
  }

  /** First control state of a segment the node did not host before. */
  initialize(request: Membership): void {
    const newest = request.history[request.history.length - 1];
    const epoch = newest?.epoch ?? (0 as Epoch);
    this.persistControl(
      { ...this.control, peers: [...request.peers], history: [...request.history], dataEpoch: epoch, fencedEpoch: epoch, hydrating: !request.bootstrap, repairing: !request.bootstrap, repairTargetLsn: null },
      (error) =>
        this.services.environment.send(request.from, {
          kind: 'membership-ack',
          requestId: request.requestId,
          segment: this.id,
          status: error ? 'disk_error' : 'ok',
          scl: this.readableScl(),
          incarnation: this.services.incarnation(),
        }),
    );
  }

  onHydrateRequest(request: HydrateRequest, from: SegmentId): void {
    const reply = (chunk: ChunkBody): void =>
      this.services.environment.send(`node:${nodeOfSegment(from)}`, {
        kind: 'hydrate-chunk',
        segment: from,
        fromSegment: this.id,
        dataEpoch: this.control.dataEpoch,
        session: request.session,
        afterPageId: request.afterPageId,
        ...chunk,
      });
    const refuse = (status: AckStatus): void => reply({ status, atLsn: request.atLsn, chainLsn: 0n, pageIds: [], done: true, pages: new Uint8Array(0) });
    if (request.dataEpoch !== this.control.dataEpoch) return refuse('stale_epoch');
    if (this.control.hydrating) return refuse('not_readable');
    if (request.afterPageId <= -2) return this.replyRepair(request, reply, refuse);
    const atLsn = request.atLsn === 0n ? lsnMax(this.gcLsn, lsnMin(this.versionedLsn, this.vdlHint)) : request.atLsn;
    if (atLsn < this.gcLsn || atLsn > this.scl) return refuse('not_readable');
    const pageIds: number[] = [];
    const sealed: Uint8Array[] = [];
    let after = request.afterPageId;
    let done = false;
    while (pageIds.length < this.services.limits.hydrationPagesMax) {
      // A page may have a version, records, or both.
      const nextVersion = this.services.store.range({ start: keys.versionPrefix(this.id, after + 1), end: `v/${this.id}0`, limit: 1 })[0];
      const nextRecord = this.services.store.range({ start: keys.recordPrefix(this.id, after + 1), end: `p/${this.id}0`, limit: 1 })[0];
      if (nextVersion === undefined && nextRecord === undefined) {
        done = true;
        break;
      }
      const page = Math.min(nextVersion ? keys.pageOfKey(nextVersion[0]) : Infinity, nextRecord ? keys.pageOfKey(nextRecord[0]) : Infinity);
      after = page;
      const materialized = this.materialize(page as PageId, atLsn);
      if (!materialized.ok) return refuse(materialized.status);
      if (!materialized.found) continue;
      pageIds.push(page);
      sealed.push(sealPage(materialized.page));
    }
    reply({ status: 'ok', atLsn, chainLsn: this.chainLsnAtOrBelow(atLsn), pageIds, done, pages: concatBytes(sealed) });
  }

  private replyRepair(request: HydrateRequest, reply: (chunk: ChunkBody) => void, refuse: (status: AckStatus) => void): void {
    const page = -request.afterPageId - 2;
    if (request.atLsn < this.gcLsn || request.atLsn > this.scl) return refuse('not_readable');
    const materialized = this.materialize(page as PageId, request.atLsn);
    if (!materialized.ok) return refuse(materialized.status);
    reply({ status: 'ok', atLsn: request.atLsn, chainLsn: 0n, pageIds: [page], done: true, pages: sealPage(materialized.page) });
  }

  onHydrateChunk(chunk: HydrateChunk): void {
    // Session 0 is a single-page repair; hydration sessions are numbered from 1.
    if (chunk.session === 0) return this.onPageRepairChunk(chunk);
    if (chunk.status !== 'ok' || chunk.dataEpoch !== this.control.dataEpoch) {
      this.services.environment.log('hydration_refused', { segment: this.id, peer: chunk.fromSegment, status: chunk.status, peerEpoch: chunk.dataEpoch });
      this.hydration = undefined;
      return;
    }
    const hydration = this.hydration;
    if (!this.control.hydrating || hydration === undefined || hydration.peer !== chunk.fromSegment) return;
    if (chunk.session !== hydration.session || chunk.afterPageId !== hydration.afterPageId) return;
    // The last chunk may carry no page, so it leaves afterPageId as it was: a duplicate of
    // it would match again and finish the hydration twice, the second time rewinding the
    // SCL of a segment already serving to the snapshot's anchor.
    if (hydration.finishing) return;
    if (hydration.atLsn !== 0n && hydration.atLsn !== chunk.atLsn) {
      this.hydration = undefined;
      return;
    }
    const puts: Array<[string, Uint8Array]> = [];
    chunk.pageIds.forEach((page, index) => {
      const sealed = chunk.pages.subarray(index * SEALED_PAGE_BYTES, (index + 1) * SEALED_PAGE_BYTES);
      if (unsealPage(sealed)) puts.push([keys.versionKey(this.id, page, chunk.chainLsn), sealed.slice()]);
    });
    this.services.environment.log('hydration_chunk', { segment: this.id, peer: chunk.fromSegment, atLsn: String(chunk.atLsn), chainLsn: String(chunk.chainLsn), pages: chunk.pageIds.join(','), done: chunk.done });
    hydration.atLsn = chunk.atLsn;
    hydration.chainLsn = chunk.chainLsn;
    hydration.afterPageId = chunk.pageIds[chunk.pageIds.length - 1] ?? hydration.afterPageId;
    hydration.sentMs = this.services.environment.nowMs();
    const finished = chunk.done;
    hydration.finishing = finished;
    this.enqueueStoreJob(() => ({
      puts,
      deletes: [],
      after: () => {
        if (finished) this.finishHydration(chunk.chainLsn);
        else this.requestHydrationChunk();
      },
    }));
  }

  private onPageRepairChunk(chunk: HydrateChunk): void {
    if (this.control.hydrating || chunk.dataEpoch !== this.control.dataEpoch) return;
    if (chunk.status === 'not_readable') {
      // The peer no longer holds the page as of that version (GC has passed it there, or
      // it lags). The bad version may be the only copy left here of records GC deleted,
      // and every coalesce that needs the page gives up, so the segment can no longer
      // vouch for the page nor keep up: it copies itself back from a peer instead.
      this.services.environment.log('page_repair_refused', { segment: this.id, peer: chunk.fromSegment, page: -chunk.afterPageId - 2, lsn: String(chunk.atLsn) });
      return this.markDamaged();
    }
    if (chunk.status !== 'ok' || chunk.pageIds.length !== 1) return;
    this.storeRepairedPage(chunk);
  }

  private storeRepairedPage(chunk: HydrateChunk): void {
    const page = chunk.pageIds[0]!;
    const sealed = chunk.pages.slice();
    if (!unsealPage(sealed)) return;
    this.enqueueStoreJob(() => {
      const key = keys.versionKey(this.id, page, chunk.atLsn);
      if (this.services.store.get(key) === undefined) return undefined;
      this.services.environment.log('page_version_repaired', { segment: this.id, page, lsn: String(chunk.atLsn) });
      return { puts: [[key, sealed]], deletes: [], after: () => undefined };
    });
  }

  private finishHydration(chainLsn: Lsn): void {
    this.hydration = undefined;
    this.enqueueStoreJob(() => {
      // Only the hydration in progress ends; a finished one must not be anchored again.
      if (!this.control.hydrating) return undefined;
      this.scl = chainLsn;
      this.versionedLsn = chainLsn;
      this.gcLsn = chainLsn;
      this.gcChainLsn = chainLsn;
      this.vdlHint = lsnMax(this.vdlHint, chainLsn);
      for (const [lsn] of this.tail) if (lsn <= chainLsn) this.dropTailEntry(lsn);
      this.aboveChain.clear();
      this.byPrevious.clear();
      for (const entry of this.tail.values()) this.noteAboveChain(entry.record);
      // The snapshot, its anchor and the end of hydration reach the store in one commit.
      this.control = { ...this.control, hydrating: false, controlSequence: this.control.controlSequence + 1 };
      this.storedScl = chainLsn;
      return {
        puts: [
          [keys.orderKey(this.id, chainLsn), keys.encodeU32(keys.HYDRATION_MARKER_PAGE)],
          [keys.metaKey(this.id), this.metaSnapshot({ versionedLsn: chainLsn, gcLsn: chainLsn, gcChainLsn: chainLsn, scl: chainLsn })],
        ],
        deletes: [],
        after: () => {
          this.storedControlSequence = this.control.controlSequence;
          this.noteControlDurable(this.control.controlSequence);
          this.advanceChain();
          this.services.environment.log('segment_hydrated', { segment: this.id, scl: String(this.scl) });
        },
      };
    });
  }

  private startHydration(): void {
    const peer = this.randomPeer();
    if (peer === undefined) return;
    this.hydration = { peer: peerSegment(this.id, peer), session: 1 + this.services.environment.random.integer(2 ** 30), atLsn: 0n, chainLsn: 0n, afterPageId: -1, sentMs: this.services.environment.nowMs(), finishing: false };
    // Old versions and records are useless once a peer's snapshot replaces them.
    this.enqueueStoreJob(() => {
      if (this.truncationPoint() !== undefined) return undefined;
      const deletes: string[] = [];
      for (const prefix of ['v', 'p', 'l']) {
        for (const [key] of this.services.store.range({ start: `${prefix}/${this.id}/`, end: `${prefix}/${this.id}0` })) deletes.push(key);
      }
      this.scl = 0n;
      this.versionedLsn = 0n;
      this.gcLsn = 0n;
      // Records known only from the store are deleted with it: the chain must forget them.
      this.aboveChain.clear();
      this.byPrevious.clear();
      for (const entry of this.tail.values()) this.noteAboveChain(entry.record);
      this.storedScl = 0n;
      this.gcChainLsn = 0n;
      return { puts: [[keys.metaKey(this.id), this.metaSnapshot({ versionedLsn: 0n, gcLsn: 0n, gcChainLsn: 0n, scl: 0n })]], deletes, after: () => this.requestHydrationChunk() };
    });
  }

  private requestHydrationChunk(): void {
    const hydration = this.hydration;
    if (hydration === undefined) return;
    hydration.sentMs = this.services.environment.nowMs();
    this.services.environment.send(`node:${nodeOfSegment(hydration.peer)}`, {
      kind: 'hydrate-request',
      segment: hydration.peer,
      fromSegment: this.id,
      dataEpoch: this.control.dataEpoch,
      atLsn: hydration.atLsn,
      afterPageId: hydration.afterPageId,
      session: hydration.session,
    });
  }

  // ---------------------------------------------------------------- background work

  tick(nowMs: number, options: { coalesceIntervalMs: number; hydrationTimeoutMs: number }): void {
    this.runStoreJobs();
    if (this.durableControlSequence < this.control.controlSequence && this.controlAppendsInFlight === 0) this.appendControl(() => undefined);
    if (this.control.hydrating) {
      if (this.hydration === undefined && this.storeIdle) this.startHydration();
      else if (this.hydration !== undefined && nowMs - this.hydration.sentMs > options.hydrationTimeoutMs) this.hydration = undefined;
    }
    const due = nowMs - this.lastCoalesceMs >= options.coalesceIntervalMs || this.tail.size >= this.services.limits.hotTailRecordsMax / 2;
    if (due && !this.storeBusy && this.storeJobs.length === 0 && (this.tail.size > 0 || this.controlFrames.length > 0 || this.gcDue())) {
      // The next pass is due in 0.75-1.25 intervals: nodes started together drift apart,
      // so that their passes (a pass holds the event loop for tens of milliseconds) do not
      // stall a write quorum at once.
      this.lastCoalesceMs = nowMs + (this.services.environment.random.next() - 0.5) * 0.5 * options.coalesceIntervalMs;
      this.enqueueStoreJob(() => this.coalesce());
    }
  }

  private gcDue(): boolean {
    return this.gcTarget() - this.gcLsn >= BigInt(this.services.limits.gcBatchLsns);
  }

  private gcTarget(): Lsn {
    return lsnMin(lsnMin(this.retentionLsn, this.vdlHint), this.versionedLsn);
  }

  /** Moves the tail into the page store and folds chain records into page versions. */
  private coalesce(): ReturnType<StoreJob> {
    // A pending truncation must reach the store first: a meta written now would carry the
    // new data epoch over records that the truncation has yet to delete.
    if (this.control.hydrating || this.truncationPoint() !== undefined) return undefined;
    const puts: Array<[string, Uint8Array]> = [];
    const deletes: string[] = [];
    const stored: Array<[Lsn, TailEntry]> = [...this.tail];
    // A page gets a new version once enough records have piled up on it since the last one;
    // otherwise its records stay as they are (a version costs a whole page, a record its
    // own size). A record weighs by its size, so that about a page's worth of record bytes
    // or recordsPerVersion small records make a version: what a page keeps beyond its
    // newest version stays near one page, and GC only deletes what versions make redundant.
    const versionAt = new Map<PageId, Lsn>();
    const upTo = this.scl;
    const perVersion = this.services.limits.recordsPerVersion;
    for (const record of this.chainRecords(this.versionedLsn, upTo, Number.MAX_SAFE_INTEGER)) {
      const weight = Math.max(1, Math.ceil((record.data.length * perVersion) / PAGE_BYTES));
      const count = (this.recordsSinceVersion.get(record.pageId) ?? 0) + weight;
      this.recordsSinceVersion.set(record.pageId, count);
      if (count >= perVersion) {
        versionAt.set(record.pageId, record.lsn);
        this.recordsSinceVersion.delete(record.pageId);
      }
    }
    for (const [page, lsn] of versionAt) {
      const materialized = this.materialize(page, lsn);
      if (!materialized.ok) return undefined;
      puts.push([keys.versionKey(this.id, page, lsn), sealPage(materialized.page)]);
    }
    // GC may reach the versions this commit makes (S14): a new version at or below the GC
    // point is where every read of its page starts from now on, so the tail records it
    // covers never reach the store, and what the store holds below it goes in this commit.
    // On a hot page (a pgbench branch, a history page) that is nearly all of its records.
    const gcFrom = this.gcLsn;
    const gcTo = lsnMin(lsnMin(this.retentionLsn, this.vdlHint), upTo);
    const collectNow = new Map<PageId, Lsn>();
    for (const [page, lsn] of versionAt) if (lsn <= gcTo && lsn > gcFrom) collectNow.set(page, lsn);
    const gc =
      collectNow.size > 0 || gcTo - gcFrom >= BigInt(this.services.limits.gcBatchLsns)
        ? this.collectGarbage(gcTo, deletes, collectNow)
        : { reached: gcFrom, anchor: this.gcChainLsn, collected: [] };
    const gcReached = gc.reached;
    for (const [, entry] of stored) {
      const record = entry.record;
      if (record.lsn <= (collectNow.get(record.pageId) ?? -1n)) continue;
      puts.push([keys.recordKey(this.id, record.pageId, record.lsn), encodeRedo(record)], [keys.orderKey(this.id, record.lsn), keys.encodeU32(record.pageId)]);
    }
    const meta = this.metaSnapshot({ versionedLsn: upTo, gcLsn: gcReached, gcChainLsn: gc.anchor, scl: upTo });
    puts.push([keys.metaKey(this.id), meta]);
    const coveredControl = this.control.controlSequence;
    const epochAtBuild = this.control.dataEpoch;
    return {
      puts,
      deletes,
      after: () => this.coalesced({ upTo, epochAtBuild, gcReached, gcAnchor: gc.anchor, gcCollected: gc.collected, versionAt, collectNow, stored, coveredControl }),
    };
  }

  /**
   * A coalescing commit is durable. A method rather than the job's own closure: its loops
   * run over thousands of entries, and V8 would optimize every new closure of them anew.
   */
  private coalesced(done: {
    upTo: Lsn;
    epochAtBuild: Epoch;
    gcReached: Lsn;
    gcAnchor: Lsn;
    gcCollected: Array<[PageId, Lsn]>;
    versionAt: ReadonlyMap<PageId, Lsn>;
    collectNow: ReadonlyMap<PageId, Lsn>;
    stored: Array<[Lsn, TailEntry]>;
    coveredControl: number;
  }): void {
    // Only now are the versions readable from the store; a truncation meanwhile has
    // already lowered these points and must not be undone.
    if (this.control.dataEpoch === done.epochAtBuild) {
      this.storedScl = lsnMax(this.storedScl, done.upTo);
      this.versionedLsn = lsnMax(this.versionedLsn, done.upTo);
    }
    // GC's deletions are committed whatever happened meanwhile, so the GC point moves
    // regardless: reads below it must be refused. It never passes a truncation point,
    // because GC stops at the vdlHint, which is durable and below any later cut.
    this.gcLsn = lsnMax(this.gcLsn, done.gcReached);
    this.gcChainLsn = lsnMax(this.gcChainLsn, done.gcAnchor);
    for (const [page, lsn] of done.gcCollected) if ((this.collectable.get(page) ?? lsn + 1n) <= lsn) this.collectable.delete(page);
    for (const [page, lsn] of done.versionAt) if (!done.collectNow.has(page) && (this.collectable.get(page) ?? -1n) < lsn) this.collectable.set(page, lsn);
    for (const [lsn, entry] of done.stored) {
      if (this.tail.get(lsn) === entry) this.dropTailEntry(lsn);
    }
    this.storedControlSequence = done.coveredControl;
    const remaining: Array<[string, number]> = [];
    for (const [file, sequence] of this.controlFrames) {
      if (sequence <= done.coveredControl) this.services.log.release(file);
      else remaining.push([file, sequence]);
    }
    this.controlFrames = remaining;
  }

  /**
   * Moves the GC point to `to`: for each page with a version at or below it, deletes the
   * older versions and every record at or below that version (a read at or above `to`
   * starts from that version). Pages without a version keep their records, so GC costs
   * what it deletes, not what was written. `fresh` are versions this job's own commit
   * makes, all collected; of the stored ones at most gcPagesPerJob pages per job, the rest
   * stay collectable for the next one (garbage left behind is never read).
   */
  private collectGarbage(to: Lsn, deletes: string[], fresh: ReadonlyMap<PageId, Lsn>): { reached: Lsn; anchor: Lsn; collected: Array<[PageId, Lsn]> } {
    const store = this.services.store;
    // Taken before the deletes: the newest chain record at or below `to` may be one of them.
    const anchor = lsnMax(this.gcChainLsn, this.chainLsnAtOrBelow(to));
    const collected: Array<[PageId, Lsn]> = [];
    for (const [page, versionLsn] of fresh) {
      collected.push([page, versionLsn]);
      this.collectBelow(page, versionLsn, deletes);
    }
    let stored = 0;
    for (const [page, versionLsn] of this.collectable) {
      if (versionLsn > to || fresh.has(page)) continue;
      if (stored++ >= GC_PAGES_PER_JOB) break;
      collected.push([page, versionLsn]);
      // A truncation or a hydration may have removed the version since it was made.
      if (store.has(keys.versionKey(this.id, page, versionLsn))) this.collectBelow(page, versionLsn, deletes);
    }
    return { reached: to, anchor, collected };
  }

  /** Adds to `deletes` what a version of `page` at `versionLsn` makes redundant (collectGarbage). */
  private collectBelow(page: PageId, versionLsn: Lsn, deletes: string[]): void {
    const store = this.services.store;
    for (const key of store.rangeKeys({ start: keys.versionPrefix(this.id, page), end: keys.versionKey(this.id, page, versionLsn) })) deletes.push(key);
    for (const key of store.rangeKeys({ start: keys.recordPrefix(this.id, page), end: keys.recordKey(this.id, page, versionLsn + 1n) })) {
      deletes.push(key, keys.orderKey(this.id, keys.lsnOfKey(key)));
    }
  }

  /**
   * The store's meta may only claim an SCL whose records are all in the store: on restart
   * the hot log is replayed only above it. Each store job says what its commit covers.
   */
  private metaSnapshot(points: { versionedLsn: Lsn; gcLsn: Lsn; gcChainLsn: Lsn; scl: Lsn }): Uint8Array {
    const meta: SegmentMeta = {
      ...this.control,
      scl: points.scl,
      versionedLsn: points.versionedLsn,
      vdlHint: this.vdlHint,
      gcLsn: points.gcLsn,
      gcChainLsn: points.gcChainLsn,
      retentionLsn: this.retentionLsn,
    };
    return textEncoder.encode(toJson(meta));
  }

  private enqueueStoreJob(job: StoreJob): void {
    this.storeJobs.push(job);
    this.runStoreJobs();
  }

  private runStoreJobs(): void {
    if (this.dropped || this.services.environment.nowMs() < this.storeRetryAtMs) return;
    while (!this.storeBusy && this.storeJobs.length > 0) {
      const job = this.storeJobs.shift()!;
      const work = job();
      if (work === undefined) continue;
      this.storeBusy = true;
      this.services.store.commit(work.puts, work.deletes, (error) => {
        this.storeBusy = false;
        if (error) {
          // Rebuilt from the current state when retried; a truncation must not be lost.
          this.services.environment.log('page_store_commit_failed', { segment: this.id, error: error.message });
          this.storeJobs.unshift(job);
          this.storeRetryAtMs = this.services.environment.nowMs() + 50;
        } else work.after();
        this.runStoreJobs();
      });
    }
  }

  get storeIdle(): boolean {
    return !this.storeBusy && this.storeJobs.length === 0;
  }

  /** Whether no page store commit of this segment is in flight (a dropped one starts none). */
  get storeQuiet(): boolean {
    return !this.storeBusy;
  }

  /**
   * The segment's volume was dropped and the node no longer routes to it: it starts no more
   * store jobs, and lets go of every hot log frame it held, so the files can go.
   */
  detach(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.storeJobs.length = 0;
    for (const lsn of [...this.tail.keys()]) this.dropTailEntry(lsn);
    for (const [file] of this.controlFrames) this.services.log.release(file);
    this.controlFrames = [];
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Until a truncation has reached the store, the store still holds rows of the old
   * lineage above the cut, at LSNs the new lineage reuses: reads of the store stop there.
   */
  private storeCeiling(upTo: Lsn): Lsn {
    const cut = this.truncationPoint();
    return cut !== undefined && cut < upTo ? cut : upTo;
  }

  /** Chain records in (after, upTo], in LSN order, from the store and the tail. */
  chainRecords(after: Lsn, upTo: Lsn, limit: number): RedoRecord[] {
    const found = new Map<Lsn, RedoRecord>();
    if (upTo <= after) return [];
    const storeUpTo = this.storeCeiling(upTo);
    for (const [key, value] of this.services.store.range({ start: keys.orderKey(this.id, after + 1n), end: keys.orderKey(this.id, storeUpTo + 1n), limit })) {
      const page = keys.decodeU32(value);
      if (page === keys.HYDRATION_MARKER_PAGE) continue;
      const record = this.readStoredRecord(page, keys.lsnOfKey(key));
      if (record) found.set(record.lsn, record);
    }
    for (const [lsn, entry] of this.tail) if (lsn > after && lsn <= upTo) found.set(lsn, entry.record);
    return [...found.values()].sort(byLsn).slice(0, limit);
  }

  private chainLsnAtOrBelow(lsn: Lsn): Lsn {
    // GC deletes old order keys; the anchor remembers the newest record it walked past.
    let best = this.gcChainLsn <= lsn ? this.gcChainLsn : 0n;
    const stored = this.services.store.range({ start: keys.orderPrefix(this.id), end: keys.orderKey(this.id, this.storeCeiling(lsn) + 1n), reverse: true, limit: 1 })[0];
    if (stored) best = lsnMax(best, keys.lsnOfKey(stored[0]));
    for (const candidate of this.tail.keys()) if (candidate <= lsn && candidate <= this.scl && candidate > best) best = candidate;
    return best;
  }

  private readStoredRecord(page: number, lsn: Lsn): RedoRecord | undefined {
    const bytes = this.services.store.get(keys.recordKey(this.id, page, lsn));
    if (bytes === undefined) return undefined;
    const decoded = decodeRedo(bytes);
    if (!decoded.ok) {
      // A record this segment may have acknowledged is gone: it can vouch for nothing.
      this.services.environment.log('corrupt_record', { segment: this.id, page, lsn: String(lsn) });
      this.markDamaged();
      return undefined;
    }
    return decoded.value;
  }

  private storeHasRecord(record: RedoRecord): boolean {
    return this.services.store.has(keys.recordKey(this.id, record.pageId, record.lsn));
  }

  private addTailEntry(record: RedoRecord, file: string | undefined): void {
    // An entry replaced under the same LSN leaves the page index (and its log frame) too.
    if (this.tail.has(record.lsn)) this.dropTailEntry(record.lsn);
    this.tail.set(record.lsn, { record, file });
    let onPage = this.tailByPage.get(record.pageId);
    if (onPage === undefined) this.tailByPage.set(record.pageId, (onPage = new Map()));
    onPage.set(record.lsn, record);
  }

  private dropTailEntry(lsn: Lsn): void {
    const entry = this.tail.get(lsn);
    if (entry === undefined) return;
    this.tail.delete(lsn);
    const onPage = this.tailByPage.get(entry.record.pageId);
    if (onPage !== undefined && onPage.delete(lsn) && onPage.size === 0) this.tailByPage.delete(entry.record.pageId);
    if (entry.file !== undefined) this.services.log.release(entry.file);
  }

  private randomPeer(): NodeId | undefined {
    const peers = this.control.peers.filter((peer) => peer !== this.services.node);
    if (peers.length === 0) return undefined;
    return this.services.environment.random.pick(peers);
  }

  status(): { segment: SegmentId; dataEpoch: Epoch; scl: Lsn; gcLsn: Lsn; hydrating: boolean; repairing: boolean } {
    return { segment: this.id, dataEpoch: this.control.dataEpoch, scl: this.readableScl(), gcLsn: this.gcLsn, hydrating: this.control.hydrating, repairing: this.control.repairing };
  }

  /** For the simulator's invariant checks: the records this segment holds on its chain. */
  inspectChain(after: Lsn, upTo: Lsn): RedoRecord[] {
    return this.chainRecords(after, lsnMin(upTo, this.scl), Number.MAX_SAFE_INTEGER);
  }

  /** For failure reports: the segment's background machinery. */
  describeState(): string {
    const hydration = this.hydration ? `hydration from ${this.hydration.peer} at ${this.hydration.atLsn} after page ${this.hydration.afterPageId}` : 'no hydration';
    return `${hydration}, store ${this.storeBusy ? 'busy' : 'idle'} with ${this.storeJobs.length} jobs, truncation ${String(this.truncationPoint())}, tail ${this.tail.size}, peers ${this.control.peers.join(',')}`;
  }

  /** For failure reports: what the segment holds for one page. */
  describePage(page: PageId): string {
    const store = this.services.store;
    const versions = store.range({ start: keys.versionPrefix(this.id, page), end: `${keys.versionPrefix(this.id, page)}g` }).map(([key]) => keys.lsnOfKey(key));
    const records = store.range({ start: keys.recordPrefix(this.id, page), end: `${keys.recordPrefix(this.id, page)}g` }).map(([key, value]) => {
      const decoded = decodeRedo(value);
      return decoded.ok ? `${decoded.value.lsn}e${decoded.value.epoch}p${decoded.value.prevLsnOfThisPg}` : `${keys.lsnOfKey(key)}!`;
    });
    const tail = [...this.tail.values()].filter((entry) => entry.record.pageId === page).map((entry) => entry.record.lsn);
    return `versions ${versions.join(',')} stored records ${records.join(',')} tail ${tail.join(',')}`;
  }

  handles(message: Message): boolean {
    return 'segment' in message && message.segment === this.id;
  }
}

/** The same protection group's segment (of the same volume) on another node. */
function peerSegment(mine: SegmentId, peer: NodeId): SegmentId {
  return segmentId(protectionGroupId(groupOfSegment(mine)), peer, volumeOfSegment(mine));
}

function sameNodes(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((node, index) => node === b[index]);
}

