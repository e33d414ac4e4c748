// The writer's database: tables and indexes as MVCC B+trees on the volume, a catalog
// stored in such tables, transactions with three isolation levels, row locks, savepoints
// and sequences. One Database per writer process; sessions each run one Transaction at a time.
//
// Invariants (with mvcc.ts, locks.ts, ssi.ts, xact-status.ts):
//  T1. Every running transaction that wrote a version of a row holds that row's exclusive
//      lock until its commit is durable (or it aborted), so at most one running
//      transaction writes a row, and the row's newest live version is the only one a
//      writer may replace (first updater wins).
//  T2. A commit is acknowledged only once its commit record is durable (VDL >= commit LSN);
//      every snapshot is a VDL, so a snapshot sees exactly the commits at or below it (invariant 5).
//  T3. Under REPEATABLE READ and SERIALIZABLE, writing a row whose newest version is not the
//      one the snapshot sees fails with 40001; under READ COMMITTED the write goes to the
//      newest version, which the caller re-checks (as PostgreSQL's EvalPlanQual).
//  T4. DDL is transactional: catalog rows are MVCC rows; a table created by an aborted
//      transaction is invisible, and a dropped one stays visible to older snapshots.

import { assert, pageId, type Lsn, type PageId } from '../common/index.js';
import type { BufferCache } from './buffer-cache.js';
import { BTree, formatVolume, readMetaSlot, writeMetaSlot } from './btree.js';
import { decodeKey, decodeRow, encodeKey, encodeRow, keyPartsLength, prefixEnd, type Value } from './codec.js';
import { EngineError, SqlState } from './errors.js';
import { LockManager, type LockMode, type LockOwner } from './locks.js';
import { MiniTransaction } from './mini-transaction.js';
import { indexEntry, isVisible, isVisibleIfKnown, parseVersion, versionFromCell, VERSION_SUFFIX_BYTES, sameBytes, visibility, rowVersions, versionKey, versionValue, xmaxPatch, type VersionRef, type Viewer } from './mvcc.js';
import { SsiTracker, type SerialTxn } from './ssi.js';
import { BOOTSTRAP_XID, XactStatus, type Xid } from './xact-status.js';

export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

export interface ColumnDef {
  name: string;
  /** The SQL type name as declared (the front end interprets it). */
  type: string;
  notNull: boolean;
  /** The default expression's SQL text, if any. */
  default: string | null;
}

export interface IndexDef {
  id: number;
  name: string;
  columns: number[];
  unique: boolean;
  primary: boolean;
  root: PageId;
}

export interface TableDef {
  id: number;
  schema: string;
  name: string;
  columns: ColumnDef[];
  /** Column positions of the primary key; undefined: rows are keyed by a hidden row id. */
  primaryKey: number[] | undefined;
  /** The primary key's index entry (name, for messages) when there is one. */
  indexes: IndexDef[];
  /** CHECK constraints, as SQL expression text for the front end to enforce. */
  checks: Array<{ name: string; expression: string }>;
  root: PageId;
}

export interface Row {
  /** The row's identity in its table (encoded primary key or hidden row id). */
  key: Uint8Array;
  values: Value[];
}

export interface DatabaseOptions {
  deadlockTimeoutMs?: number;
  /** A reader's database: read-only transactions, no cached catalog (DDL arrives as redo). */
  reader?: boolean;
}

// Meta page slots (xact-status.ts uses 0 and 1).
const META_CATALOG_ROOT = 2; // first of CATALOG_TABLES.length slots
const META_SEQUENCE_ROOT = 10;
const SEQUENCE_OID = 0; // the sequence that hands out object ids
const FIRST_USER_OID = 16384;
const SEQUENCE_CACHE = 32;

const hex = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');

/** Row keys (hex) per table id, or 'all' for a whole table: where vacuum should look (V4). */
export type RowHints = Map<number, Set<string> | 'all'>;

/** Row keys remembered per table before a full pass of the table is due instead. */
const ROW_HINTS_MAX = 100_000;

/** Adds row keys (or the whole table) to hints, switching a table to 'all' past the bound. */
export function addRowHints(hints: RowHints, tableId: number, rowKeys: string | Iterable<string> | 'all'): void {
  const known = hints.get(tableId);
  if (known === 'all') return;
  if (rowKeys === 'all') return void hints.set(tableId, 'all');
  const keys = known ?? new Set<string>();
  for (const key of typeof rowKeys === 'string' ? [rowKeys] : rowKeys) {
    if (keys.size >= ROW_HINTS_MAX) return void hints.set(tableId, 'all');
    keys.add(key);
  }
  hints.set(tableId, keys);
}

// ---------------------------------------------------------------- the catalog's own tables

interface CatalogSpec {
  id: number;
  name: string;
  columns: Array<[string, string]>;
  primaryKey: number[];
}

const CATALOG_TABLES: CatalogSpec[] = [
  { id: 1, name: 'boreal_namespace', columns: [['oid', 'int8'], ['name', 'text']], primaryKey: [0] },
  { id: 2, name: 'boreal_class', columns: [['oid', 'int8'], ['namespace', 'int8'], ['name', 'text'], ['kind', 'text'], ['root', 'int8']], primaryKey: [0] },
  { id: 3, name: 'boreal_attribute', columns: [['rel', 'int8'], ['num', 'int4'], ['name', 'text'], ['type', 'text'], ['notnull', 'bool'], ['default', 'text']], primaryKey: [0, 1] },
  { id: 4, name: 'boreal_index', columns: [['oid', 'int8'], ['rel', 'int8'], ['columns', 'text'], ['unique', 'bool'], ['primary', 'bool']], primaryKey: [0] },
  { id: 5, name: 'boreal_sequence', columns: [['oid', 'int8'], ['start', 'int8'], ['increment', 'int8'], ['min', 'int8'], ['max', 'int8'], ['cycle', 'bool']], primaryKey: [0] },
  { id: 6, name: 'boreal_constraint', columns: [['oid', 'int8'], ['rel', 'int8'], ['name', 'text'], ['kind', 'text'], ['definition', 'text']], primaryKey: [0] },
];
const [NAMESPACES, CLASSES, ATTRIBUTES, INDEXES, SEQUENCES, CONSTRAINTS] = CATALOG_TABLES.map((spec) => spec.id) as [number, number, number, number, number, number];

export interface SequenceDef {
  id: number;
  start: bigint;
  increment: bigint;
  min: bigint;
  max: bigint;
  cycle: boolean;
}

export class Database {
  readonly locks: LockManager;
  readonly ssi = new SsiTracker();
  /**
   * The highest CPL of a commit whose row locks were released before it was durable (early
   * lock release, see Transaction.commit). A transaction that locks a row afterwards may
   * build on that commit, so its later snapshots must include it (its floor).
   */
  earlyReleaseCpl: Lsn = 0n;
  private readonly trees = new Map<PageId, BTree>();
  private readonly catalogDefs = new Map<number, TableDef>();
  private tableCache = new Map<string, TableDef>();
  private nextSerial = 1;
  private readonly running = new Set<Transaction>();
  /** Sequence values handed out from memory, up to a limit already on the volume. */
  private readonly sequenceCache = new Map<number, { next: bigint; limit: bigint }>();
  private readonly sequenceLocks = new Map<number, Promise<void>>();

  readonly reader: boolean;
  /** Snapshots that readers hold, as they last reported them (for reclaiming versions). */
  readonly readerSnapshots = new Map<string, Lsn>();

  private constructor(
    readonly cache: BufferCache,
    readonly status: XactStatus,
    private readonly sequenceTree: BTree,
    catalogRoots: PageId[],
    options: DatabaseOptions,
  ) {
    this.reader = options.reader ?? false;
    this.locks = new LockManager({ deadlockTimeoutMs: options.deadlockTimeoutMs ?? 1000 });
    for (const [index, spec] of CATALOG_TABLES.entries()) {
      const root = catalogRoots[index]!;
      this.catalogDefs.set(spec.id, {
        id: spec.id,
        schema: 'pg_catalog',
        name: spec.name,
        columns: spec.columns.map(([name, type], index) => ({ name, type, notNull: spec.primaryKey.includes(index), default: null })),
        primaryKey: spec.primaryKey,
        indexes: [{ id: spec.id, name: `${spec.name}_pkey`, columns: spec.primaryKey, unique: true, primary: true, root }],
        checks: [],
        root,
      });
    }
  }

