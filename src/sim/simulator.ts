// The deterministic simulator: storage nodes and volume clients run unchanged against a
// simulated clock, network and disks driven by one seeded random. Faults: node crash and
// restart (unsynced writes lost or torn), whole-AZ outage, message drop, delay, duplicate,
// reorder, bit flips on the wire and on disk, disk-full/EIO on append, writer crash (the
// old writer sometimes lives on as a zombie) and a new writer's recovery, and a node that
// dies for good, which the writer repairs by a membership change mid-traffic.
//
// After every 10 ms step it checks DESIGN.md §8 invariants 1-4 (see checkStep); after the
// fault phase it heals everything, demands convergence, opens a fresh writer and checks
// every acknowledged commit and every page on every segment.

import { availabilityZone, defaultClientLimits, groupOfSegment, defaultStorageLimits, nodeId, pageId, SeededRandom, type Epoch, type Lsn, type NodeId, type PageId, type Random } from '../common/index.js';
import { AssertionFailure } from '../common/assert.js';
import { applyRedo, emptyPage, encodeWriteMany, RedoKind, type RedoRecord } from '../page/index.js';
import { decodeMessage, encodeMessage, type Address, type Message } from '../net/messages.js';
import { StorageNode, type NodeEnvironment } from '../storage-node/index.js';
import { derivedFromStored, VolumeClient, type ClientEnvironment, type PagePatch, type VolumeMetadata } from '../volume-client/index.js';
import { EventQueue } from './event-queue.js';
import { SimLogDisk, SimOrderedStore } from './sim-disk.js';

export type InjectedBug = 'none' | 'ack-before-fsync' | 'write-quorum-3';

export interface SimulationOptions {
  seed: number;
  bug: InjectedBug;
  faultPhaseMs: number;
  healPhaseMs: number;
  verbose: boolean;
}

export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
  constructor(
    readonly invariant: number,
    message: string,
  ) {
    super(`invariant ${invariant}: ${message}`);
  }
}

export interface SimulationResult {
  seed: number;
  ok: boolean;
  failure?: string;
  stats: Record<string, number>;
}

const ZONES = ['az-a', 'az-b', 'az-c'];
const NODES_PER_ZONE = 3;
const GROUPS = 3;
const PAGES_PER_GROUP = 8;
const STEP_MS = 10;

interface SimNode {
  id: NodeId;
  zone: string;
  disk: SimLogDisk;
  store: SimOrderedStore;
  node: StorageNode | undefined;
  /** Down nodes receive nothing; a node down "for good" is never restarted in the fault phase. */
  up: boolean;
  permanentlyDown: boolean;
  logs: string[];
  /** Segment states when the node last went down: what its disk holds (everything acknowledged was synced). */
  atCrash: Map<string, { scl: Lsn; dataEpoch: number; repairing: boolean }>;
}

interface SimWriter {
  name: string;
  client: VolumeClient;
  alive: boolean;
  zombie: boolean;
}

/** Reference model of the volume: the records of the current lineage, by LSN and by page. */
class ReferenceVolume {
  readonly records = new Map<Lsn, RedoRecord>();
  readonly byPage = new Map<number, RedoRecord[]>();
  readonly byGroup = new Map<number, Lsn[]>();
  lineageEpoch = 0;

  add(record: RedoRecord): void {
    this.records.set(record.lsn, record);
    const group = Math.floor(record.pageId / PAGES_PER_GROUP);
    let lsns = this.byGroup.get(group);
    if (lsns === undefined) {
      lsns = [];
      this.byGroup.set(group, lsns);
    }
    lsns.push(record.lsn);
    let list = this.byPage.get(record.pageId);
    if (list === undefined) {
      list = [];
      this.byPage.set(record.pageId, list);
    }
    list.push(record);
  }

  truncateAbove(lsn: Lsn): void {
    for (const key of [...this.records.keys()]) if (key > lsn) this.records.delete(key);
    for (const list of this.byPage.values()) while (list.length > 0 && list[list.length - 1]!.lsn > lsn) list.pop();
    for (const list of this.byGroup.values()) while (list.length > 0 && list[list.length - 1]! > lsn) list.pop();
  }

  /** The group's last record at or below lsn (0 when none). */
  lastOfGroup(group: number, lsn: Lsn): Lsn {
    const list = this.byGroup.get(group) ?? [];
    for (let index = list.length - 1; index >= 0; index--) if (list[index]! <= lsn) return list[index]!;
    return 0n;
  }

  page(page: PageId, atLsn: Lsn): Uint8Array {
    const image = emptyPage();
    for (const record of this.byPage.get(page) ?? []) {
      if (record.lsn > atLsn) break;
      applyRedo(image, record);
    }
    return image;
  }
}

