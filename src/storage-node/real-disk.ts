// Production adapters for the hot log (node:fs) and the page store (lmdb).
//
// Why lmdb for page versions: a B+tree in one memory-mapped file with ordered keys (so
// "newest version of page P at or below LSN L" is one reverse range read), atomic
// multi-key commits that are durable when they resolve, reads that never block on writes,
// and memory that is the OS page cache rather than the Node heap, so a node's RSS does
// not grow with the volume. RocksDB/LevelDB bindings would add compaction stalls and a
// second write-ahead log under ours; SQLite would serialize readers behind the writer.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { DiskCallback, LogDisk, OrderedStore, RangeQuery } from './environment.js';

/** Average fdatasync time above which the hot log syncs on the thread pool, not inline. */
export const INLINE_SYNC_MS_MAX = 2;

export class FsLogDisk implements LogDisk {
  private readonly descriptors = new Map<string, number>();

  constructor(private readonly directory: string) {
    fs.mkdirSync(directory, { recursive: true });
  }

  list(): string[] {
    return fs.readdirSync(this.directory).filter((name) => name.startsWith('hot-log-'));
  }

  read(name: string): Uint8Array {
    return new Uint8Array(fs.readFileSync(path.join(this.directory, name)));
  }

  private descriptor(name: string, done: (error: Error | null, descriptor?: number) => void): void {
    const existing = this.descriptors.get(name);
    if (existing !== undefined) return done(null, existing);
    fs.open(path.join(this.directory, name), 'a', (error, descriptor) => {
      if (error) return done(error);
      this.descriptors.set(name, descriptor);
      // A new file's directory entry must be durable too before its frames are acknowledged.
      this.syncDirectory((directoryError) => done(directoryError ?? null, descriptor));
    });
  }

  private syncDirectory(done: DiskCallback): void {
    fs.open(this.directory, 'r', (error, descriptor) => {
      if (error) return done(error);
      fs.fsync(descriptor, (syncError) => fs.close(descriptor, () => done(syncError ?? undefined)));
    });
  }

  append(name: string, bytes: Uint8Array, done: DiskCallback): void {
    this.descriptor(name, (error, descriptor) => {
      if (error || descriptor === undefined) return done(error ?? new Error('no descriptor'));
      // Appending copies into the page cache: done inline, it saves a thread-pool round trip
      // on the commit path; only the fdatasync that follows waits on the device.
      try {
        let at = 0;
        while (at < bytes.length) at += fs.writeSync(descriptor, bytes, at, bytes.length - at);
      } catch (writeError) {
        return done(writeError as Error);
      }
      done();
    });
  }

  /**
   * On a fast device the fdatasync runs inline: the thread-pool hand-off of an async sync
   * (wake a pool thread, then wake the loop again) cost each group commit ~90 us of CPU on
   * the bench VM, where a sync itself takes 200-450 us, and a node has nothing to do
   * meanwhile that the next group commit does not batch anyway. On a slow device (an
   * average sync above INLINE_SYNC_MS_MAX) it goes back to the pool, so that page reads
   * are not held behind it. The average is a moving one, so the choice follows the device.
   */
  sync(name: string, done: DiskCallback): void {
    const descriptor = this.descriptors.get(name);
    if (descriptor === undefined) return done();
    const started = performance.now();
    if (this.syncMsAverage <= INLINE_SYNC_MS_MAX) {
      let failure: Error | undefined;
      try {
        fs.fdatasyncSync(descriptor);
      } catch (error) {
        failure = error as Error;
      }
      this.noteSyncMs(performance.now() - started);
      return done(failure);
    }
    fs.fdatasync(descriptor, (error) => {
      this.noteSyncMs(performance.now() - started);
      done(error ?? undefined);
    });
  }

  private syncMsAverage = 0;

  private noteSyncMs(ms: number): void {
    this.syncMsAverage += (ms - this.syncMsAverage) / 16;
  }

  remove(name: string, done: DiskCallback): void {
    const descriptor = this.descriptors.get(name);
    this.descriptors.delete(name);
    const unlink = (): void => fs.unlink(path.join(this.directory, name), (error) => done(error ?? undefined));
    if (descriptor === undefined) unlink();
    else fs.close(descriptor, unlink);
  }

  close(): void {
    for (const descriptor of this.descriptors.values()) fs.closeSync(descriptor);
    this.descriptors.clear();
  }
}

export class LmdbOrderedStore implements OrderedStore {
  private readonly root: RootDatabase;
  private readonly database: Database<Buffer, string>;

  constructor(directory: string) {
    fs.mkdirSync(directory, { recursive: true });
    // overlappingSync (lmdb-js's default on Linux) resolves a commit before it is flushed;
    // a commit here lets hot-log files be deleted, so it must be on disk when it resolves.
    this.root = open({ path: path.join(directory, 'pages.lmdb'), keyEncoding: 'ordered-binary', encoding: 'binary', compression: false, overlappingSync: false });
    this.database = this.root as unknown as Database<Buffer, string>;
  }

  get(key: string): Uint8Array | undefined {
    const value = this.database.get(key);
    return value === undefined ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.length).slice();
  }

  has(key: string): boolean {
    return this.database.doesExist(key);
  }

  range(query: RangeQuery): Array<[string, Uint8Array]> {
    const limit = query.limit ?? Number.MAX_SAFE_INTEGER;
    const result: Array<[string, Uint8Array]> = [];
    if (query.reverse) {
      // lmdb's reverse ranges start inclusive at the high end; ours is exclusive there.
      for (const { key, value } of this.database.getRange({ start: query.end, reverse: true })) {
        if (key >= query.end) continue;
        if (key < query.start || result.length >= limit) break;
        result.push([key, copy(value)]);
      }
      return result;
    }
    for (const { key, value } of this.database.getRange({ start: query.start, end: query.end, limit })) result.push([key, copy(value)]);
    return result;
  }

  rangeKeys(query: RangeQuery): string[] {
    const limit = query.limit ?? Number.MAX_SAFE_INTEGER;
    const result: string[] = [];
    if (query.reverse) {
      for (const key of this.database.getKeys({ start: query.end, reverse: true })) {
        if (key >= query.end) continue;
        if (key < query.start || result.length >= limit) break;
        result.push(key);
      }
      return result;
    }
    for (const key of this.database.getKeys({ start: query.start, end: query.end, limit })) result.push(key);
    return result;
  }

  commit(puts: Array<[string, Uint8Array]>, deletes: string[], done: DiskCallback): void {
    // A batch, not a transaction callback: the writes are applied by lmdb's write thread,
    // off the node's event loop, and still commit together (one atomic, synced transaction).
    const database = this.database;
    database
      .batch(() => writeBatch(database, puts, deletes))
      .then(
        () => done(),
        (error: unknown) => done(error as Error),
      );
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}

/**
 * The body of a page store batch. Module-level, not the batch's own closure: it loops over
 * thousands of keys, and V8 optimizes every new closure of a hot loop anew.
 */
function writeBatch(database: Database<Buffer, string>, puts: Array<[string, Uint8Array]>, deletes: string[]): void {
  for (const key of deletes) database.remove(key);
  for (const [key, value] of puts) database.put(key, Buffer.from(value.buffer, value.byteOffset, value.length));
}

function copy(value: Buffer): Uint8Array {
  return new Uint8Array(value.buffer, value.byteOffset, value.length).slice();
}
