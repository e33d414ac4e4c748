// Row locks on the writer: share and exclusive locks on named resources (a table's row
// key), held by transactions until they end, with FIFO waits, deadlock detection,
// lock_timeout and cancellation. Locks live in memory only: a writer crash aborts every
// transaction that held one, so there is nothing to recover.
//
// Invariants:
//  L1. An exclusive lock has one holder and no share holder; share locks have no exclusive holder.
//  L2. Grants are FIFO: a request waits behind earlier waiters it conflicts with, so a stream
//      of share lockers cannot starve an exclusive one. A holder upgrading jumps the queue.
//  L3. A wait that has lasted deadlockTimeoutMs looks for a cycle in the waits-for graph
//      through itself; if there is one, that waiter (and only it) fails with 40P01 and the
//      others go on, as in PostgreSQL, where the session whose deadlock_timeout fires first
//      is the one cancelled.
//  L4. A failed or cancelled wait leaves no trace: the queue moves on as if it never asked.

import { EngineError, SqlState } from './errors.js';

export type LockMode = 'share' | 'exclusive';

/** Who holds and waits: a transaction, or anything with an identity and a label. */
export interface LockOwner {
  readonly id: number;
}

interface Waiter {
  owner: LockOwner;
  mode: LockMode;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface Entry {
  holders: Map<LockOwner, LockMode>;
  waiters: Waiter[];
}

export interface WaitOptions {
  /** Give up after this long with 55P03 (lock_timeout; 0 or undefined waits forever). */
  lockTimeoutMs?: number | undefined;
  /** Cancels the wait with the signal's reason (statement_timeout, a cancel request). */
  signal?: AbortSignal | undefined;
  /** Overrides the manager's deadlock_timeout for this wait. */
  deadlockTimeoutMs?: number | undefined;
  /** A conflicting lock fails at once with 55P03 instead of waiting (NOWAIT). */
  noWait?: boolean;
}

/** Idle lock entries kept for reuse before they are dropped in bulk. */
const IDLE_ENTRIES_MAX = 4096;

const conflicts = (a: LockMode, b: LockMode): boolean => a === 'exclusive' || b === 'exclusive';

export class LockManager {
  private readonly entries = new Map<string, Entry>();
  /** The resources each owner holds, to release them at its end. */
  private readonly held = new Map<LockOwner, Set<string>>();
  /** What each waiting owner waits for. */
  private readonly waiting = new Map<LockOwner, { resource: string; waiter: Waiter }>();

  constructor(readonly options: { deadlockTimeoutMs: number }) {}

  /** The mode `owner` holds on `resource`, if any. */
  holding(owner: LockOwner, resource: string): LockMode | undefined {
    return this.entries.get(resource)?.holders.get(owner);
  }

  /**
   * Takes `mode` on `resource` for `owner`, waiting while others hold or wait for a
   * conflicting mode. Holding exclusive satisfies share; holding share upgrades.
   */
  async acquire(owner: LockOwner, resource: string, mode: LockMode, options: WaitOptions = {}): Promise<void> {
    if (this.tryAcquire(owner, resource, mode)) return;
    const entry = this.entries.get(resource)!;
    const upgrade = entry.holders.has(owner);
    if (options.noWait) throw new EngineError(SqlState.lockNotAvailable, 'could not obtain lock on row');
    options.signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      let onAbort: (() => void) | undefined;
      const finish = (error: Error | undefined): void => {
        for (const timer of timers) clearTimeout(timer);
        if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
        this.waiting.delete(owner);
        const at = entry.waiters.indexOf(waiter);
        if (at >= 0) entry.waiters.splice(at, 1);
        if (error === undefined) resolve();
        else {
          reject(error);
          this.wake(resource); // L4: those behind it may go now
        }
      };
      const waiter: Waiter = { owner, mode, resolve: () => finish(undefined), reject: (error) => finish(error) };
      if (upgrade) entry.waiters.unshift(waiter);
      else entry.waiters.push(waiter);
      this.waiting.set(owner, { resource, waiter });
      timers.push(
        setTimeout(() => {
          if (this.inCycle(owner)) waiter.reject(new EngineError(SqlState.deadlockDetected, 'deadlock detected', `Process ${owner.id} waits for ${mode} lock on ${resource}; a cycle of waits leads back to it.`));
        }, options.deadlockTimeoutMs ?? this.options.deadlockTimeoutMs),
      );
      if (options.lockTimeoutMs !== undefined && options.lockTimeoutMs > 0) {
        timers.push(setTimeout(() => waiter.reject(new EngineError(SqlState.lockNotAvailable, 'canceling statement due to lock timeout')), options.lockTimeoutMs));
      }
      if (options.signal !== undefined) {
        const signal = options.signal;
        onAbort = () => waiter.reject(signal.reason instanceof Error ? signal.reason : new EngineError(SqlState.queryCanceled, 'canceling statement due to user request'));
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    this.grant(entry, owner, resource, mode);
  }

  /** Takes `mode` on `resource` for `owner` if that needs no wait (as acquire would), in one synchronous step. */
  tryAcquire(owner: LockOwner, resource: string, mode: LockMode): boolean {
    let entry = this.entries.get(resource);
    if (entry === undefined) {
      entry = { holders: new Map(), waiters: [] };
      this.entries.set(resource, entry);
    }
    const current = entry.holders.get(owner);
    if (current === 'exclusive' || current === mode) return true;
    if (!this.grantable(entry, owner, mode, current !== undefined ? 0 : entry.waiters.length)) return false;
    this.grant(entry, owner, resource, mode);
    return true;
  }

  /** Releases one resource (e.g. a lock taken by a rolled-back savepoint). */
  release(owner: LockOwner, resource: string): void {
    const entry = this.entries.get(resource);
    if (entry === undefined || !entry.holders.delete(owner)) return;
    this.held.get(owner)?.delete(resource);
    this.wake(resource);
  }

  /** Releases everything `owner` holds (its transaction ended). */
  releaseAll(owner: LockOwner): void {
    const resources = this.held.get(owner);
    this.held.delete(owner);
    if (resources === undefined) return;
    for (const resource of resources) {
      const entry = this.entries.get(resource);
      if (entry === undefined) continue;
      entry.holders.delete(owner);
      this.wakeEntry(entry, resource);
    }
  }

  /** Resources held by `owner` (for tests and savepoints). */
  heldBy(owner: LockOwner): ReadonlySet<string> {
    return this.held.get(owner) ?? new Set();
  }

  /** Whether `owner` is waiting for a lock now. */
  isWaiting(owner: LockOwner): boolean {
    return this.waiting.has(owner);
  }

  /** Resources held or waited for (idle entries kept for reuse do not count). */
  get resourceCount(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.holders.size > 0 || entry.waiters.length > 0) count++;
    return count;
  }