  /** Formats a fresh volume (page 0 not yet a meta page) and writes the bootstrap catalog. */
  static async create(cache: BufferCache, options: DatabaseOptions = {}): Promise<Database> {
    await formatVolume(cache);
    await XactStatus.format(cache);
    const mtr = new MiniTransaction(cache);
    const roots: PageId[] = [];
    for (let index = 0; index < CATALOG_TABLES.length; index++) roots.push((await BTree.create(cache)).root);
    const sequences = await BTree.create(cache);
    for (const [index, root] of roots.entries()) await writeMetaSlot(mtr, META_CATALOG_ROOT + index, root);
    await writeMetaSlot(mtr, META_SEQUENCE_ROOT, sequences.root);
    await mtr.commit();
    await sequences.put(sequenceKey(SEQUENCE_OID), int64Bytes(BigInt(FIRST_USER_OID)));
    const database = await Database.open(cache, options);
    // Bootstrap rows are made by BOOTSTRAP_XID, committed at LSN 0: visible to every snapshot.
    const namespaces = database.catalogDefs.get(NAMESPACES)!;
    for (const [oid, name] of [[11, 'pg_catalog'], [2200, 'public']] as const) {
      await database.tree(namespaces.root).put(versionKey(encodeKey([oid]), BOOTSTRAP_XID, 0), versionValue(encodeRow([oid, name])));
    }
    await cache.store.waitDurable(cache.lastLsn);
    return database;
  }

  /** Opens a formatted volume after volume recovery: nothing more to do (in-flight transactions are aborted by X2). */
  static async open(cache: BufferCache, options: DatabaseOptions = {}): Promise<Database> {
    const status = await XactStatus.open(cache, { reader: options.reader ?? false });
    const mtr = new MiniTransaction(cache);
    try {
      const roots: PageId[] = [];
      for (let index = 0; index < CATALOG_TABLES.length; index++) roots.push(pageId(await readMetaSlot(mtr, META_CATALOG_ROOT + index)));
      const sequenceRoot = pageId(await readMetaSlot(mtr, META_SEQUENCE_ROOT));
      return new Database(cache, status, BTree.open(cache, sequenceRoot), roots, options);
    } finally {
      await mtr.commit();
    }
  }

  tree(root: PageId): BTree {
    let tree = this.trees.get(root);
    if (tree === undefined) {
      tree = BTree.open(this.cache, root);
      this.trees.set(root, tree);
    }
    return tree;
  }

  begin(options: { isolation?: IsolationLevel; readOnly?: boolean } = {}): Transaction {
    // As PostgreSQL on a hot standby: SSI needs the writer's view of every transaction.
    if (this.reader && options.isolation === 'serializable') {
      throw new EngineError(SqlState.featureNotSupported, 'cannot use serializable mode in a hot standby', 'You can use REPEATABLE READ instead.');
    }
    const tx = new Transaction(this, this.nextSerial++, options.isolation ?? 'read committed', this.reader || (options.readOnly ?? false));
    this.running.add(tx);
    return tx;
  }

  /**
   * Where vacuum should look (V4): per table id, the hex row keys that may hold dead
   * versions, or 'all' for a full pass. A fresh writer knows nothing of what came before
   * it, so it starts with a full pass over everything.
   */
  private vacuumHints: RowHints | 'all' = 'all';

  /** @internal A version of this row may become dead (it got a deleter, or its creator aborted). */
  noteVacuumCandidate(tableId: number, rowKeys: string | Iterable<string> | 'all'): void {
    if (this.vacuumHints !== 'all') addRowHints(this.vacuumHints, tableId, rowKeys);
  }

  /** @internal Gives hints back (a vacuum pass that failed, or could not use them yet). */
  restoreVacuumHints(hints: RowHints | 'all'): void {
    if (hints === 'all') {
      this.vacuumHints = 'all';
      return;
    }
    for (const [tableId, keys] of hints) this.noteVacuumCandidate(tableId, keys);
  }

  /** @internal Hands vacuum what it should look at and starts a new list. */
  takeVacuumHints(): RowHints | 'all' {
    const hints = this.vacuumHints;
    this.vacuumHints = new Map();
    return hints;
  }

  /** @internal */
  ended(tx: Transaction): void {
    this.running.delete(tx);
    this.ssi.prune(this.cache.store.durableLsn());
  }

  /** The oldest snapshot any running transaction here holds (readers report theirs to the writer). */
  oldestLocalSnapshot(): Lsn {
    let oldest = this.cache.store.durableLsn();
    for (const tx of this.running) if (tx.snapshotLsn !== undefined && tx.snapshotLsn < oldest) oldest = tx.snapshotLsn;
    return oldest;
  }

  /** The oldest snapshot in use anywhere in the cluster: here and on every attached reader. */
  oldestSnapshot(): Lsn {
    let oldest = this.oldestLocalSnapshot();
    for (const snapshot of this.readerSnapshots.values()) if (snapshot < oldest) oldest = snapshot;
    return oldest;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** @internal */
  catalogTable(id: number): TableDef {
    return this.catalogDefs.get(id)!;
  }

  /** @internal */
  /** Bumped whenever a DDL transaction ends: plans made before may be stale. */
  catalogGeneration = 0;

  cachedTable(key: string): TableDef | undefined {
    return this.tableCache.get(key);
  }

  /** @internal */
  rememberTable(key: string, def: TableDef): void {
    if (!this.reader) this.tableCache.set(key, def);
  }

  /** @internal a DDL committed: cached definitions may be stale. */
  catalogChanged(): void {
    this.tableCache = new Map();
    this.catalogGeneration++;
  }

  // ---------------------------------------------------------------- sequences (not transactional, as in PostgreSQL)

  /** The next value of a sequence: handed out from memory, with SEQUENCE_CACHE values reserved on the volume at a time. */
  async nextSequenceValue(id: number, step: { increment: bigint; min: bigint; max: bigint; cycle: boolean; start: bigint } = { increment: 1n, min: 1n, max: (1n << 63n) - 1n, cycle: false, start: 1n }): Promise<bigint> {
    for (;;) {
      const cached = this.sequenceCache.get(id);
      if (cached !== undefined && (step.increment > 0n ? cached.next <= cached.limit : cached.next >= cached.limit)) {
        const value = cached.next;
        cached.next += step.increment;
        return value;
      }
      const pending = this.sequenceLocks.get(id);
      if (pending !== undefined) {
        await pending;
        continue;
      }
      const refill = this.refillSequence(id, step).finally(() => this.sequenceLocks.delete(id));
      this.sequenceLocks.set(id, refill);
      await refill;
    }
  }

  private async refillSequence(id: number, step: { increment: bigint; min: bigint; max: bigint; cycle: boolean; start: bigint }): Promise<void> {
    const stored = await this.sequenceTree.get(sequenceKey(id));
    // Stored: the first value not yet handed out by any writer (values below it may have been, before a crash).
    let next = stored === undefined ? step.start : readInt64(stored);
    if (next > step.max || next < step.min) {
      if (!step.cycle) throw new EngineError(SqlState.sequenceLimit, `nextval: reached ${step.increment > 0n ? 'maximum' : 'minimum'} value of sequence (${step.increment > 0n ? step.max : step.min})`);
      next = step.increment > 0n ? step.min : step.max;
    }
    let limit = next + step.increment * BigInt(SEQUENCE_CACHE - 1);
    if (limit > step.max) limit = step.max;
    if (limit < step.min) limit = step.min;
    await this.sequenceTree.put(sequenceKey(id), int64Bytes(limit + step.increment));
    this.sequenceCache.set(id, { next, limit });
  }

  /** Sets a sequence so the next value is `value` (setval). */
  async resetSequence(id: number, value: bigint): Promise<void> {
    this.sequenceCache.delete(id);
    await this.sequenceTree.put(sequenceKey(id), int64Bytes(value));
  }

  async newOid(): Promise<number> {
    return Number(await this.nextSequenceValue(SEQUENCE_OID));
  }
}

function sequenceKey(id: number): Uint8Array {
  return encodeKey([id]);
}

const relationResources = new Map<number, string>();

/** A table's lock resource: one string per table id, not a new one per statement. */
function relationResource(table: TableDef): string {
  let resource = relationResources.get(table.id);
  if (resource === undefined) relationResources.set(table.id, (resource = `rel:${table.id}`));
  return resource;
}

function int64Bytes(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, value, true);
  return bytes;
}

function readInt64(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0, true);
}

interface Savepoint {
  name: string;
  xid: Xid | undefined;
  /** Locks held when the savepoint was taken: a rollback to it releases the others. */
  locksBefore: Set<string>;
  xids: Xid[];
}

export interface StatementOptions {
  signal?: AbortSignal | undefined;
  lockTimeoutMs?: number | undefined;
  deadlockTimeoutMs?: number | undefined;
}

export class Transaction implements LockOwner {
  /** Savepoint levels; level 0 is the transaction itself. */
  private readonly levels: Savepoint[] = [{ name: '', xid: undefined, locksBefore: new Set(), xids: [] }];
  private readonly own = new Set<Xid>();
  private snapshot: Lsn | undefined;
  /** Row keys this transaction wrote versions under, per table ('all' past the bound): dead if it aborts. */
  private written: RowHints = new Map();
  /** Snapshots never go below this: commits this transaction built on through a row lock (see Database.earlyReleaseCpl). */
  private floor: Lsn = 0n;
  private cid = 0;
  private state: 'active' | 'committed' | 'aborted' = 'active';
  private statement: StatementOptions = {};
  readonly serial: SerialTxn | undefined;
  private ddl = false;
  private readonly dropped: TableDef[] = [];

