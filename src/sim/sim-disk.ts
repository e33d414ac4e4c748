// Simulated disks with a written-down fault model.
//
// Hot log files: an append lands in the page cache (unsynced); a sync makes everything
// appended before it durable. A crash keeps durable bytes and, of the unsynced suffix,
// either nothing, a prefix, or a prefix followed by garbage (a torn write). Appends may
// fail (disk full, EIO), possibly after writing part of their bytes. A bit flip may hit
// any durable byte except the last 16 bytes of a file: there sits the final commit frame,
// and a corrupted final commit frame is indistinguishable from a torn write without a
// second copy of the log's head (not modelled; see docs/storage.md).
//
// Page store: a commit is atomic; a crash loses commits whose callback has not run. A bit
// flip may hit any stored value.

import type { Random } from '../common/index.js';
import type { DiskCallback, LogDisk, OrderedStore, RangeQuery } from '../storage-node/environment.js';
import type { EventQueue } from './event-queue.js';

interface SimFile {
  durable: Uint8Array;
  unsynced: Uint8Array;
}

export interface DiskFaults {
  appendErrorProbability: number;
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}

/** Callbacks are scheduled on the event queue and dropped if the node crashed meanwhile. */
export class SimLogDisk implements LogDisk {
  private readonly files = new Map<string, SimFile>();
  generation = 0;

  constructor(
    private readonly events: EventQueue,
    private readonly random: Random,
    private readonly faults: DiskFaults,
  ) {}

  /** Appends land in the page cache quickly; an fdatasync takes milliseconds. */
  private later(done: () => void, slowMs = 0.3): void {
    const generation = this.generation;
    this.events.after(0.05 + this.random.next() * slowMs, () => {
      if (generation === this.generation) done();
    });
  }

  list(): string[] {
    return [...this.files.keys()].sort();
  }
  read(name: string): Uint8Array {
    const file = this.files.get(name);
    return file ? join(file.durable, file.unsynced) : new Uint8Array(0);
  }
  append(name: string, bytes: Uint8Array, done: DiskCallback): void {
    let file = this.files.get(name);
    if (file === undefined) {
      file = { durable: new Uint8Array(0), unsynced: new Uint8Array(0) };
      this.files.set(name, file);
    }
    const target = file;
    if (this.random.chance(this.faults.appendErrorProbability)) {
      target.unsynced = join(target.unsynced, bytes.subarray(0, this.random.integer(bytes.length)));
      this.later(() => done(new Error(this.random.chance(0.5) ? 'ENOSPC: no space left on device' : 'EIO: i/o error')));
      return;
    }
    target.unsynced = join(target.unsynced, bytes);
    this.later(() => done());
  }
  sync(name: string, done: DiskCallback): void {
    const file = this.files.get(name);
    const syncedLength = file ? file.unsynced.length : 0;
    this.later(() => {
      if (file) {
        file.durable = join(file.durable, file.unsynced.subarray(0, syncedLength));
        file.unsynced = file.unsynced.slice(syncedLength);
      }
      done();
    }, 4);
  }
  remove(name: string, done: DiskCallback): void {
    this.files.delete(name);
    this.later(() => done());
  }

  /** The process died: unsynced bytes are lost, kept in part, or torn. */
  crash(): void {
    this.generation += 1;
    for (const file of this.files.values()) {
      const choice = this.random.integer(3);
      const keep = this.random.integer(file.unsynced.length + 1);
      if (choice === 0) file.unsynced = new Uint8Array(0);
      else if (choice === 1) file.unsynced = file.unsynced.slice(0, keep);
      else {
        const torn = file.unsynced.slice(0, keep);
        for (let index = Math.floor(keep / 2); index < keep; index++) torn[index] = this.random.integer(256);
        file.unsynced = torn;
      }
      // What survives a crash is on disk from then on.
      file.durable = join(file.durable, file.unsynced);
      file.unsynced = new Uint8Array(0);
    }
  }

  /** Flips one bit of durable data; returns false if there was nothing to flip. */
  flipBit(): boolean {
    const candidates = [...this.files.values()].filter((file) => file.durable.length > 32);
    if (candidates.length === 0) return false;
    const file = this.random.pick(candidates);
    const at = this.random.integer(file.durable.length - 16);
    file.durable[at] = file.durable[at]! ^ (1 << this.random.integer(8));
    return true;
  }
}

export class SimOrderedStore implements OrderedStore {
  private keys: string[] = [];
  private readonly values = new Map<string, Uint8Array>();
  generation = 0;

  constructor(
    private readonly events: EventQueue,
    private readonly random: Random,
  ) {}

  get(key: string): Uint8Array | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  private lowerBound(key: string): number {
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.keys[middle]! < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  range(query: RangeQuery): Array<[string, Uint8Array]> {
    const from = this.lowerBound(query.start);
    const to = this.lowerBound(query.end);
    const limit = query.limit ?? Number.MAX_SAFE_INTEGER;
    const result: Array<[string, Uint8Array]> = [];
    if (query.reverse) {
      for (let index = to - 1; index >= from && result.length < limit; index--) result.push([this.keys[index]!, this.values.get(this.keys[index]!)!]);
    } else {
      for (let index = from; index < to && result.length < limit; index++) result.push([this.keys[index]!, this.values.get(this.keys[index]!)!]);
    }
    return result;
  }

  rangeKeys(query: RangeQuery): string[] {
    return this.range(query).map(([key]) => key);
  }

  commit(puts: Array<[string, Uint8Array]>, deletes: string[], done: DiskCallback): void {
    const generation = this.generation;
    this.events.after(0.5 + this.random.next() * 3, () => {
      if (generation !== this.generation) return;
      // Apply as one sorted merge: O(keys) per commit rather than per key.
      let removed = false;
      for (const key of deletes) if (this.values.delete(key)) removed = true;
      const added: string[] = [];
      for (const [key, value] of puts) {
        if (!this.values.has(key)) added.push(key);
        this.values.set(key, value.slice());
      }
      if (removed) this.keys = this.keys.filter((key) => this.values.has(key));
      if (added.length > 0) this.keys = mergeSorted(this.keys, [...new Set(added)].sort());
      done();
    });
  }

  crash(): void {
    this.generation += 1;
  }

  /** Flips a bit in a stored page version or record; returns the key hit. */
  flipBit(prefix: 'v/' | 'p/'): string | undefined {
    const from = this.lowerBound(prefix);
    const to = this.lowerBound(prefix.replace('/', '0'));
    if (to <= from) return undefined;
    const key = this.keys[from + this.random.integer(to - from)]!;
    const value = this.values.get(key)!.slice();
    const at = this.random.integer(value.length);
    value[at] = value[at]! ^ (1 << this.random.integer(8));
    this.values.set(key, value);
    return key;
  }

  get size(): number {
    return this.keys.length;
  }
}

function mergeSorted(a: string[], b: string[]): string[] {
  const merged: string[] = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) merged[k++] = a[i]! < b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) merged[k++] = a[i++]!;
  while (j < b.length) merged[k++] = b[j++]!;
  return merged;
}
