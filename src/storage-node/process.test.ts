// The storage-node process's scheduling priority: below the instance's by default, so that
// on a shared host the nodes a redo batch wakes do not preempt the writer (process.ts).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { test } from 'node:test';
import { Fleet } from '../testing/fleet.js';
import { STORAGE_NODE_NICE } from './process.js';

/** The niceness of every thread of a process (Linux: field 19 of /proc/PID/task/TID/stat). */
function threadNiceness(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((thread) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('every thread of a storage node runs at nice 10 by default, and --nice 0 leaves the niceness it inherited', { timeout: 60000 }, async () => {
  const inherited = os.getPriority();
  for (const [extraArgs, expected] of [
    [[], Math.max(inherited, STORAGE_NODE_NICE)],
    [['--nice', '0'], inherited],
  ] as const) {
    const fleet = await Fleet.start({ count: 1, extraArgs: [...extraArgs] });
    try {
      const pid = fleet.pid(1)!;
      const niceness = threadNiceness(pid);
      assert.ok(niceness.length > 1, 'a node process has helper threads too');
      assert.deepEqual(new Set(niceness), new Set([expected]), `threads of a node started with [${extraArgs.join(' ')}]: ${niceness.join(',')}`);
    } finally {
      await fleet.destroy();
    }
  }
});