  constructor(
    readonly db: Database,
    readonly id: number,
    readonly isolation: IsolationLevel,
    readonly readOnly: boolean,
  ) {
    if (isolation === 'serializable') this.serial = db.ssi.begin(id);
  }

  get snapshotLsn(): Lsn | undefined {
    return this.snapshot;
  }

  get isActive(): boolean {
    return this.state === 'active';
  }

  /**
   * Starts a statement: a new command id, and under READ COMMITTED a new snapshot (the
   * current VDL); under the others the first statement's snapshot is kept.
   */
  beginStatement(options: StatementOptions = {}): void {
    this.assertActive();
    this.statement = options;
    this.cid++;
    if (this.isolation === 'read committed' || this.snapshot === undefined) {
      const vdl = this.db.cache.store.durableLsn();
      this.snapshot = this.floor > vdl ? this.floor : vdl;
      if (this.serial !== undefined) this.serial.snapshot ??= this.snapshot;
    }
  }

  private viewer(): Viewer {
    if (this.snapshot === undefined) this.beginStatement();
    return { snapshot: this.snapshot!, own: this.own, cid: this.cid };
  }

  private assertActive(): void {
    if (this.state !== 'active') throw new EngineError(SqlState.noActiveSqlTransaction, `transaction is ${this.state}`);
    if (this.serial?.doomed) throw serializationFailure('Reason code: Canceled on identification as a pivot, during write.');
  }

  private async xid(): Promise<Xid> {
    if (this.readOnly) throw new EngineError(SqlState.readOnlySqlTransaction, 'cannot execute a write in a read-only transaction');
    const level = this.levels[this.levels.length - 1]!;
    if (level.xid === undefined) {
      if (this.levels[0]!.xid === undefined && level !== this.levels[0]) {
        // A subtransaction's xid comes after its parent's, as in PostgreSQL.
        this.levels[0]!.xid = await this.db.status.allocate();
        this.own.add(this.levels[0]!.xid);
        this.levels[0]!.xids.push(this.levels[0]!.xid);
        if (this.serial !== undefined) this.db.ssi.registerXid(this.serial, this.levels[0]!.xid);
      }
      level.xid = await this.db.status.allocate();
      this.own.add(level.xid);
      level.xids.push(level.xid);
      if (this.serial !== undefined) this.db.ssi.registerXid(this.serial, level.xid);
    }
    return level.xid;
  }

  /** Takes a lock; returns a promise only when it has to wait (most locks are free: no microtask then). */
  private lock(resource: string, mode: LockMode): Promise<void> | undefined {
    if (this.db.locks.tryAcquire(this, resource, mode)) {
      this.raiseFloor();
      return undefined;
    }
    return this.db.locks.acquire(this, resource, mode, this.statement).then(() => this.raiseFloor());
  }

  private raiseFloor(): void {
    // Whatever a lock guards may come from a commit whose locks were released before it
    // was durable (early lock release): from now on this transaction sees that commit whole,
    // as it would once it is durable (its floor).
    if (this.db.earlyReleaseCpl > this.floor) this.floor = this.db.earlyReleaseCpl;
  }

  /** Whether this transaction has changed the catalog (its plans may be stale before it ends). */
  get changedCatalog(): boolean {
    return this.ddl;
  }

  // ---------------------------------------------------------------- reading

  /** Every version of a row, in key order. */
  private async versions(table: TableDef, rowKey: Uint8Array): Promise<VersionRef[]> {
    return this.versionsIfCached(table, rowKey) ?? this.scanVersions(table, rowKey);
  }

  /** Every version of a row, read through the tree's scan (pages loaded as needed). */
  private async scanVersions(table: TableDef, rowKey: Uint8Array): Promise<VersionRef[]> {
    const out: VersionRef[] = [];
    // A longer row key with this one as prefix cannot happen (K2), but be strict.
    for await (const [key, value] of this.db.tree(table.root).scan(rowKey, prefixEnd(rowKey))) if (key.length === rowKey.length + VERSION_SUFFIX_BYTES) out.push(parseVersion(key, value));
    return out;
  }

  /** A row's versions in one synchronous step when its pages are cached (BTree.visitIfCached); else undefined. */
  private versionsIfCached(table: TableDef, rowKey: Uint8Array): VersionRef[] | undefined {
    const end = prefixEnd(rowKey);
    if (end === undefined) return undefined;
    return this.db.tree(table.root).visitIfCached(rowKey, end, (page, keyAt, keyBytes, valueAt, valueBytes) => versionFromCell(rowKey, page, keyAt, keyBytes, valueAt, valueBytes));
  }

  /** visibleOf in one synchronous step when every state it needs is in memory and no SSI bookkeeping is due; else undefined. */
  private visibleIfKnown(versions: VersionRef[], viewer: Viewer): VersionRef | null | undefined {
    if (this.serial !== undefined) return undefined;
    for (let index = versions.length - 1; index >= 0; index--) {
      const seen = isVisibleIfKnown(this.db.status, viewer, versions[index]!);
      if (seen === undefined) return undefined;
      if (seen.visible) return versions[index]!;
    }
    return null;
  }

  /** The version of a row this transaction's snapshot sees, noting SSI read-over edges. */
  private async visibleOf(versions: VersionRef[], viewer: Viewer): Promise<VersionRef | undefined> {
    if (this.serial === undefined) {
      // The answer is the last visible version in key order: look from the newest back, and
      // stop there (only SSI needs to look at every version, for its read-over edges).
      for (let index = versions.length - 1; index >= 0; index--) {
        const version = versions[index]!;
        if ((await visibility(this.db.status, viewer, version)).visible) return version;
      }
      return undefined;
    }
    let found: VersionRef | undefined;
    for (const version of versions) {
      const seen = await visibility(this.db.status, viewer, version);
      // Did not see a concurrent writer's version, or saw one a concurrent writer deleted: rw edge.
      if (seen.created === 'committed-later' || seen.created === 'running') this.readOver(version.xmin);
      if (seen.visible && (seen.deleted === 'committed-later' || seen.deleted === 'running')) this.readOver(version.xmax);
      if (seen.visible) found = version;
    }
    return found;
  }

  private readOver(xid: Xid): void {
    const writer = this.db.ssi.byXid(xid);
    if (writer !== undefined && this.serial !== undefined && writer !== this.serial) this.db.ssi.readOver(this.serial, writer);
  }

  /** A row by its primary key values (or a Row key), as this transaction sees it. */
  async get(table: TableDef, key: Value[] | Uint8Array): Promise<Row | undefined> {
    this.assertActive();
    const viewer = this.viewer();
    const rowKey = key instanceof Uint8Array ? key : encodeKey(key);
    // Promises only where something has to wait: a point read of cached pages stays one step.
    const locking = this.lock(relationResource(table), 'share');
    if (locking !== undefined) await locking;
    if (this.serial !== undefined) this.db.ssi.readPoint(this.serial, table.id, rowKey);
    const versions = this.versionsIfCached(table, rowKey) ?? (await this.scanVersions(table, rowKey));
    const known = this.visibleIfKnown(versions, viewer);
    const version = known === undefined ? await this.visibleOf(versions, viewer) : (known ?? undefined);
    return version === undefined ? undefined : { key: rowKey, values: decodeRow(version.row) };
  }

  /** Rows with from <= row key < to (encoded keys; either bound optional), in key order. */
  async *scan(table: TableDef, from?: Uint8Array, to?: Uint8Array): AsyncGenerator<Row> {
    this.assertActive();
    const viewer = this.viewer();
    await this.lock(relationResource(table), 'share');
    if (this.serial !== undefined) this.db.ssi.readRange(this.serial, table.id, from, to);
    let rows = 0;
    for await (const versions of rowVersions(this.db.tree(table.root), from, to)) {
      const version = await this.visibleOf(versions, viewer);
      if (version !== undefined) yield { key: version.rowKey, values: decodeRow(version.row) };
      rows += versions.length;
      if (rows >= 256) {
        rows = 0;
        this.statement.signal?.throwIfAborted();
      }
    }
  }

  /** Rows through a secondary index, for index keys in [from, to) (encoded index-column keys). */
  async *scanIndex(table: TableDef, index: IndexDef, from?: Uint8Array, to?: Uint8Array): AsyncGenerator<Row> {
    this.assertActive();
    const viewer = this.viewer();
    await this.lock(relationResource(table), 'share');
    if (this.serial !== undefined) this.db.ssi.readRange(this.serial, index.id, from, to);
    const tree = this.db.tree(table.root);
    for await (const [key] of this.db.tree(index.root).scan(from, to)) {
      const split = keyPartsLength(key, index.columns.length);
      const version = key.subarray(split);
      const value = await tree.get(version);
      if (value === undefined) continue; // reclaimed since
      const ref = parseVersion(version, value);
      const seen = await visibility(this.db.status, viewer, ref);
      if (this.serial !== undefined) {
        if (seen.created === 'committed-later' || seen.created === 'running') this.readOver(ref.xmin);
        if (seen.visible && (seen.deleted === 'committed-later' || seen.deleted === 'running')) this.readOver(ref.xmax);
      }
      if (seen.visible) yield { key: ref.rowKey, values: decodeRow(ref.row) };
      this.statement.signal?.throwIfAborted();
    }
  }

