// Real processes, real faults: 6 storage-node processes on loopback, a writer process
// streaming records, kill -9 of two nodes, of a whole AZ, and of the writer, mid-stream.
// Afterwards a new writer recovers the volume: every acknowledged record is readable, and
// nothing above the recovered VDL ever becomes visible, even after new writes reuse LSNs.

import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import * as readline from 'node:readline';
import { test } from 'node:test';
import { pageId, type Lsn } from '../common/index.js';
import { RedoKind } from '../page/index.js';
import { connectVolume, type VolumeConnection } from '../volume-client/index.js';
import { SLOT_BYTES, SLOTS_PER_PAGE, slotBytes } from '../volume-client/slots.js';
import { Fleet, STREAM_WRITER } from './fleet.js';

interface Ack {
  lsn: Lsn;
  index: number;
  page: number;
  slot: number;
}

const started = Date.now();
const step = (what: string): void => console.log(`${Date.now() - started} ms: ${what}`);

class WriterProcess {
  readonly acks: Ack[] = [];
  readonly process: ChildProcess;
  private waiters: Array<{ count: number; resolve: () => void }> = [];
  stderr = '';

  constructor(fleet: Fleet, records: number) {
    this.process = spawn(process.execPath, [STREAM_WRITER, '--metadata', fleet.metadataPath, '--peers', fleet.peers, '--records', String(records)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    readline.createInterface({ input: this.process.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as { ack?: string; index: number; page: number; slot: number };
      if (parsed.ack === undefined) return;
      this.acks.push({ lsn: BigInt(parsed.ack), index: parsed.index, page: parsed.page, slot: parsed.slot });
      this.waiters = this.waiters.filter((waiter) => {
        if (this.acks.length < waiter.count) return true;
        waiter.resolve();
        return false;
      });
    });
  }

  /** Resolves once `more` further commits have been acknowledged. */
  async progress(more: number, timeoutMs = 30000): Promise<void> {
    const count = this.acks.length + more;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer stalled at ${this.acks.length} acks (wanted ${count}): ${this.stderr}`)), timeoutMs);
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGKILL');
    await exited;
  }
}

/** Reads every page at `atLsn` and returns the slots that hold something. */
async function visibleSlots(connection: VolumeConnection, atLsn: Lsn): Promise<Map<string, { lsn: Lsn; index: number }>> {
  const visible = new Map<string, { lsn: Lsn; index: number }>();
  for (let page = 0; page < connection.client.pageCount; page++) {
    const bytes = await connection.readPage(pageId(page), atLsn);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let slot = 0; slot < SLOTS_PER_PAGE; slot++) {
      const lsn = view.getBigUint64(slot * SLOT_BYTES, true);
      const marker = view.getBigUint64(slot * SLOT_BYTES + 8, true);
      if (lsn !== 0n || marker !== 0n) visible.set(`${page}/${slot}`, { lsn, index: Number(marker) - 1 });
    }
  }
  return visible;
}

test('acknowledged records survive kill -9 of 2 nodes, of a whole AZ and of the writer', { timeout: 180000 }, async () => {
  const fleet = await Fleet.start({ groups: 4, pagesPerGroup: 8 });
  let writer: WriterProcess | undefined;
  let recovered: VolumeConnection | undefined;
  try {
    writer = new WriterProcess(fleet, 12000);
    await writer.progress(300);
    // Two nodes in different AZs die mid-stream, then a whole AZ: 4/6 remain each time and
    // writes go on; the victims come back before the next round.
    for (const victims of [
      [1, 3],
      [5, 6],
    ]) {
      await Promise.all(victims.map((id) => fleet.kill(id)));
      step(`killed nodes ${victims.join(' and ')}`);
      await writer.progress(400);
      await Promise.all(victims.map((id) => fleet.restart(id)));
      step(`restarted nodes ${victims.join(' and ')}`);
      await writer.progress(300);
    }
    // Now the writer dies mid-stream, with commits in flight, and one more node with it.
    await Promise.all([writer.kill(), fleet.kill(2)]);
    step('killed the writer and node 2');
    const acknowledged = writer.acks;
    assert.ok(acknowledged.length >= 1700, `only ${acknowledged.length} acknowledgements`);

    recovered = connectVolume({ name: 'recovery', metadataPath: fleet.metadataPath, nodes: fleet.addresses });
    await recovered.open();
    step('a new writer recovered the volume');
    const vdl = recovered.client.vdl;
    const highestAck = acknowledged.reduce((high, ack) => (ack.lsn > high ? ack.lsn : high), 0n);
    assert.ok(vdl >= highestAck, `recovered VDL ${vdl} is below acknowledged commit ${highestAck}`);

    await fleet.restart(2);
    const before = await visibleSlots(recovered, vdl);
    for (const ack of acknowledged) {
      const seen = before.get(`${ack.page}/${ack.slot}`);
      assert.ok(seen !== undefined, `acknowledged record ${ack.lsn} (index ${ack.index}) is not visible`);
      assert.equal(seen.lsn, ack.lsn);
      assert.equal(seen.index, ack.index);
    }
    for (const [where, seen] of before) assert.ok(seen.lsn <= vdl, `slot ${where} shows record ${seen.lsn} above the recovered VDL ${vdl}`);

    // New writes reuse the LSNs above the old VDL: whatever the old writer left there unacknowledged must stay invisible.
    const newRecords: Array<{ lsn: Lsn; page: number; slot: number }> = [];
    const pageCount = recovered.client.pageCount;
    for (let index = 0; index < 200; index++) {
      const page = index % pageCount;
      const slot = SLOTS_PER_PAGE - 1 - Math.floor(index / pageCount);
      const data = slotBytes(0n, 1_000_000 + index);
      const [record] = recovered.client.writeMiniTransaction([{ pageId: pageId(page), kind: RedoKind.Write, offset: slot * SLOT_BYTES, data }]);
      new DataView(data.buffer).setBigUint64(0, record!.lsn, true);
      newRecords.push({ lsn: record!.lsn, page, slot });
    }
    await recovered.commit(newRecords[newRecords.length - 1]!.lsn);
    const later = recovered.client.vdl;
    const after = await visibleSlots(recovered, later);
    const newSlots = new Set(newRecords.map((record) => `${record.page}/${record.slot}`));
    for (const [where, seen] of after) {
      if (newSlots.has(where)) continue;
      assert.ok(seen.lsn <= vdl, `slot ${where} shows old record ${seen.lsn} from above the recovered VDL ${vdl}`);
    }
    for (const record of newRecords) assert.equal(after.get(`${record.page}/${record.slot}`)?.lsn, record.lsn);
  } finally {
    await writer?.kill();
    await recovered?.close();
    await fleet.destroy();
  }
});