  private grantable(entry: Entry, owner: LockOwner, mode: LockMode, waitersAhead: number): boolean {
    for (const [holder, held] of entry.holders) if (holder !== owner && conflicts(held, mode)) return false;
    for (let index = 0; index < waitersAhead; index++) {
      const waiter = entry.waiters[index]!;
      if (waiter.owner !== owner && conflicts(waiter.mode, mode)) return false;
    }
    return true;
  }

  private grant(entry: Entry, owner: LockOwner, resource: string, mode: LockMode): void {
    entry.holders.set(owner, mode);
    let set = this.held.get(owner);
    if (set === undefined) {
      set = new Set();
      this.held.set(owner, set);
    }
    set.add(resource);
  }

  /** Grants waiters from the front of the queue while they fit (L2). */
  private wake(resource: string): void {
    const entry = this.entries.get(resource);
    if (entry !== undefined) this.wakeEntry(entry, resource);
  }

  private wakeEntry(entry: Entry, resource: string): void {
    while (entry.waiters.length > 0) {
      const first = entry.waiters[0]!;
      if (!this.grantable(entry, first.owner, first.mode, 0)) break;
      // Mark it held now, so the next waiter's check sees it; resolve() removes it from the queue.
      this.grant(entry, first.owner, resource, first.mode);
      first.resolve();
    }
    // An idle entry is kept for the next locker of the resource (a table's share lock is
    // taken and released by every statement); idle entries are dropped in bulk once they
    // pile up, so the table of resources stays bounded.
    if (entry.holders.size === 0 && entry.waiters.length === 0 && this.entries.size > this.sweepAbove) this.dropIdleEntries();
  }

  private dropIdleEntries(): void {
    for (const [resource, entry] of this.entries) if (entry.holders.size === 0 && entry.waiters.length === 0) this.entries.delete(resource);
    // Many locks held at once (a large UPDATE) must not make every release sweep them all.
    this.sweepAbove = Math.max(IDLE_ENTRIES_MAX, 2 * this.entries.size);
  }

  /** Entries (idle ones included) above which idle ones are dropped. */
  private sweepAbove = IDLE_ENTRIES_MAX;

  /** Whether following waits-for edges from `start` leads back to it (L3). */
  private inCycle(start: LockOwner): boolean {
    const seen = new Set<LockOwner>();
    const stack: LockOwner[] = [...this.blockers(start)];
    while (stack.length > 0) {
      const owner = stack.pop()!;
      if (owner === start) return true;
      if (seen.has(owner)) continue;
      seen.add(owner);
      stack.push(...this.blockers(owner));
    }
    return false;
  }

  /** Whom `owner` waits for: conflicting holders and conflicting waiters ahead of it. */
  private blockers(owner: LockOwner): LockOwner[] {
    const wait = this.waiting.get(owner);
    if (wait === undefined) return [];
    const entry = this.entries.get(wait.resource)!;
    const out: LockOwner[] = [];
    for (const [holder, mode] of entry.holders) if (holder !== owner && conflicts(mode, wait.waiter.mode)) out.push(holder);
    for (const waiter of entry.waiters) {
      if (waiter === wait.waiter) break;
      if (waiter.owner !== owner && conflicts(waiter.mode, wait.waiter.mode)) out.push(waiter.owner);
    }
    return out;
  }
}