export class Simulation {
  private readonly events = new EventQueue();
  private readonly random: Random;
  private readonly nodes: SimNode[] = [];
  private writers: SimWriter[] = [];
  private metadata: VolumeMetadata;
  private readonly reference = new ReferenceVolume();
  private readonly ackedCommits: Lsn[] = [];
  private maxAckedCommit = 0n;
  private maxVdlSeen = 0n;
  private writerSequence = 0;
  /** The epoch each writer last wrote to the metadata store. */
  private readonly epochsTaken = new Map<string, number>();
  private faultsEnabled = true;
  private networkFaults = { drop: 0.02, duplicate: 0.02, flip: 0.005, slow: 0.05 };
  private damagedNode: { node: NodeId; untilVdl: Lsn } | undefined;
  /** While set, messages between these addresses and everyone else are lost. */
  private partition: Set<Address> | undefined;
  private readonly stats: Record<string, number> = {
    commitsAcked: 0,
    recoveries: 0,
    nodeCrashes: 0,
    zoneOutages: 0,
    diskFlips: 0,
    wireFlips: 0,
    storeFlips: 0,
    membershipChanges: 0,
    checks: 0,
    zombies: 0,
    pageReads: 0,
  };
  private readonly trace: string[] = [];

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    for (const [zoneIndex, zone] of ZONES.entries()) {
      for (let index = 0; index < NODES_PER_ZONE; index++) {
        const id = nodeId(zoneIndex * NODES_PER_ZONE + index + 1);
        this.nodes.push({
          id,
          zone,
          disk: new SimLogDisk(this.events, this.random, { appendErrorProbability: 0.002 }),
          store: new SimOrderedStore(this.events, this.random),
          node: undefined,
          up: false,
          permanentlyDown: false,
          logs: [],
          atCrash: new Map(),
        });
      }
    }
    // Each PG: 2 nodes per AZ, rotating so PGs land on different node sets.
    const groups = Array.from({ length: GROUPS }, (_, group) => ({
      members: ZONES.flatMap((_, zoneIndex) => [0, 1].map((offset) => nodeId(zoneIndex * NODES_PER_ZONE + ((group + offset) % NODES_PER_ZONE) + 1))),
    }));
    this.metadata = {
      epoch: 0 as Epoch,
      history: [],
      pagesPerGroup: PAGES_PER_GROUP,
      groups,
      nodes: this.nodes.map((node) => ({ node: node.id, availabilityZone: node.zone })),
    };
  }

  private note(line: string): void {
    this.trace.push(`${this.events.nowMs.toFixed(1)}ms ${line}`);
    if (this.trace.length > 200) this.trace.shift();
    if (this.options.verbose) console.log(`[${this.events.nowMs.toFixed(1)}] ${line}`);
  }

  // ------------------------------------------------------------------ wiring

  private nodeEnvironment(simNode: SimNode): NodeEnvironment {
    return {
      nowMs: () => this.events.nowMs,
      random: this.random,
      send: (to, message) => this.send(`node:${simNode.id}`, to, message),
      log: (event, fields) => {
        simNode.logs.push(event);
        if (simNode.logs.length > 50) simNode.logs.shift();
        if (this.options.verbose) console.log(`[${this.events.nowMs.toFixed(1)}] node${simNode.id} ${event} ${JSON.stringify(fields, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
      },
    };
  }

  private startNode(simNode: SimNode): void {
    simNode.up = true;
    const node = new StorageNode(this.nodeEnvironment(simNode), simNode.disk, simNode.store, {
      node: simNode.id,
      availabilityZone: availabilityZone(simNode.zone),
      limits: { ...defaultStorageLimits, hotTailRecordsMax: 256, logFileBytesMax: 16 * 1024, hydrationPagesMax: 4, batchRecordsMax: 64, recordsPerVersion: 1 + this.random.integer(8), gcBatchLsns: 1 + this.random.integer(64) },
      groupCommit: this.random.chance(0.8),
      gossipIntervalMs: 20,
      coalesceIntervalMs: 15 + this.random.integer(40),
      hydrationTimeoutMs: 100,
      ...(this.options.bug === 'ack-before-fsync' ? { acknowledgeBeforeSync: true } : {}),
    });
    simNode.node = node;
    node.start((error) => {
      if (error) this.note(`node${simNode.id} failed to start: ${error.message}`);
    });
  }

  private crashNode(simNode: SimNode): void {
    for (const segment of simNode.node?.allSegments() ?? []) {
      simNode.atCrash.set(segment.id, { scl: segment.scl, dataEpoch: segment.control.dataEpoch, repairing: segment.control.repairing });
    }
    simNode.up = false;
    simNode.node = undefined;
    simNode.disk.crash();
    simNode.store.crash();
    this.stats['nodeCrashes']! += 1;
  }

  private send(from: Address, to: Address, message: Message): void {
    const bytes = encodeMessage(message);
    const faults = this.faultsEnabled ? this.networkFaults : { drop: 0, duplicate: 0, flip: 0, slow: 0 };
    if (this.random.chance(faults.drop)) return;
    if (this.partition !== undefined && this.partition.has(from) !== this.partition.has(to)) return;
    const copies = this.random.chance(faults.duplicate) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      let delivered = bytes;
      if (this.random.chance(faults.flip)) {
        delivered = bytes.slice();
        const at = this.random.integer(delivered.length);
        delivered[at] = delivered[at]! ^ (1 << this.random.integer(8));
        this.stats['wireFlips']! += 1;
      }
      // Random latency reorders messages; a few are very slow.
      const delayMs = this.random.chance(faults.slow) ? 20 + this.random.next() * 200 : 0.05 + this.random.next();
      const frame = delivered;
      this.events.after(delayMs, () => this.deliver(from, to, frame));
    }
  }

  private deliver(from: Address, to: Address, frame: Uint8Array): void {
    const decoded = decodeMessage(frame);
    if (!decoded.ok) return; // A corrupted frame is detected and dropped; the sender retries.
    if (to.startsWith('node:')) {
      const target = this.nodes.find((node) => `node:${node.id}` === to);
      if (target === undefined || !target.up || target.node === undefined) return;
      if (from.startsWith('node:') && !this.nodes.find((node) => `node:${node.id}` === from)?.up) return;
      target.node.receive(decoded.message);
      return;
    }
    const writer = this.writers.find((candidate) => `client:${candidate.name}` === to);
    if (writer === undefined || !writer.alive) return;
    writer.client.receive(decoded.message);
  }

  private clientEnvironment(name: string): ClientEnvironment {
    const epochsTaken = this.epochsTaken;
    return {
      nowMs: () => this.events.nowMs,
      random: this.random,
      send: (to, message) => this.send(`client:${name}`, to, message),
      defer: (task) => this.events.after(0, task),
      deferAfter: (delayMs, task) => this.events.after(delayMs, task),
      log: (event, fields) => {
        if (event === 'membership_change_done') this.stats['membershipChanges']! += 1;
        if (this.options.verbose) console.log(`[${this.events.nowMs.toFixed(1)}] ${name} ${event} ${JSON.stringify(fields, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
      },
      persistMetadata: (metadata, done) => {
        // The control plane's store: durable once done runs. An epoch is taken by one writer
        // only (compare-and-set), and only the newest epoch may write. A writer that takes an
        // epoch must have read the last change of the metadata, or it would erase it.
        this.events.after(0.5, () => {
          const known = epochsTaken.get(name) ?? metadata.epoch;
          const taking = metadata.epoch > known || !epochsTaken.has(name);
          if (metadata.epoch < this.metadata.epoch || (taking && metadata.epoch <= this.metadata.epoch && this.metadata.epoch > 0)) {
            return done(new Error('metadata belongs to an older epoch'));
          }
          if (taking && !derivedFromStored(metadata, this.metadata)) return done(new Error('metadata changed since the writer read it'));
          epochsTaken.set(name, metadata.epoch);
          this.metadata = structuredClone(metadata);
          done();
        });
      },
    };
  }

  private startWriter(): void {
    const name = `writer${++this.writerSequence}`;
    const client = new VolumeClient(this.clientEnvironment(name), this.metadata, {
      address: `client:${name}`,
      limits: { ...defaultClientLimits, lsnAheadOfVdlMax: 400n, batchRecordsMax: 64 },
      writeQuorum: this.options.bug === 'write-quorum-3' ? 3 : 4,
      readQuorum: 3,
      resendAfterMs: 30,
      heartbeatMs: 40,
      readTimeoutMs: 50,
      repairAfterMs: 600,
      // Group commit on for two writers in three, held up to 0-8 ms.
      commitDelayMs: this.random.integer(3) === 0 ? 0 : this.random.integer(9),
    });
    const writer: SimWriter = { name, client, alive: true, zombie: false };
    this.writers.push(writer);
    this.stats['recoveries']! += 1;
    this.note(`${name} opening`);
    client.open((error) => {
      if (error) {
        this.note(`${name} failed to open: ${error.message}`);
        writer.alive = false;
        return;
      }
      this.onWriterOpen(writer);
    });
  }

  private onWriterOpen(writer: SimWriter): void {
    const client = writer.client;
    this.note(`${writer.name} open at epoch ${client.epoch} vdl ${client.vdl}`);
    // Invariant 1: every acknowledged commit is at or below the recovered VDL.
    if (client.vdl < this.maxAckedCommit) {
      throw new InvariantViolation(1, `recovered VDL ${client.vdl} is below acknowledged commit ${this.maxAckedCommit}`);
    }
    // Invariant 2: the VDL never goes backwards, across writers either.
    if (client.vdl < this.maxVdlSeen) throw new InvariantViolation(2, `recovered VDL ${client.vdl} is below a VDL already reached (${this.maxVdlSeen})`);
    this.reference.truncateAbove(client.vdl);
    this.reference.lineageEpoch = client.epoch;
  }

  private currentWriter(): SimWriter | undefined {
    const live = this.writers.filter((writer) => writer.alive && !writer.zombie);
    return live[live.length - 1];
  }

  // ------------------------------------------------------------------ workload

  /** LSNs behind the VDL the writer retains for readers; none until a fault picks one. */
  private retentionWindow: Lsn | undefined;

  private followRetention(writer: SimWriter): void {
    const window = this.retentionWindow;
    if (window === undefined || writer.client.state !== 'open') return;
    writer.client.retentionLsn = writer.client.vdl > window ? writer.client.vdl - window : 0n;
  }

  private writeSomething(writer: SimWriter): void {
    this.followRetention(writer);
    const client = writer.client;
    const count = 1 + this.random.integer(3);
    if (!client.canAppend(count)) return;
    const patches: PagePatch[] = [];
    for (let index = 0; index < count; index++) {
      const page = pageId(this.random.integer(client.pageCount));
      const choice = this.random.integer(10);
      if (choice === 0) patches.push({ pageId: page, kind: RedoKind.Init, offset: 0, data: new Uint8Array(0) });
      else if (choice === 1) {
        const image = new Uint8Array(8192);
        for (let at = 0; at < 64; at++) image[this.random.integer(8192)] = this.random.integer(256);
        patches.push({ pageId: page, kind: RedoKind.Image, offset: 0, data: image });
      } else if (choice === 2) {
        // Several ranges in one record, as the engine ships a page's changes.
        const ranges: Array<{ offset: number; data: Uint8Array }> = [];
        for (let range = 1 + this.random.integer(4); range > 0; range--) {
          const length = 1 + this.random.integer(24);
          const data = new Uint8Array(length);
          for (let at = 0; at < length; at++) data[at] = this.random.integer(256);
          ranges.push({ offset: this.random.integer(8192 - length), data });
        }
        patches.push({ pageId: page, kind: RedoKind.WriteMany, offset: 0, data: encodeWriteMany(ranges) });
      } else {
        const length = 1 + this.random.integer(48);
        const data = new Uint8Array(length);
        for (let at = 0; at < length; at++) data[at] = this.random.integer(256);
        patches.push({ pageId: page, kind: RedoKind.Write, offset: this.random.integer(8192 - length), data });
      }
    }
    let records: RedoRecord[];
    try {
      records = client.writeMiniTransaction(patches);
    } catch (error) {
      if ((error as { code?: string }).code === 'back_pressure' || (error as { code?: string }).code === 'fenced') return;
      throw error;
    }
    if (client.epoch === this.reference.lineageEpoch) for (const record of records) this.reference.add(record);
    const commitLsn = records[records.length - 1]!.lsn;
    client.commit(commitLsn, (error) => {
      if (error) return;
      this.ackedCommits.push(commitLsn);
      if (commitLsn > this.maxAckedCommit) this.maxAckedCommit = commitLsn;
      this.stats['commitsAcked']! += 1;
    });
  }

  /** Reads a page at the VDL through the client; what comes back must equal the reference. */
  private readSomething(writer: SimWriter): void {
    const client = writer.client;
    const atLsn = client.vdl;
    const page = pageId(this.random.integer(client.pageCount));
    const lineage = this.reference.lineageEpoch;
    client.readPage(page, atLsn, (error, bytes) => {
      if (error || bytes === undefined) return;
      this.stats['pageReads']! += 1;
      // Compare only while the lineage is the one the read was issued in.
      if (this.reference.lineageEpoch !== lineage || client.epoch !== lineage) return;
      if (!sameBytes(bytes, this.reference.page(page, atLsn))) {
        throw new InvariantViolation(4, `${writer.name} read page ${page} at ${atLsn} and got bytes that differ from the reference`);
      }
    });
  }

  // ------------------------------------------------------------------ faults

  private injectFault(): void {
    const up = this.nodes.filter((node) => node.up);
    const down = this.nodes.filter((node) => !node.up && !node.permanentlyDown);
    const roll = this.random.integer(100);
    if (roll < 20 && up.length > 0) {
      const victim = this.random.pick(up);
      this.note(`crash node${victim.id}`);
      this.crashNode(victim);
      this.events.after(20 + this.random.integer(300), () => {
        if (!victim.up && !victim.permanentlyDown) {
          this.note(`restart node${victim.id}`);
          this.startNode(victim);
        }
      });
    } else if (roll < 25) {
      const zone = this.random.pick(ZONES);
      this.note(`outage of ${zone}`);
      this.stats['zoneOutages']! += 1;
      for (const node of this.nodes) if (node.zone === zone && node.up) this.crashNode(node);
      this.events.after(50 + this.random.integer(400), () => {
        for (const node of this.nodes) if (node.zone === zone && !node.up && !node.permanentlyDown) this.startNode(node);
        this.note(`${zone} back`);
      });
    } else if (roll < 33 && down.length > 0) {
      const node = this.random.pick(down);
      this.note(`restart node${node.id}`);
      this.startNode(node);
    } else if (roll < 38) {
      this.flipDiskBit();
    } else if (roll < 48) {
      this.crashWriter();
    } else if (roll < 50) {
      this.killNodeForGood();
    } else if (roll < 54) {
      this.partitionWriter();
    } else if (roll < 60) {
      this.powerLossEverywhere();
    } else if (roll < 66) {
      const writer = this.currentWriter();
      if (writer && writer.client.state === 'open') {
        // Readers and PITR pin history: from now on the writer keeps a window of versions
        // behind the VDL, from none (GC then reaches the versions each coalescing pass
        // makes, as on a writer without readers) to 200 LSNs.
        this.retentionWindow = BigInt(this.random.integer(201));
        this.followRetention(writer);
      }
    }
  }

  /** Disk corruption destroys acknowledged data: at most one node is allowed to be damaged at a time. */
  private flipDiskBit(): void {
    if (this.damagedNode !== undefined) return;
    const candidates = this.nodes.filter((node) => node.up && !node.permanentlyDown);
    if (candidates.length === 0) return;
    const victim = this.random.pick(candidates);
    const writer = this.currentWriter();
    const untilVdl = writer?.client.vdl ?? this.maxVdlSeen;
    const where = this.random.integer(3);
    if (where === 0) {
      if (!victim.disk.flipBit()) return;
      this.stats['diskFlips']! += 1;
      this.note(`bit flip in node${victim.id} hot log; crash and restart`);
      // The flip is found at the next start-up.
      this.crashNode(victim);
      this.events.after(5, () => this.startNode(victim));
    } else {
      const key = victim.store.flipBit(where === 1 ? 'v/' : 'p/');
      if (key === undefined) return;
      this.stats['storeFlips']! += 1;
      this.note(`bit flip in node${victim.id} page store at ${key}`);
    }
    this.damagedNode = { node: victim.id, untilVdl };
  }

  private crashWriter(): void {
    const writer = this.currentWriter();
    if (writer === undefined || writer.client.state === 'recovering') return;
    if (this.random.chance(0.4)) {
      writer.zombie = true;
      this.stats['zombies']! += 1;
      this.note(`${writer.name} partitioned from the control plane: lives on as a zombie`);
      this.events.after(100 + this.random.integer(400), () => {
        writer.alive = false;
      });
    } else {
      writer.alive = false;
      this.note(`${writer.name} crashed`);
    }
    this.events.after(this.random.integer(50), () => this.startWriter());
  }

  /**
   * Cuts the writer and 3 or 4 nodes off from the rest; a new writer starts on the other
   * side. Sometimes the cut-off side then loses power at once (nodes and writer crash).
   * A correct protocol acknowledges nothing that the other side cannot recover.
   */
  private partitionWriter(): void {
    const writer = this.currentWriter();
    if (this.partition !== undefined || writer === undefined || writer.client.state !== 'open') return;
    const up = this.nodes.filter((node) => node.up);
    const side = new Set<Address>([`client:${writer.name}`]);
    const size = 3 + this.random.integer(2);
    for (const node of shuffle(up, this.random).slice(0, size)) side.add(`node:${node.id}`);
    this.partition = side;
    this.note(`partition: ${[...side].join(' ')} cut off from the rest`);
    const powerLoss = this.random.chance(0.5);
    this.events.after(30 + this.random.integer(150), () => {
      if (powerLoss) {
        this.note('the cut-off side loses power');
        for (const node of this.nodes) if (side.has(`node:${node.id}`) && node.up) this.crashNode(node);
        writer.alive = false;
        this.events.after(50 + this.random.integer(200), () => {
          for (const node of this.nodes) if (side.has(`node:${node.id}`) && !node.up && !node.permanentlyDown) this.startNode(node);
        });
      } else {
        writer.zombie = true;
        this.events.after(200, () => (writer.alive = false));
      }
      this.startWriter();
      this.events.after(100 + this.random.integer(200), () => {
        this.partition = undefined;
        this.note('partition healed');
      });
    });
  }

  /** Every node and the writer lose power at once: only what was synced survives. */
  private powerLossEverywhere(): void {
    this.note('power loss everywhere');
    for (const node of this.nodes) if (node.up) this.crashNode(node);
    for (const writer of this.writers) writer.alive = false;
    this.events.after(20 + this.random.integer(100), () => {
      for (const node of this.nodes) if (!node.up && !node.permanentlyDown) this.startNode(node);
      this.startWriter();
    });
  }

  private killNodeForGood(): void {
    if (this.nodes.some((node) => node.permanentlyDown)) return;
    const candidates = this.nodes.filter((node) => node.up);
    if (candidates.length === 0) return;
    const victim = this.random.pick(candidates);
    this.note(`node${victim.id} dies for good`);
    this.crashNode(victim);
    victim.permanentlyDown = true;
  }

  // ------------------------------------------------------------------ checks

  /** Cheap checks of invariants 1-4 after every step, sampled across segments and pages. */
  private checkStep(): void {
    this.stats['checks']! += 1;
    for (const writer of this.writers) {
      if (!writer.alive || writer.zombie || writer.client.state !== 'open') continue;
      if (writer.client.vdl > this.maxVdlSeen && writer.client.epoch === this.reference.lineageEpoch) this.maxVdlSeen = writer.client.vdl;
    }
    this.releaseDamage();
    this.checkQuorumDurability();
    const simNode = this.random.pick(this.nodes);
    if (!simNode.up || simNode.node === undefined) return;
    for (const segment of simNode.node.allSegments()) {
      if (segment.control.dataEpoch < this.reference.lineageEpoch || segment.control.repairing) continue;
      // Invariants 2 and 3: a segment at the current epoch holds exactly the lineage's records.
      const from = segment.scl > 40n ? segment.scl - 40n : 0n;
      for (const record of segment.inspectChain(lsnMaxOf(from, segment.gcLsn), segment.scl)) {
        const expected = this.reference.records.get(record.lsn);
        if (expected === undefined) {
          if (record.lsn <= this.lineageHigh()) throw new InvariantViolation(2, `${segment.id} holds record ${record.lsn} (epoch ${record.epoch}) that the lineage truncated or never had`);
          continue;
        }
        if (expected.epoch !== record.epoch || !sameBytes(expected.data, record.data) || expected.pageId !== record.pageId) {
          throw new InvariantViolation(3, `${segment.id} holds record ${record.lsn} from epoch ${record.epoch}, the lineage has epoch ${expected.epoch}`);
        }
      }
      // Invariant 4: a page read at an LSN the segment is complete at equals the reference.
      if (segment.control.dataEpoch !== this.reference.lineageEpoch) continue;
      const page = pageId(groupOfSegment(segment.id) * PAGES_PER_GROUP + this.random.integer(PAGES_PER_GROUP));
      const top = segment.scl < this.lineageHigh() ? segment.scl : this.lineageHigh();
      if (top < segment.gcLsn) continue;
      const atLsn = segment.gcLsn + BigInt(this.random.integer(Number(top - segment.gcLsn) + 1));
      const materialized = segment.materialize(page, atLsn);
      if (!materialized.ok) continue; // corruption detected: never served
      if (!sameBytes(materialized.page, this.reference.page(page, atLsn))) {
        throw new InvariantViolation(4, `${segment.id} page ${page} at ${atLsn} differs from the reference (segment scl ${segment.scl} gc ${segment.gcLsn} versioned ${segment.versionedLsn} epoch ${segment.control.dataEpoch}; page records ${(this.reference.byPage.get(page) ?? []).filter((record) => record.lsn <= atLsn + 50n).slice(-8).map((record) => `${record.lsn}e${record.epoch}p${record.prevLsnOfThisPg}`).join(',')}; segment has ${segment.describePage(page)})`);
      }
    }
  }

  /**
   * Invariant 1, continuously: each PG's last record at or below the VDL is on a write
   * quorum, less the segments that have failed since (died for good, or repairing after a
   * loss). Down nodes count with what their disk holds. Gossip must not be what hides a
   * record acknowledged with too few copies.
   */
  private checkQuorumDurability(): void {
    if (this.maxVdlSeen === 0n) return;
    for (let group = 0; group < GROUPS; group++) {
      const needed = this.reference.lastOfGroup(group, this.maxVdlSeen);
      if (needed === 0n) continue;
      const membership = this.metadata.groups[group]!;
      const members = new Set([...membership.members, ...(membership.next ?? [])]);
      let holders = 0;
      let failed = 0;
      const seen: string[] = [];
      for (const member of members) {
        const simNode = this.nodes.find((node) => node.id === member)!;
        const id = `pg${group}@node${member}`;
        const live = simNode.up ? simNode.node?.segment(id as never) : undefined;
        const state = live ? { scl: live.scl, dataEpoch: live.control.dataEpoch, repairing: live.control.repairing } : simNode.atCrash.get(id);
        if (simNode.permanentlyDown || state === undefined || state.repairing) {
          failed++;
          continue;
        }
        let clamp = state.scl;
        for (const entry of this.metadata.history) if (entry.epoch > state.dataEpoch && entry.truncateAboveLsn < clamp) clamp = entry.truncateAboveLsn;
        seen.push(`${member}:${clamp}`);
        if (clamp >= needed) holders++;
      }
      if (holders + failed < 4) {
        throw new InvariantViolation(1, `PG ${group}'s record ${needed} (at or below VDL ${this.maxVdlSeen}) is held by ${holders} segments with ${failed} failed [${seen.join(' ')}]`);
      }
    }
  }

  /** The highest LSN the reference knows in the current lineage. */
  private lineageHigh(): Lsn {
    let high = 0n;
    for (const lsn of this.reference.records.keys()) if (lsn > high) high = lsn;
    return high;
  }

  private releaseDamage(): void {
    const damaged = this.damagedNode;
    if (damaged === undefined) return;
    const simNode = this.nodes.find((node) => node.id === damaged.node)!;
    if (simNode.permanentlyDown) return;
    if (!simNode.up || simNode.node === undefined) return;
    const repaired = simNode.node.allSegments().every((segment) => !segment.control.repairing && segment.scl >= damaged.untilVdl);
    if (repaired) this.damagedNode = undefined;
  }

  // ------------------------------------------------------------------ run

  run(): SimulationResult {
    try {
      this.runPhases();
      return { seed: this.options.seed, ok: true, stats: this.stats };
    } catch (error) {
      const kind = error instanceof InvariantViolation || error instanceof AssertionFailure ? '' : 'unexpected error: ';
      const message = `${kind}${(error as Error).message}`;
      if (this.options.verbose) console.log((error as Error).stack);
      return { seed: this.options.seed, ok: false, failure: `${message}\nlast events:\n  ${this.trace.slice(-25).join('\n  ')}`, stats: this.stats };
    }
  }

  private runPhases(): void {
    for (const node of this.nodes) this.startNode(node);
    // Create the volume's segments (bootstrap), then open the first writer.
    this.events.after(1, () => {
      for (const { to, message } of VolumeClient.bootstrapMessages(this.metadata, 'client:bootstrap')) this.send('client:bootstrap', to, message);
    });
    this.events.after(30, () => this.startWriter());
    let nextFaultMs = 100;
    const end = this.options.faultPhaseMs;
    for (let now = 0; now < end; now += STEP_MS) {
      this.runUntil(now + STEP_MS);
      this.tickEveryone();
      const writer = this.currentWriter();
      if (writer && writer.client.state === 'open') {
        for (let index = 0; index < 4; index++) this.writeSomething(writer);
        this.readSomething(writer);
      }
      for (const zombie of this.writers.filter((candidate) => candidate.alive && candidate.zombie)) {
        if (zombie.client.state === 'open') this.writeSomething(zombie);
      }
      if (now >= nextFaultMs) {
        // Faults strike at any moment, not only between steps: mid-fsync, mid-flight.
        this.events.after(this.random.next() * STEP_MS, () => {
          if (this.faultsEnabled) this.injectFault();
        });
        nextFaultMs = now + 20 + this.random.integer(120);
      }
      this.checkStep();
    }
    this.heal();
  }

  private runUntil(untilMs: number): void {
    let guard = 0;
    while (this.events.step(untilMs)) {
      if (++guard > 2_000_000) throw new Error('simulation made no progress in time (event storm)');
    }
    this.events.nowMs = untilMs;
  }

  private tickEveryone(): void {
    for (const node of this.nodes) if (node.up) node.node?.tick();
    for (const writer of this.writers) if (writer.alive) writer.client.tick();
  }

  /**
   * Heal: stop faults, restart every node, let the system converge, then crash the writer
   * and recover once more: every acknowledged commit must survive, every segment must hold
   * the lineage and serve the reference pages.
   */
  private heal(): void {
    this.faultsEnabled = false;
    this.partition = undefined;
    for (const node of this.nodes) if (!node.up && !node.permanentlyDown) this.startNode(node);
    for (const writer of this.writers) if (writer.zombie) writer.alive = false;
    if (this.currentWriter() === undefined || this.currentWriter()!.client.state === 'fenced') this.startWriter();
    const deadline = this.events.nowMs + this.options.healPhaseMs;
    for (let now = this.events.nowMs; now < deadline; now += STEP_MS) {
      this.runUntil(now + STEP_MS);
      this.tickEveryone();
      const writer = this.currentWriter();
      if (writer && writer.client.state === 'open' && this.random.chance(0.3)) this.writeSomething(writer);
      this.checkStep();
    }
    // Quiesce, then a final recovery by a fresh writer.
    for (let index = 0; index < 150; index++) {
      this.runUntil(this.events.nowMs + STEP_MS);
      this.tickEveryone();
    }
    const last = this.currentWriter();
    if (last === undefined || last.client.state !== 'open') throw new InvariantViolation(1, `liveness: no open writer after healing (state ${last?.client.state ?? 'none'}: ${last?.client.describe()}; ${this.describeSegments()})`);
    last.alive = false;
    this.startWriter();
    for (let index = 0; index < 300 && this.currentWriter()?.client.state !== 'open'; index++) {
      this.runUntil(this.events.nowMs + STEP_MS);
      this.tickEveryone();
    }
    const final = this.currentWriter();
    if (final === undefined || final.client.state !== 'open') {
      throw new InvariantViolation(1, `liveness: the final writer did not open (${final?.client.state}: ${final?.client.describe()}; ${this.describeSegments()})`);
    }
    for (let index = 0; index < 200; index++) {
      this.runUntil(this.events.nowMs + STEP_MS);
      this.tickEveryone();
    }
    this.checkConverged(final.client.vdl);
  }

  private describeSegments(): string {
    return this.nodes
      .map((simNode) => `node${simNode.id}${simNode.up ? '' : '(down)'}: ${(simNode.node?.allSegments() ?? []).map((segment) => `${segment.id} scl ${segment.scl} e${segment.control.dataEpoch}/${segment.control.fencedEpoch}${segment.control.hydrating ? ' hydrating' : ''}${segment.control.repairing ? ' repairing' : ''}`).join(', ')}`)
      .join('; ');
  }

  /** After healing every live segment holds the lineage up to the VDL and serves it. */
  private checkConverged(vdl: Lsn): void {
    for (const simNode of this.nodes) {
      if (simNode.permanentlyDown || simNode.node === undefined) continue;
      for (const segment of simNode.node.allSegments()) {
        const group = groupOfSegment(segment.id);
        const members = this.metadata.groups[group]!;
        const inGroup = members.members.includes(simNode.id) || (members.next ?? []).includes(simNode.id);
        if (!inGroup) continue;
        if (segment.control.dataEpoch !== this.reference.lineageEpoch || segment.control.repairing) {
          throw new InvariantViolation(1, `liveness: ${segment.id} did not converge (epoch ${segment.control.dataEpoch}, repairing ${segment.control.repairing}, hydrating ${segment.control.hydrating}: ${segment.describeState()})`);
        }
        let lastOfGroup = 0n;
        for (const [lsn, record] of this.reference.records) if (lsn <= vdl && Math.floor(record.pageId / PAGES_PER_GROUP) === group && lsn > lastOfGroup) lastOfGroup = lsn;
        if (segment.scl < lastOfGroup) throw new InvariantViolation(1, `liveness: ${segment.id} SCL ${segment.scl} below its PG's last record ${lastOfGroup}`);
        for (let page = group * PAGES_PER_GROUP; page < (group + 1) * PAGES_PER_GROUP; page++) {
          const materialized = segment.materialize(pageId(page), vdl);
          if (!materialized.ok) continue;
          if (!sameBytes(materialized.page, this.reference.page(pageId(page), vdl))) {
            throw new InvariantViolation(4, `${segment.id} page ${page} at VDL ${vdl} differs from the reference after healing`);
          }
        }
      }
    }
    for (const commit of this.ackedCommits) {
      if (commit > vdl) throw new InvariantViolation(1, `acknowledged commit ${commit} is above the final VDL ${vdl}`);
      if (!this.reference.records.has(commit)) throw new InvariantViolation(1, `acknowledged commit ${commit} is not in the lineage`);
    }
  }
}

function shuffle<T>(items: readonly T[], random: Random): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = random.integer(index + 1);
    [copy[index], copy[other]] = [copy[other]!, copy[index]!];
  }
  return copy;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

function lsnMaxOf(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}


export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