  // ---------------------------------------------------------------- writing

  /** The newest live version of a row (T1: only call while holding its exclusive lock, or accept a moving answer). */
  private async newest(versions: VersionRef[]): Promise<VersionRef | undefined> {
    for (const version of versions) {
      const created = await this.liveState(version.xmin);
      if (created === 'aborted') continue;
      if (version.xmax !== 0 && (await this.liveState(version.xmax)) !== 'aborted') continue;
      return version;
    }
    return undefined;
  }

  /** Whether an xid's writes stand (own live, committed, or running) or are void. */
  private async liveState(xid: Xid): Promise<'live' | 'aborted'> {
    if (this.own.has(xid)) return 'live';
    const state = await this.db.status.state(xid);
    return state.state === 'aborted' ? 'aborted' : 'live';
  }

  private rowKeyOf(table: TableDef, values: Value[]): Uint8Array | undefined {
    return table.primaryKey === undefined ? undefined : encodeKey(table.primaryKey.map((column) => values[column]!));
  }

  private checkRow(table: TableDef, values: Value[]): void {
    if (values.length !== table.columns.length) throw new EngineError(SqlState.invalidParameterValue, `table "${table.name}" has ${table.columns.length} columns, got ${values.length} values`);
    for (const [index, column] of table.columns.entries()) {
      if (values[index] === null && (column.notNull || table.primaryKey?.includes(index))) {
        throw new EngineError(SqlState.notNullViolation, `null value in column "${column.name}" of relation "${table.name}" violates not-null constraint`);
      }
    }
  }

  private uniqueViolation(table: TableDef, index: IndexDef, key: Uint8Array, invisible: boolean): EngineError {
    if (invisible && this.isolation === 'serializable') return serializationFailure('The conflicting row was inserted by a concurrent transaction.');
    const names = index.columns.map((column) => table.columns[column]!.name).join(', ');
    const values = decodeKey(key, index.columns.length).map(formatValue).join(', ');
    return new EngineError(SqlState.uniqueViolation, `duplicate key value violates unique constraint "${index.name}"`, `Key (${names})=(${values}) already exists.`);
  }

  private primaryIndex(table: TableDef): IndexDef {
    return table.indexes.find((index) => index.primary) ?? { id: table.id, name: `${table.name}_pkey`, columns: table.primaryKey ?? [], unique: true, primary: true, root: table.root };
  }

  /** Locks a row key and checks that no live version of it exists (primary key uniqueness). */
  private async claimRowKey(table: TableDef, rowKey: Uint8Array, viewer: Viewer): Promise<void> {
    await this.lock(`row:${table.id}:${hex(rowKey)}`, 'exclusive');
    const existing = await this.newest(await this.versions(table, rowKey));
    if (existing !== undefined) {
      const seen = await isVisible(this.db.status, viewer, existing);
      throw this.uniqueViolation(table, this.primaryIndex(table), rowKey, !seen.visible);
    }
  }

  /** Locks a unique index key and checks no other live row holds it. NULLs never conflict. */
  private async claimIndexKey(table: TableDef, index: IndexDef, values: Value[], exceptRow: Uint8Array | undefined, viewer: Viewer): Promise<void> {
    if (index.columns.some((column) => values[column] === null)) return;
    const indexKey = encodeKey(index.columns.map((column) => values[column]!));
    await this.lock(`key:${index.id}:${hex(indexKey)}`, 'exclusive');
    const tree = this.db.tree(table.root);
    for await (const [key] of this.db.tree(index.root).scan(indexKey, prefixEnd(indexKey))) {
      const version = key.subarray(indexKey.length);
      const rowKey = version.subarray(0, version.length - 8);
      if (exceptRow !== undefined && sameBytes(rowKey, exceptRow)) continue;
      const value = await tree.get(version);
      if (value === undefined) continue;
      const ref = parseVersion(version, value);
      if ((await this.newest([ref])) === undefined) continue;
      // Live, but is it still this key's holder (a later version may have changed the key)? Only the row's newest version counts.
      const newest = await this.newest(await this.versions(table, rowKey));
      if (newest === undefined || !sameBytes(newest.key, ref.key)) continue;
      throw this.uniqueViolation(table, index, indexKey, !(await isVisible(this.db.status, viewer, ref)).visible);
    }
  }

  /** Marks a version deleted by this transaction; vacuum will look at the row (V4). */
  private async writeXmax(table: TableDef, version: VersionRef, rowKey: Uint8Array, xid: Xid): Promise<void> {
    await this.db.tree(table.root).patchValue(version.key, 0, xmaxPatch(xid, this.cid));
    this.db.noteVacuumCandidate(table.id, hex(rowKey));
  }

  private noteWritten(table: TableDef, rowKey: Uint8Array): void {
    addRowHints(this.written, table.id, hex(rowKey));
  }

  /** What this transaction wrote may now be dead: vacuum looks at it (V4). */
  private handWrittenToVacuum(): void {
    for (const [tableId, keys] of this.written) this.db.noteVacuumCandidate(tableId, keys);
    this.written = new Map();
  }

  /** Writes a new version of a row (after giving `replaces`, its old version, this transaction as deleter, in the same mini-transaction). */
  private async writeVersion(table: TableDef, rowKey: Uint8Array, values: Value[], xid: Xid, replaces?: { version: VersionRef; rowKey: Uint8Array }): Promise<void> {
    this.noteWritten(table, rowKey);
    const key = versionKey(rowKey, xid, this.cid);
    if (replaces === undefined) await this.db.tree(table.root).put(key, versionValue(encodeRow(values)));
    else {
      const patched = await this.db.tree(table.root).patchThenPut(replaces.version.key, 0, xmaxPatch(xid, this.cid), key, versionValue(encodeRow(values)));
      assert(patched, 'the version being replaced is in the tree');
      this.db.noteVacuumCandidate(table.id, hex(replaces.rowKey));
    }
    for (const index of table.indexes) {
      if (index.primary) continue;
      const { indexKey, entry } = indexEntry(index.columns, values, key);
      await this.db.tree(index.root).put(entry, new Uint8Array(0));
      if (this.serial !== undefined) this.db.ssi.wrote(this.serial, index.id, indexKey);
    }
    if (this.serial !== undefined) this.db.ssi.wrote(this.serial, table.id, rowKey);
  }

  /** Inserts a row; 23505 if its key (or a unique index key) is taken, 23502 for a NULL in a NOT NULL column. */
  async insert(table: TableDef, values: Value[], rowId?: () => Promise<bigint>): Promise<Row> {
    this.assertActive();
    const viewer = this.viewer();
    this.checkRow(table, values);
    await this.lock(relationResource(table), 'share');
    let rowKey = this.rowKeyOf(table, values);
    if (rowKey === undefined) {
      const id = rowId !== undefined ? await rowId() : await this.db.nextSequenceValue(-table.id);
      rowKey = encodeKey([id]);
    }
    await this.claimRowKey(table, rowKey, viewer);
    for (const index of table.indexes) if (index.unique && !index.primary) await this.claimIndexKey(table, index, values, undefined, viewer);
    const xid = await this.xid();
    await this.writeVersion(table, rowKey, values, xid);
    return { key: rowKey, values };
  }

  /**
   * Inserts rows as insert() does, one by one for the checks and key claims, but writes
   * them to the table and its indexes in batches (COPY). A key repeated within the batch is
   * written first, so the claim of its second copy finds it and fails as insert() would.
   */
  async insertMany(table: TableDef, rows: Value[][]): Promise<void> {
    this.assertActive();
    if (rows.length === 0) return;
    const viewer = this.viewer();
    await this.lock(relationResource(table), 'share');
    const xid = await this.xid();
    const versions: Array<[Uint8Array, Uint8Array]> = [];
    const entries: Array<Array<[Uint8Array, Uint8Array]>> = table.indexes.map(() => []);
    const claimed = new Set<string>();
    const write = async (): Promise<void> => {
      await this.db.tree(table.root).putMany(versions.splice(0));
      for (const [position, index] of table.indexes.entries()) if (!index.primary) await this.db.tree(index.root).putMany(entries[position]!.splice(0));
      claimed.clear();
    };
    const empty = new Uint8Array(0);
    for (const values of rows) {
      this.checkRow(table, values);
      let rowKey = this.rowKeyOf(table, values);
      if (rowKey === undefined) rowKey = encodeKey([await this.db.nextSequenceValue(-table.id)]);
      else {
        if (claimed.has(`r${hex(rowKey)}`)) await write();
        claimed.add(`r${hex(rowKey)}`);
        await this.claimRowKey(table, rowKey, viewer);
      }
      for (const [position, index] of table.indexes.entries()) {
        if (!index.unique || index.primary || index.columns.some((column) => values[column] === null)) continue;
        const key = `${position}:${hex(encodeKey(index.columns.map((column) => values[column]!)))}`;
        if (claimed.has(key)) await write();
        claimed.add(key);
        await this.claimIndexKey(table, index, values, undefined, viewer);
      }
      this.noteWritten(table, rowKey);
      const key = versionKey(rowKey, xid, this.cid);
      versions.push([key, versionValue(encodeRow(values))]);
      for (const [position, index] of table.indexes.entries()) {
        if (index.primary) continue;
        const { indexKey, entry } = indexEntry(index.columns, values, key);
        entries[position]!.push([entry, empty]);
        if (this.serial !== undefined) this.db.ssi.wrote(this.serial, index.id, indexKey);
      }
      if (this.serial !== undefined) this.db.ssi.wrote(this.serial, table.id, rowKey);
    }
    await write();
  }

