// The determinism boundary of a storage node: everything it does to the outside world
// goes through these interfaces. Real adapters live in src/storage-node/real-*.ts; the
// simulator provides seeded, fault-injecting ones.

import type { Random } from '../common/index.js';
import type { Address, Message } from '../net/messages.js';

export type DiskCallback = (error?: Error) => void;

/** Append-only files of the hot log. */
export interface LogDisk {
  /** Names of existing log files (read at start-up only). */
  list(): string[];
  /** Whole content of a file (read at start-up only). */
  read(name: string): Uint8Array;
  append(name: string, bytes: Uint8Array, done: DiskCallback): void;
  /** fdatasync: when done() is called without error, every byte appended before is durable. */
  sync(name: string, done: DiskCallback): void;
  remove(name: string, done: DiskCallback): void;
}

export interface RangeQuery {
  /** Inclusive lower bound. */
  start: string;
  /** Exclusive upper bound. */
  end: string;
  reverse?: boolean;
  limit?: number;
}

/**
 * An ordered key-value store with atomic, durable commits (lmdb in production). Reads
 * see only committed data. A crash loses a commit whose callback has not run, entirely.
 */
export interface OrderedStore {
  get(key: string): Uint8Array | undefined;
  /** Whether `key` is stored, without reading its value. */
  has(key: string): boolean;
  range(query: RangeQuery): Array<[string, Uint8Array]>;
  /** The keys of `range(query)`, without copying values. */
  rangeKeys(query: RangeQuery): string[];
  commit(puts: Array<[string, Uint8Array]>, deletes: string[], done: DiskCallback): void;
}

export interface NodeEnvironment {
  nowMs(): number;
  random: Random;
  send(to: Address, message: Message): void;
  /** One structured log line: an event name and its fields. */
  log(event: string, fields: Record<string, unknown>): void;
}
