// Every queue, batch, frame and in-flight count has a named limit here, and the code
// enforces it. Tests and the simulator shrink some of them to reach rare paths.

export const PAGE_BYTES = 8192;

export interface StorageLimits {
  /** Largest wire or log frame accepted; anything bigger is a protocol error. */
  frameBytesMax: number;
  /** Records in one write batch or one gossip push. */
  batchRecordsMax: number;
  /** Payload bytes in one write batch. */
  batchBytesMax: number;
  /** Write batches queued at a node waiting for the next group commit. */
  nodeAppendQueueMax: number;
  /** Bytes queued at a node waiting for the next group commit. */
  nodeAppendQueueBytesMax: number;
  /** Records kept in memory per segment before they are coalesced into the page store. */
  hotTailRecordsMax: number;
  /** Records out of chain order (above a hole) kept per segment; more are refused. */
  holeRecordsMax: number;
  /** Hot log file size before the node starts a new file. */
  logFileBytesMax: number;
  /** Recovery truncation history entries kept. */
  epochHistoryMax: number;
  /** Pages sent in one hydration chunk. */
  hydrationPagesMax: number;
  /** Connections a node accepts. */
  connectionsMax: number;
  /** Records a page accumulates before coalescing writes a new version of it. */
  recordsPerVersion: number;
  /** GC waits until it can reclaim at least this many LSNs at once (each pass writes versions). */
  gcBatchLsns: number;
}

export interface ClientLimits {
  /** LAL: LSNs the writer may allocate beyond the VDL before it must wait. */
  lsnAheadOfVdlMax: bigint;
  /** Records in one batch sent to a segment. */
  batchRecordsMax: number;
  /** Outstanding page reads. */
  readsInFlightMax: number;
  /** Commit waiters queued. */
  commitWaitersMax: number;
  /**
   * Records the client may hold back before shipping them unasked (0: ship every append in
   * the next batch). Held redo leaves as soon as a commit (or an eviction) waits for it,
   * when this many are queued, or after a heartbeat interval: one batch per transaction instead of
   * one per mini-transaction.
   */
  heldRecordsMax: number;
}

export const defaultStorageLimits: StorageLimits = {
  frameBytesMax: 16 * 1024 * 1024,
  batchRecordsMax: 1024,
  batchBytesMax: 8 * 1024 * 1024,
  nodeAppendQueueMax: 4096,
  nodeAppendQueueBytesMax: 32 * 1024 * 1024,
  hotTailRecordsMax: 4096,
  holeRecordsMax: 16384,
  logFileBytesMax: 64 * 1024 * 1024,
  epochHistoryMax: 64,
  hydrationPagesMax: 64,
  connectionsMax: 512,
  recordsPerVersion: 16,
  gcBatchLsns: 256,
};

export const defaultClientLimits: ClientLimits = {
  lsnAheadOfVdlMax: 20000n,
  batchRecordsMax: 512,
  readsInFlightMax: 1024,
  commitWaitersMax: 100000,
  heldRecordsMax: 0,
};

/**
 * A duration in milliseconds from environment variable `name`: `fallback` when unset or
 * empty, a RangeError naming the variable when it is not a number in [0, max].
 */
export function millisecondsFromEnv(name: string, fallback: number, max: number): number {
  const configured = process.env[name];
  if (configured === undefined || configured === '') return fallback;
  const value = Number(configured);
  if (!Number.isFinite(value) || value < 0 || value > max) throw new RangeError(`${name} must be 0-${max} ms, not ${configured}`);
  return value;
}