  /**
   * Locks a row and returns its newest version for a write (T1, T3), or undefined when
   * the row is gone (or was already changed by this same command).
   */
  private async lockNewest(table: TableDef, rowKey: Uint8Array, mode: LockMode, action: 'update' | 'delete' | 'lock'): Promise<VersionRef | undefined> {
    const viewer = this.viewer();
    await this.lock(relationResource(table), 'share');
    const resource = `row:${table.id}:${hex(rowKey)}`;
    const heldBefore = this.db.locks.holding(this, resource) !== undefined;
    await this.lock(resource, mode);
    const versions = await this.versions(table, rowKey);
    const newest = await this.newest(versions);
    const visible = await this.visibleOf(versions, viewer);
    if (this.serial !== undefined) this.db.ssi.readPoint(this.serial, table.id, rowKey);
    if (newest === undefined) {
      if (visible !== undefined && this.isolation !== 'read committed') throw serializationFailure(undefined, 'delete');
      // No row, nothing to hold: as PostgreSQL, which locks only rows it finds.
      if (!heldBefore) this.db.locks.release(this, resource);
      return undefined;
    }
    if (visible === undefined || !sameBytes(visible.key, newest.key)) {
      if (this.own.has(newest.xmin) && newest.cmin === this.cid) return undefined; // already changed by this command
      if (this.isolation !== 'read committed') throw serializationFailure(undefined, 'update');
    }
    void action;
    return newest;
  }

  /**
   * Updates a row: `change` gets the newest version's values (which under READ COMMITTED may
   * be newer than what the statement's snapshot saw; re-check the statement's condition in
   * it) and returns the new values, or undefined to leave the row. Returns the new row.
   */
  async update(table: TableDef, rowKey: Uint8Array, change: (current: Value[]) => Value[] | undefined): Promise<Row | undefined> {
    this.assertActive();
    const viewer = this.viewer();
    const current = await this.lockNewest(table, rowKey, 'exclusive', 'update');
    if (current === undefined) return undefined;
    const before = decodeRow(current.row);
    const values = change(before);
    if (values === undefined) return undefined;
    this.checkRow(table, values);
    const newKey = this.rowKeyOf(table, values) ?? rowKey;
    const moved = !sameBytes(newKey, rowKey);
    if (moved) await this.claimRowKey(table, newKey, viewer);
    for (const index of table.indexes) {
      if (!index.unique || index.primary) continue;
      const changed = index.columns.some((column) => !sameValue(before[column]!, values[column]!));
      if (changed || moved) await this.claimIndexKey(table, index, values, rowKey, viewer);
    }
    const xid = await this.xid();
    await this.writeVersion(table, newKey, values, xid, { version: current, rowKey });
    if (moved && this.serial !== undefined) this.db.ssi.wrote(this.serial, table.id, rowKey);
    return { key: newKey, values };
  }

  /** Deletes a row; returns whether there was one to delete. */
  async delete(table: TableDef, rowKey: Uint8Array): Promise<boolean> {
    this.assertActive();
    const current = await this.lockNewest(table, rowKey, 'exclusive', 'delete');
    if (current === undefined) return false;
    const xid = await this.xid();
    await this.writeXmax(table, current, rowKey, xid);
    if (this.serial !== undefined) {
      this.db.ssi.wrote(this.serial, table.id, rowKey);
      const values = decodeRow(current.row);
      for (const index of table.indexes) if (!index.primary) this.db.ssi.wrote(this.serial, index.id, encodeKey(index.columns.map((column) => values[column]!)));
    }
    return true;
  }

  /** SELECT … FOR UPDATE / FOR SHARE of one row: locks it and returns its newest version (or undefined if gone). */
  async lockRow(table: TableDef, rowKey: Uint8Array, mode: 'update' | 'share'): Promise<Row | undefined> {
    this.assertActive();
    const current = await this.lockNewest(table, rowKey, mode === 'update' ? 'exclusive' : 'share', 'lock');
    return current === undefined ? undefined : { key: rowKey, values: decodeRow(current.row) };
  }

  // ---------------------------------------------------------------- savepoints

  savepoint(name: string): void {
    this.assertActive();
    this.levels.push({ name, xid: undefined, locksBefore: new Set(this.db.locks.heldBy(this)), xids: [] });
  }

  private findLevel(name: string): number {
    for (let index = this.levels.length - 1; index >= 1; index--) if (this.levels[index]!.name === name) return index;
    throw new EngineError(SqlState.invalidSavepoint, `savepoint "${name}" does not exist`);
  }

  /** ROLLBACK TO SAVEPOINT: undoes what followed it (its subtransactions abort) and keeps it. */
  rollbackTo(name: string): void {
    if (this.state !== 'active') throw new EngineError(SqlState.noActiveSqlTransaction, `transaction is ${this.state}`);
    const at = this.findLevel(name);
    const undone: Xid[] = [];
    for (let index = at; index < this.levels.length; index++) undone.push(...this.levels[index]!.xids);
    for (const xid of undone) this.own.delete(xid);
    this.db.status.abort(undone);
    if (undone.length > 0) this.handWrittenToVacuum();
    const keep = this.levels[at]!.locksBefore;
    for (const resource of [...this.db.locks.heldBy(this)]) if (!keep.has(resource)) this.db.locks.release(this, resource);
    this.levels.length = at + 1;
    const level = this.levels[at]!;
    level.xid = undefined;
    level.xids = [];
    this.cid++;
  }

  /** RELEASE SAVEPOINT: its work joins the enclosing level. */
  release(name: string): void {
    this.assertActive();
    const at = this.findLevel(name);
    const parent = this.levels[at - 1]!;
    for (let index = at; index < this.levels.length; index++) parent.xids.push(...this.levels[index]!.xids);
    this.levels.length = at;
  }

  // ---------------------------------------------------------------- ending

  /** Commits: resolves once the commit record is durable (T2). 40001 if SSI finds a dangerous structure. */
  async commit(): Promise<Lsn | undefined> {
    if (this.state !== 'active') throw new EngineError(SqlState.noActiveSqlTransaction, `transaction is ${this.state}`);
    const xids = [...this.own];
    if (this.serial !== undefined && this.db.ssi.preCommit(this.serial)) {
      this.rollback();
      throw serializationFailure('Reason code: Canceled on identification as a pivot, during commit attempt.');
    }
    if (xids.length === 0) {
      // Nothing written, but what it read through row locks may not be durable yet.
      if (this.floor > this.db.cache.store.durableLsn()) {
        try {
          await this.db.cache.store.waitDurable(this.floor);
        } catch (error) {
          this.rollback();
          throw error;
        }
      }
      this.finish('committed');
      return undefined;
    }
    let lsn: Lsn;
    let cpl: Lsn;
    try {
      ({ lsn, cpl } = await this.db.status.commit(xids));
    } catch (error) {
      this.rollback();
      throw error;
    }
    if (this.serial !== undefined) this.db.ssi.committed(this.serial, lsn);
    this.state = 'committed';
    if (!this.ddl) {
      // Early lock release: the commit record is written, so whoever waits for these rows may
      // go on now (their own commits come later in the log and cannot be durable before this
      // one); new snapshots still see this commit only once it is durable. The client hears
      // of the commit only then. DDL keeps its locks: catalog reads go by the VDL.
      if (cpl > this.db.earlyReleaseCpl) this.db.earlyReleaseCpl = cpl;
      this.db.locks.releaseAll(this);
    }
    try {
      await this.db.cache.store.waitDurable(cpl);
    } finally {
      if (this.ddl) this.db.catalogChanged();
      this.finish('committed');
    }
    return lsn;
  }

  /** Aborts: the versions it wrote become invisible at once (their creator is aborted). */
  rollback(): void {
    if (this.state === 'committed') return;
    const wasActive = this.state === 'active';
    this.state = 'aborted';
    this.db.status.abort(this.own);
    this.handWrittenToVacuum();
    if (this.serial !== undefined && wasActive) this.db.ssi.aborted(this.serial);
    if (this.ddl) this.db.catalogChanged();
    this.finish('aborted');
  }

  private finish(state: 'committed' | 'aborted'): void {
    this.state = state;
    this.db.locks.releaseAll(this);
    if (this.serial !== undefined && state === 'committed' && this.own.size === 0) this.db.ssi.committed(this.serial, this.snapshot ?? 0n);
    this.db.ended(this);
  }

