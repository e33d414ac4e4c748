// The control plane's durable store: one lmdb file of JSON documents under string keys.
// A put resolves only once its commit is on disk (overlappingSync off), so what the control
// plane has acted on survives a kill -9 of the control plane (C1).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { open, type RootDatabase } from 'lmdb';

export class ControlStore {
  private readonly root: RootDatabase<unknown, string>;

  constructor(directory: string) {
    fs.mkdirSync(directory, { recursive: true });
    this.root = open<unknown, string>({ path: path.join(directory, 'control.lmdb'), encoding: 'json', overlappingSync: false });
  }

  get<T>(key: string): T | undefined {
    return this.root.get(key) as T | undefined;
  }

  /** Every document whose key starts with prefix, in key order. */
  list<T>(prefix: string): T[] {
    const result: T[] = [];
    for (const { value } of this.root.getRange({ start: prefix, end: `${prefix}\uffff` })) result.push(value as T);
    return result;
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.root.put(key, value);
  }

  /** Several documents in one durable commit: all of them or none survive a crash. */
  async putMany(entries: Array<[string, unknown]>): Promise<void> {
    await this.root.transaction(() => {
      for (const [key, value] of entries) void this.root.put(key, value);
    });
  }

  async remove(key: string): Promise<void> {
    await this.root.remove(key);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
