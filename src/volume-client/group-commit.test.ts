// Group commit (commitDelayMs) over six real storage-node processes: a commit alone leaves
// at once; commits that find another still waiting are held and leave together, in one
// batch per segment; every one of them is durable in the end.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pageId, type Lsn } from '../common/index.js';
import { RedoKind } from '../page/index.js';
import { Fleet } from '../testing/fleet.js';
import { connectVolume, type VolumeConnection } from './index.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Three commits, one event-loop turn apart, each of one single-record mini-transaction. */
async function threeCommits(connection: VolumeConnection): Promise<{ lsns: Lsn[]; durableOrder: number[] }> {
  const lsns: Lsn[] = [];
  const durableOrder: number[] = [];
  const waits: Array<Promise<void>> = [];
  for (let index = 0; index < 3; index++) {
    const records = connection.client.writeMiniTransaction([{ pageId: pageId(index), kind: RedoKind.Write, offset: 0, data: new Uint8Array([index + 1]) }]);
    const lsn = records[records.length - 1]!.lsn;
    lsns.push(lsn);
    waits.push(connection.commit(lsn).then(() => void durableOrder.push(index)));
    // The flush of this turn (setImmediate) runs before the next append; no ack can arrive
    // between, so the first commit is still waiting when the second and third come.
    await turn();
  }
  await Promise.all(waits);
  return { lsns, durableOrder };
}

test('group commit: a lone commit leaves at once, commits that find one waiting leave together, all durable', { timeout: 120_000 }, async () => {
  const fleet = await Fleet.start({ groups: 1, pagesPerGroup: 16 });
  const connections: VolumeConnection[] = [];
  try {
    const open = async (name: string, commitDelayMs: number): Promise<VolumeConnection> => {
      const connection = connectVolume({ name, metadataPath: fleet.metadataPath, nodes: fleet.addresses, limits: { heldRecordsMax: 256 }, client: { commitDelayMs } });
      connections.push(connection);
      await connection.open();
      return connection;
    };

    // Under resendAfterMs (200 ms), so that no resend carries the held records earlier.
    const grouped = await open('grouped', 100);
    const before = { ...grouped.client.stats };
    const started = performance.now();
    const run = await threeCommits(grouped);
    const flushes = grouped.client.stats.flushes - before.flushes;
    const held = grouped.client.stats.heldCommits - before.heldCommits;
    assert.equal(flushes, 2, 'the first commit alone, the second and third in one held flush');
    assert.equal(held, 1, 'one hold, which the third commit joined');
    assert.ok(performance.now() - started >= 95, 'the held flush waited for the delay');
    assert.equal(run.durableOrder[0], 0, 'the lone commit did not wait for the held ones');
    assert.ok(grouped.client.vdl >= run.lsns[2]!, 'every commit is durable');
    // Durable for real: a read quorum after recovery sees the third commit's byte.
    await grouped.close();
    connections.length = 0;
    const reader = await open('after', 0);
    assert.equal((await reader.readPage(pageId(2), reader.client.vdl))[0], 3);

    // Off: each commit's redo leaves at its own turn.
    const immediate = await open('immediate', 0);
    const base = immediate.client.stats.flushes;
    await threeCommits(immediate);
    assert.equal(immediate.client.stats.flushes - base, 3);
    assert.equal(immediate.client.stats.heldCommits, 0);
  } finally {
    for (const connection of connections) await connection.close();
    await fleet.destroy();
  }
});