  // ---------------------------------------------------------------- catalog and DDL

  private catalogViewer(): Viewer {
    // Catalog reads see the newest committed state plus this transaction's own changes.
    return { snapshot: this.db.cache.store.durableLsn(), own: this.own, cid: Number.MAX_SAFE_INTEGER };
  }

  private async *catalogRows(id: number, from?: Uint8Array, to?: Uint8Array): AsyncGenerator<Row> {
    const table = this.db.catalogTable(id);
    const viewer = this.catalogViewer();
    for await (const versions of rowVersions(this.db.tree(table.root), from, to)) {
      let found: VersionRef | undefined;
      for (const version of versions) if ((await isVisible(this.db.status, viewer, version)).visible) found = version;
      if (found !== undefined) yield { key: found.rowKey, values: decodeRow(found.row) };
    }
  }

  /** Locks a relation name in a namespace (until this transaction ends) and returns the class row holding it, if any. */
  private async claimRelationName(namespace: number, name: string): Promise<Row | undefined> {
    await this.lock(`name:rel:${namespace}.${name}`, 'exclusive');
    for await (const row of this.catalogRows(CLASSES)) if (row.values[1] === namespace && row.values[2] === name) return row;
    return undefined;
  }

  async schemaOid(name: string): Promise<number | undefined> {
    for await (const row of this.catalogRows(NAMESPACES)) if (row.values[1] === name) return row.values[0] as number;
    return undefined;
  }

  async createSchema(name: string, options: { ifNotExists?: boolean } = {}): Promise<void> {
    this.assertActive();
    await this.lock(`name:schema:${name}`, 'exclusive');
    if ((await this.schemaOid(name)) !== undefined) {
      if (options.ifNotExists) return;
      throw new EngineError(SqlState.duplicateSchema, `schema "${name}" already exists`);
    }
    await this.catalogInsert(NAMESPACES, [await this.db.newOid(), name]);
  }

  private async catalogInsert(id: number, values: Value[]): Promise<void> {
    this.ddl = true;
    await this.insert(this.db.catalogTable(id), values);
  }

  /** Deletes a catalog row's newest version (catalog rows are read at the newest state, not the snapshot). */
  private async catalogDelete(id: number, rowKey: Uint8Array): Promise<void> {
    const table = this.db.catalogTable(id);
    await this.lock(`row:${table.id}:${hex(rowKey)}`, 'exclusive');
    const newest = await this.newest(await this.versions(table, rowKey));
    if (newest === undefined) return;
    const xid = await this.xid();
    await this.writeXmax(table, newest, rowKey, xid);
  }

  /** Looks a table up by name (schema "public" unless given); undefined if there is none. */
  async findTable(name: string, schema = 'public'): Promise<TableDef | undefined> {
    this.assertActive();
    const cacheKey = `${schema}.${name}`;
    if (!this.ddl) {
      const cached = this.db.cachedTable(cacheKey);
      if (cached !== undefined) return cached;
    }
    const namespace = await this.schemaOid(schema);
    if (namespace === undefined) return undefined;
    let classRow: Value[] | undefined;
    for await (const row of this.catalogRows(CLASSES)) {
      if (row.values[1] === namespace && row.values[2] === name && row.values[3] === 'r') classRow = row.values;
    }
    if (classRow === undefined) return undefined;
    const oid = classRow[0] as number;
    const columns: ColumnDef[] = [];
    const relKey = encodeKey([oid]);
    for await (const row of this.catalogRows(ATTRIBUTES, relKey, prefixEnd(relKey))) {
      columns.push({ name: row.values[2] as string, type: row.values[3] as string, notNull: row.values[4] as boolean, default: row.values[5] as string | null });
    }
    const indexes: IndexDef[] = [];
    const indexNames = new Map<number, string>();
    for await (const row of this.catalogRows(CLASSES)) if (row.values[3] === 'i') indexNames.set(row.values[0] as number, row.values[2] as string);
    const roots = new Map<number, number>();
    for await (const row of this.catalogRows(CLASSES)) roots.set(row.values[0] as number, row.values[4] as number);
    for await (const row of this.catalogRows(INDEXES)) {
      if (row.values[1] !== oid) continue;
      const indexOid = row.values[0] as number;
      indexes.push({
        id: indexOid,
        name: indexNames.get(indexOid) ?? `index_${indexOid}`,
        columns: (row.values[2] as string).split(' ').map(Number),
        unique: row.values[3] as boolean,
        primary: row.values[4] as boolean,
        root: pageId(roots.get(indexOid) ?? (classRow[4] as number)),
      });
    }
    const primary = indexes.find((index) => index.primary);
    const checks: Array<{ name: string; expression: string }> = [];
    for await (const row of this.catalogRows(CONSTRAINTS)) if (row.values[1] === oid && row.values[3] === 'c') checks.push({ name: row.values[2] as string, expression: row.values[4] as string });
    const def: TableDef = { id: oid, schema, name, columns, primaryKey: primary?.columns, indexes, checks, root: pageId(classRow[4] as number) };
    if (!this.ddl) this.db.rememberTable(cacheKey, def);
    return def;
  }

  /** Every user table (and the catalog's own), as of the newest committed state. */
  async allTables(): Promise<TableDef[]> {
    const namespaces = new Map<number, string>();
    for await (const row of this.catalogRows(NAMESPACES)) namespaces.set(row.values[0] as number, row.values[1] as string);
    const names: Array<[string, string]> = [];
    for await (const row of this.catalogRows(CLASSES)) if (row.values[3] === 'r') names.push([namespaces.get(row.values[1] as number) ?? 'public', row.values[2] as string]);
    const tables = CATALOG_TABLES.map((spec) => this.db.catalogTable(spec.id));
    for (const [schema, name] of names) {
      const table = await this.findTable(name, schema);
      if (table !== undefined) tables.push(table);
    }
    return tables;
  }

  /** findTable, or 42P01. */
  async table(name: string, schema = 'public'): Promise<TableDef> {
    const found = await this.findTable(name, schema);
    if (found === undefined) throw new EngineError(SqlState.undefinedTable, `relation "${name}" does not exist`);
    return found;
  }

  /** CREATE TABLE: columns, an optional primary key (column positions) and unique constraints. */
  async createTable(spec: {
    name: string;
    schema?: string;
    columns: ColumnDef[];
    primaryKey?: number[];
    unique?: Array<{ name?: string; columns: number[] }>;
    checks?: Array<{ name?: string; expression: string }>;
    ifNotExists?: boolean;
  }): Promise<TableDef | undefined> {
    this.assertActive();
    const schema = spec.schema ?? 'public';
    const namespace = await this.schemaOid(schema);
    if (namespace === undefined) throw new EngineError(SqlState.invalidSchemaName, `schema "${schema}" does not exist`);
    // Any relation of the name counts (a table, an index, a sequence, a view), as in PostgreSQL.
    if ((await this.claimRelationName(namespace, spec.name)) !== undefined) {
      if (spec.ifNotExists) return undefined;
      throw new EngineError(SqlState.duplicateTable, `relation "${spec.name}" already exists`);
    }
    this.ddl = true;
    const oid = await this.db.newOid();
    const tree = await BTree.create(this.db.cache);
    await this.catalogInsert(CLASSES, [oid, namespace, spec.name, 'r', tree.root]);
    for (const [index, column] of spec.columns.entries()) await this.catalogInsert(ATTRIBUTES, [oid, index + 1, column.name, column.type, column.notNull, column.default]);
    const columnList = (columns: number[]): string => columns.map((column) => spec.columns[column]!.name).join(', ');
    if (spec.primaryKey !== undefined) {
      await this.addIndex(oid, namespace, `${spec.name}_pkey`, spec.primaryKey, true, true, tree.root);
      await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), oid, `${spec.name}_pkey`, 'p', `PRIMARY KEY (${columnList(spec.primaryKey)})`]);
    }
    for (const unique of spec.unique ?? []) {
      const name = unique.name ?? `${spec.name}_${unique.columns.map((column) => spec.columns[column]!.name).join('_')}_key`;
      await this.addIndex(oid, namespace, name, unique.columns, true, false);
      await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), oid, name, 'u', `UNIQUE (${columnList(unique.columns)})`]);
    }
    for (const [index, check] of (spec.checks ?? []).entries()) {
      await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), oid, check.name ?? `${spec.name}_check${index === 0 ? '' : index}`, 'c', check.expression]);
    }
    return this.table(spec.name, schema);
  }

  /** CREATE SEQUENCE: a catalog row (transactional) and a counter on the volume (not transactional). */
  async createSequence(name: string, options: { schema?: string; start?: bigint; increment?: bigint; min?: bigint; max?: bigint; cycle?: boolean } = {}): Promise<void> {
    this.assertActive();
    const schema = options.schema ?? 'public';
    const namespace = await this.schemaOid(schema);
    if (namespace === undefined) throw new EngineError(SqlState.invalidSchemaName, `schema "${schema}" does not exist`);
    if ((await this.claimRelationName(namespace, name)) !== undefined) throw new EngineError(SqlState.duplicateTable, `relation "${name}" already exists`);
    const increment = options.increment ?? 1n;
    if (increment === 0n) throw new EngineError(SqlState.invalidParameterValue, 'INCREMENT must not be zero');
    const min = options.min ?? (increment > 0n ? 1n : -(1n << 63n));
    const max = options.max ?? (increment > 0n ? (1n << 63n) - 1n : -1n);
    const start = options.start ?? (increment > 0n ? min : max);
    if (start < min || start > max) throw new EngineError(SqlState.invalidParameterValue, `START value (${start}) cannot be outside MINVALUE (${min}) and MAXVALUE (${max})`);
    this.ddl = true;
    const oid = await this.db.newOid();
    await this.catalogInsert(CLASSES, [oid, namespace, name, 'S', 0]);
    await this.catalogInsert(SEQUENCES, [oid, start, increment, min, max, options.cycle ?? false]);
  }

  /** nextval(): the sequence's next value (not undone by a rollback). 42P01 if there is no such sequence. */
  async nextval(name: string, schema = 'public'): Promise<bigint> {
    this.assertActive();
    const namespace = await this.schemaOid(schema);
    let oid: number | undefined;
    for await (const row of this.catalogRows(CLASSES)) if (row.values[1] === namespace && row.values[2] === name && row.values[3] === 'S') oid = row.values[0] as number;
    if (oid === undefined) throw new EngineError(SqlState.undefinedTable, `relation "${name}" does not exist`);
    if (this.readOnly) throw new EngineError(SqlState.readOnlySqlTransaction, `cannot execute nextval() in a read-only transaction`);
    let definition: Row | undefined;
    for await (const row of this.catalogRows(SEQUENCES, encodeKey([oid]), prefixEnd(encodeKey([oid])))) definition = row;
    if (definition === undefined) throw new EngineError(SqlState.undefinedTable, `relation "${name}" does not exist`);
    const [, start, increment, min, max, cycle] = definition.values as [number, bigint, bigint, bigint, bigint, boolean];
    return this.db.nextSequenceValue(oid, { start, increment, min, max, cycle });
  }

  private async addIndex(tableOid: number, namespace: number, name: string, columns: number[], unique: boolean, primary: boolean, root?: PageId): Promise<number> {
    if ((await this.claimRelationName(namespace, name)) !== undefined) throw new EngineError(SqlState.duplicateTable, `relation "${name}" already exists`);
    const oid = await this.db.newOid();
    const indexRoot = root ?? (await BTree.create(this.db.cache)).root;
    await this.catalogInsert(CLASSES, [oid, namespace, name, 'i', indexRoot]);
    await this.catalogInsert(INDEXES, [oid, tableOid, columns.join(' '), unique, primary]);
    return oid;
  }

  /** CREATE [UNIQUE] INDEX on an existing table: builds it from the rows every snapshot may still see. */
  async createIndex(tableName: string, spec: { name: string; columns: number[]; unique: boolean; schema?: string }): Promise<void> {
    this.assertActive();
    const schema = spec.schema ?? 'public';
    const table = await this.table(tableName, schema);
    await this.lock(relationResource(table), 'exclusive');
    const namespace = (await this.schemaOid(schema))!;
    this.ddl = true;
    const oid = await this.addIndex(table.id, namespace, spec.name, spec.columns, spec.unique, false);
    const index = (await this.table(tableName, schema)).indexes.find((each) => each.id === oid)!;
    // Every version gets an entry (readers at older snapshots use the index too).
    const seen = new Map<string, string>();
    for await (const [key, value] of this.db.tree(table.root).scan()) {
      const version = parseVersion(key, value);
      if ((await this.newest([version])) === undefined && version.xmax === 0) continue;
      const values = decodeRow(version.row);
      const { indexKey, entry } = indexEntry(spec.columns, values, key);
      if (spec.unique && !spec.columns.some((column) => values[column] === null)) {
        const live = (await this.newest([version])) !== undefined;
        if (live) {
          const other = seen.get(hex(indexKey));
          if (other !== undefined && other !== hex(version.rowKey)) throw this.uniqueViolation(table, index, indexKey, false);
          seen.set(hex(indexKey), hex(version.rowKey));
        }
      }
      await this.db.tree(index.root).put(entry, new Uint8Array(0));
    }
  }

  /** DROP TABLE: its catalog rows are deleted (MVCC); its pages stay until no snapshot can read it. */
  async dropTable(name: string, options: { schema?: string; ifExists?: boolean } = {}): Promise<boolean> {
    this.assertActive();
    const schema = options.schema ?? 'public';
    const table = await this.findTable(name, schema);
    if (table === undefined) {
      if (options.ifExists) return false;
      throw new EngineError(SqlState.undefinedTable, `table "${name}" does not exist`);
    }
    await this.lock(relationResource(table), 'exclusive');
    this.ddl = true;
    await this.catalogDelete(CLASSES, encodeKey([table.id]));
    // Every index's class row goes too, the primary key's included (its name is taken otherwise).
    for (const index of table.indexes) {
      await this.catalogDelete(INDEXES, encodeKey([index.id]));
      if (index.id !== table.id) await this.catalogDelete(CLASSES, encodeKey([index.id]));
    }
    for (let column = 1; column <= table.columns.length; column++) await this.catalogDelete(ATTRIBUTES, encodeKey([table.id, column]));
    for await (const row of this.catalogRows(CONSTRAINTS)) if (row.values[1] === table.id) await this.catalogDelete(CONSTRAINTS, row.key);
    this.dropped.push(table);
    return true;
  }

  /** Replaces a class row's root page (TRUNCATE, re-keying): an MVCC update of the catalog row. */
  private async setRoot(oid: number, root: PageId): Promise<void> {
    let current: Value[] | undefined;
    for await (const row of this.catalogRows(CLASSES, encodeKey([oid]), prefixEnd(encodeKey([oid])))) current = row.values;
    if (current === undefined) throw new EngineError(SqlState.undefinedObject, `relation ${oid} does not exist`);
    await this.catalogDelete(CLASSES, encodeKey([oid]));
    await this.catalogInsert(CLASSES, [current[0]!, current[1]!, current[2]!, current[3]!, root]);
  }

  /**
   * TRUNCATE: the table and its indexes get new, empty trees (a catalog change, so it is
   * transactional: a rollback keeps the old trees). The old pages are not reclaimed yet.
   */
  async truncate(table: TableDef): Promise<void> {
    this.assertActive();
    await this.lock(relationResource(table), 'exclusive');
    this.ddl = true;
    const tree = await BTree.create(this.db.cache);
    await this.setRoot(table.id, tree.root);
    for (const index of table.indexes) {
      if (index.primary) continue;
      await this.setRoot(index.id, (await BTree.create(this.db.cache)).root);
    }
  }

  /** ALTER TABLE ADD COLUMN: existing rows read NULL for it (the SQL layer fills a default). */
  async addColumn(table: TableDef, column: ColumnDef): Promise<TableDef> {
    this.assertActive();
    await this.lock(relationResource(table), 'exclusive');
    if (table.columns.some((each) => each.name === column.name)) throw new EngineError(SqlState.duplicateColumn, `column "${column.name}" of relation "${table.name}" already exists`);
    this.ddl = true;
    await this.catalogInsert(ATTRIBUTES, [table.id, table.columns.length + 1, column.name, column.type, column.notNull, column.default]);
    return this.table(table.name, table.schema);
  }

  /** ALTER TABLE ADD CHECK: the constraint row (the SQL layer validates existing rows first). */
  async addCheck(table: TableDef, name: string, expression: string): Promise<void> {
    this.assertActive();
    await this.lock(relationResource(table), 'exclusive');
    this.ddl = true;
    await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), table.id, name, 'c', expression]);
  }

  /** ALTER TABLE ADD UNIQUE: a unique index plus its constraint row. */
  async addUnique(table: TableDef, name: string, columns: number[]): Promise<void> {
    await this.createIndex(table.name, { name, columns, unique: true, schema: table.schema });
    await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), table.id, name, 'u', `UNIQUE (${columns.map((column) => table.columns[column]!.name).join(', ')})`]);
  }

  /**
   * ALTER TABLE ADD PRIMARY KEY on a table keyed by a hidden row id: the table is re-keyed
   * into a new tree clustered by the key. Every version is copied with its xmin/xmax, so
   * snapshots see the same rows; live rows must be unique and not null. Secondary indexes
   * point at version keys, so they are rebuilt too.
   */
  async addPrimaryKey(table: TableDef, columns: number[], name = `${table.name}_pkey`): Promise<TableDef> {
    this.assertActive();
    if (table.primaryKey !== undefined) throw new EngineError(SqlState.invalidTableDefinition, `multiple primary keys for table "${table.name}" are not allowed`);
    await this.lock(relationResource(table), 'exclusive');
    this.ddl = true;
    const tree = await BTree.create(this.db.cache);
    const live = new Set<string>();
    const batch: Array<[Uint8Array, Uint8Array]> = [];
    const deadBatch: Array<[Uint8Array, Uint8Array]> = [];
    for await (const [key, value] of this.db.tree(table.root).scan()) {
      const version = parseVersion(key, value);
      const values = decodeRow(version.row);
      const isLive = (await this.newest([version])) !== undefined;
      if (isLive) {
        for (const column of columns) {
          if ((values[column] ?? null) === null) throw new EngineError(SqlState.notNullViolation, `column "${table.columns[column]!.name}" of relation "${table.name}" contains null values`);
        }
      }
      const rowKey = encodeKey(columns.map((column) => values[column] ?? null));
      if (isLive) {
        if (live.has(hex(rowKey))) throw new EngineError(SqlState.uniqueViolation, `could not create unique index "${name}"`, `Key (${columns.map((column) => table.columns[column]!.name).join(', ')})=(${columns.map((column) => formatValue(values[column] ?? null)).join(', ')}) is duplicated.`);
        live.add(hex(rowKey));
      }
      // Two versions written by one command get the same new key (row key, xmin, cmin); at
      // most one of them is live, and it must be the one kept.
      (isLive ? batch : deadBatch).push([versionKey(rowKey, version.xmin, version.cmin), value]);
      if (batch.length >= 1024) await tree.putMany(batch.splice(0));
      if (deadBatch.length >= 1024) await tree.putMany(deadBatch.splice(0), { keepExisting: true });
    }
    await tree.putMany(batch);
    await tree.putMany(deadBatch, { keepExisting: true });
    // Hints name the old (hidden) row keys: the next pass looks at the whole table.
    this.db.noteVacuumCandidate(table.id, 'all');
    const namespace = (await this.schemaOid(table.schema))!;
    await this.setRoot(table.id, tree.root);
    await this.addIndex(table.id, namespace, name, columns, true, true, tree.root);
    await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), table.id, name, 'p', `PRIMARY KEY (${columns.map((column) => table.columns[column]!.name).join(', ')})`]);
    for (const index of table.indexes) {
      if (index.primary) continue;
      const fresh = await BTree.create(this.db.cache);
      const entries: Array<[Uint8Array, Uint8Array]> = [];
      for await (const [key, value] of tree.scan()) {
        const version = parseVersion(key, value);
        entries.push([indexEntry(index.columns, decodeRow(version.row), key).entry, new Uint8Array(0)]);
        if (entries.length >= 1024) await fresh.putMany(entries.splice(0));
      }
      await fresh.putMany(entries);
      await this.setRoot(index.id, fresh.root);
    }
    return this.table(table.name, table.schema);
  }

  /**
   * CREATE VIEW: a class row of kind 'v' and its definition (the query's SQL text) in a
   * constraint row of kind 'v' (the role pg_rewrite plays in PostgreSQL).
   */
  async createView(name: string, definition: string, options: { schema?: string; replace?: boolean } = {}): Promise<void> {
    this.assertActive();
    const schema = options.schema ?? 'public';
    const namespace = await this.schemaOid(schema);
    if (namespace === undefined) throw new EngineError(SqlState.invalidSchemaName, `schema "${schema}" does not exist`);
    const existing = await this.claimRelationName(namespace, name);
    if (existing !== undefined) {
      if (existing.values[3] !== 'v' || !options.replace) throw new EngineError(SqlState.duplicateTable, `relation "${name}" already exists`);
      await this.dropView(name, { schema });
    }
    this.ddl = true;
    const oid = await this.db.newOid();
    await this.catalogInsert(CLASSES, [oid, namespace, name, 'v', 0]);
    await this.catalogInsert(CONSTRAINTS, [await this.db.newOid(), oid, `${name}_view`, 'v', definition]);
  }

  /** A view's definition (SQL text), or undefined if there is no such view. */
  async findView(name: string, schema = 'public'): Promise<{ oid: number; definition: string } | undefined> {
    const namespace = await this.schemaOid(schema);
    if (namespace === undefined) return undefined;
    let oid: number | undefined;
    for await (const row of this.catalogRows(CLASSES)) if (row.values[1] === namespace && row.values[2] === name && row.values[3] === 'v') oid = row.values[0] as number;
    if (oid === undefined) return undefined;
    for await (const row of this.catalogRows(CONSTRAINTS)) if (row.values[1] === oid && row.values[3] === 'v') return { oid, definition: row.values[4] as string };
    return undefined;
  }

  /** DROP VIEW. */
  async dropView(name: string, options: { schema?: string; ifExists?: boolean } = {}): Promise<boolean> {
    this.assertActive();
    const view = await this.findView(name, options.schema ?? 'public');
    if (view === undefined) {
      if (options.ifExists) return false;
      throw new EngineError(SqlState.undefinedTable, `view "${name}" does not exist`);
    }
    this.ddl = true;
    await this.catalogDelete(CLASSES, encodeKey([view.oid]));
    for await (const row of this.catalogRows(CONSTRAINTS)) if (row.values[1] === view.oid) await this.catalogDelete(CONSTRAINTS, row.key);
    return true;
  }

  /** DROP INDEX (not a primary key's: that is its table). */
  async dropIndex(name: string, options: { schema?: string; ifExists?: boolean } = {}): Promise<boolean> {
    this.assertActive();
    const namespace = await this.schemaOid(options.schema ?? 'public');
    let oid: number | undefined;
    for await (const row of this.catalogRows(CLASSES)) if (row.values[1] === namespace && row.values[2] === name && row.values[3] === 'i') oid = row.values[0] as number;
    if (oid === undefined) {
      if (options.ifExists) return false;
      throw new EngineError(SqlState.undefinedObject, `index "${name}" does not exist`);
    }
    let tableOid: number | undefined;
    for await (const row of this.catalogRows(INDEXES, encodeKey([oid]), prefixEnd(encodeKey([oid])))) {
      if (row.values[4] === true) throw new EngineError(SqlState.dependentObjectsStillExist, `cannot drop index ${name} because constraint ${name} on its table requires it`, 'You can drop the constraint instead.');
      tableOid = row.values[1] as number;
    }
    if (tableOid !== undefined) await this.lock(`rel:${tableOid}`, 'exclusive');
    this.ddl = true;
    await this.catalogDelete(INDEXES, encodeKey([oid]));
    await this.catalogDelete(CLASSES, encodeKey([oid]));
    for await (const row of this.catalogRows(CONSTRAINTS)) if (row.values[1] === tableOid && row.values[2] === name) await this.catalogDelete(CONSTRAINTS, row.key);
    return true;
  }

  /** Every relation of the catalog, for the system views: [oid, schema, name, kind]. */
  async relations(): Promise<Array<{ oid: number; schema: string; name: string; kind: string }>> {
    const namespaces = new Map<number, string>();
    for await (const row of this.catalogRows(NAMESPACES)) namespaces.set(row.values[0] as number, row.values[1] as string);
    const out: Array<{ oid: number; schema: string; name: string; kind: string }> = [];
    for await (const row of this.catalogRows(CLASSES)) out.push({ oid: row.values[0] as number, schema: namespaces.get(row.values[1] as number) ?? 'public', name: row.values[2] as string, kind: row.values[3] as string });
    return out;
  }

  /** Schema names with their oids. */
  /** Table constraints (primary key, unique, check) with their OIDs and definitions. */
  async constraints(): Promise<Array<{ oid: number; relation: number; name: string; kind: 'p' | 'u' | 'c'; definition: string }>> {
    this.assertActive();
    const out: Array<{ oid: number; relation: number; name: string; kind: 'p' | 'u' | 'c'; definition: string }> = [];
    for await (const row of this.catalogRows(CONSTRAINTS)) {
      const kind = row.values[3] as string;
      if (kind === 'p' || kind === 'u' || kind === 'c') out.push({ oid: row.values[0] as number, relation: row.values[1] as number, name: row.values[2] as string, kind, definition: row.values[4] as string });
    }
    return out;
  }

  async schemas(): Promise<Array<{ oid: number; name: string }>> {
    const out: Array<{ oid: number; name: string }> = [];
    for await (const row of this.catalogRows(NAMESPACES)) out.push({ oid: row.values[0] as number, name: row.values[1] as string });
    return out;
  }

  /** Work this transaction did that is not undone by MVCC alone (for tests). */
  get droppedTables(): readonly TableDef[] {
    return this.dropped;
  }
}

function sameValue(a: Value, b: Value): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return sameBytes(a, b);
  // eslint-disable-next-line eqeqeq
  return a === b || (typeof a !== 'object' && typeof b !== 'object' && a == b && typeof a === typeof b);
}

export function formatValue(value: Value): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `\\x${hex(value)}`;
  if (typeof value === 'boolean') return value ? 't' : 'f';
  return String(value);
}

function serializationFailure(detail?: string, kind?: 'update' | 'delete'): EngineError {
  const message = kind === undefined ? 'could not serialize access due to read/write dependencies among transactions' : `could not serialize access due to concurrent ${kind}`;
  return new EngineError(SqlState.serializationFailure, message, detail);
}
