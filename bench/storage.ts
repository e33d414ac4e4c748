// bench/storage: quorum commit latency and durable redo throughput of the storage fleet
// (6 storage-node processes on loopback, a writer in this process), next to a baseline
// measured in the same run: one local append+fdatasync log in one process, on the same
// disk. Prints ratios, since absolute figures on a shared machine drift.
//
//   npm run bench:storage -- [--seconds S] [--samples N] [--volume-mb MB]
//
// Phases: latency (1 committer, group commit off and on), throughput (1, 8, 64
// concurrent committers), each also for the floor (bench/floor-node.ts: six processes that
// only append, fdatasync and acknowledge, written to with the same 4/6 quorum), then a volume of --volume-mb MB (default 1024; 0 skips) written
// through the fleet, after which each node's peak RSS is printed.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pageId, type Lsn } from '../src/common/index.js';
import { RedoKind } from '../src/page/index.js';
import { Fleet } from '../src/testing/fleet.js';
import { connectVolume, type VolumeConnection } from '../src/volume-client/index.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const SECONDS = flag('seconds', 3);
const ONLY_VOLUME = args.includes('--only-volume');
const SAMPLES = flag('samples', 400);
const VOLUME_MB = flag('volume-mb', 1024);
const RECORD_BYTES = 200;

interface Committer {
  commit(bytes: Uint8Array): Promise<void>;
}

// ---------------------------------------------------------------- baseline: a local log

class LocalLog implements Committer {
  private readonly descriptor: number;
  private queue: Array<{ bytes: Uint8Array; resolve: () => void; reject: (error: Error) => void }> = [];
  private flushing = false;

  constructor(
    file: string,
    private readonly groupCommit: boolean,
  ) {
    this.descriptor = fs.openSync(file, 'a');
  }

  commit(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    if (this.flushing || this.queue.length === 0) return;
    const batch = this.groupCommit ? this.queue.splice(0) : this.queue.splice(0, 1);
    const joined = Buffer.concat(batch.map((entry) => entry.bytes));
    this.flushing = true;
    fs.write(this.descriptor, joined, 0, joined.length, null, (error) => {
      if (error) return this.finish(batch, error);
      fs.fdatasync(this.descriptor, (syncError) => this.finish(batch, syncError ?? undefined));
    });
  }

  private finish(batch: Array<{ resolve: () => void; reject: (error: Error) => void }>, error?: Error): void {
    this.flushing = false;
    for (const entry of batch) (error ? entry.reject(error) : entry.resolve());
    this.flush();
  }

  close(): void {
    fs.closeSync(this.descriptor);
  }
}

// ---------------------------------------------------------------- the floor: 6 bare processes

const FLOOR_NODE = fileURLToPath(new URL('./floor-node.js', import.meta.url));

/**
 * Six floor-node processes (append + fdatasync + ack, nothing else) written to like the
 * fleet: every record to all six, committed on the 4th acknowledgement. What no storage
 * code on this machine can beat with six processes on one disk.
 */
class FloorQuorum implements Committer {
  private readonly children: ChildProcess[] = [];
  private readonly sockets: net.Socket[] = [];
  private readonly waiting = new Map<number, { acks: number; resolve: () => void }>();
  private sequence = 0;
  private corked = false;

  static async start(directory: string): Promise<FloorQuorum> {
    const floor = new FloorQuorum();
    for (let index = 0; index < 6; index++) {
      const child = spawn(process.execPath, [FLOOR_NODE, directory], { stdio: ['pipe', 'pipe', 'inherit'] });
      floor.children.push(child);
      const port = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      });
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      await new Promise((resolve) => socket.once('connect', resolve));
      let rest: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        rest = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
        let at = 0;
        for (; at + 4 <= rest.length; at += 4) {
          const sequence = rest.readUInt32LE(at);
          const entry = floor.waiting.get(sequence);
          if (entry !== undefined && ++entry.acks === 4) {
            floor.waiting.delete(sequence);
            entry.resolve();
          }
        }
        rest = rest.subarray(at);
      });
      floor.sockets.push(socket);
    }
    return floor;
  }

  commit(bytes: Uint8Array): Promise<void> {
    const sequence = ++this.sequence;
    const frame = Buffer.alloc(8 + bytes.length);
    frame.writeUInt32LE(bytes.length, 0);
    frame.writeUInt32LE(sequence, 4);
    frame.set(bytes, 8);
    // Like the volume client, send what one step produced as one write per socket.
    if (!this.corked) {
      this.corked = true;
      for (const socket of this.sockets) socket.cork();
      process.nextTick(() => {
        this.corked = false;
        for (const socket of this.sockets) socket.uncork();
      });
    }
    for (const socket of this.sockets) socket.write(frame);
    return new Promise((resolve) => this.waiting.set(sequence, { acks: 0, resolve }));
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.children.map((child) => new Promise((resolve) => {
      child.once('exit', resolve);
      child.stdin!.end();
    })));
  }
}

// ---------------------------------------------------------------- the fleet as a committer

class QuorumCommitter implements Committer {
  private next = 0;
  constructor(private readonly connection: VolumeConnection) {}

  async commit(bytes: Uint8Array): Promise<void> {
    const client = this.connection.client;
    while (!client.canAppend()) await new Promise((resolve) => setImmediate(resolve));
    const index = this.next++;
    const page = index % client.pageCount;
    const offset = (Math.floor(index / client.pageCount) * RECORD_BYTES) % (8192 - RECORD_BYTES);
    const [record] = client.writeMiniTransaction([{ pageId: pageId(page), kind: RedoKind.Write, offset, data: bytes }]);
    await this.connection.commit(record!.lsn);
  }
}

// ---------------------------------------------------------------- measurements

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

async function latency(committer: Committer): Promise<{ p50: number; p99: number }> {
  const payload = new Uint8Array(RECORD_BYTES).fill(7);
  for (let index = 0; index < 20; index++) await committer.commit(payload);
  const samples: number[] = [];
  for (let index = 0; index < SAMPLES; index++) {
    const started = process.hrtime.bigint();
    await committer.commit(payload);
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

async function throughput(committer: Committer, concurrency: number): Promise<{ recordsPerSecond: number; megabytesPerSecond: number }> {
  const payload = new Uint8Array(RECORD_BYTES).fill(9);
  const deadline = Date.now() + SECONDS * 1000;
  let records = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        await committer.commit(payload);
        records++;
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  return { recordsPerSecond: records / seconds, megabytesPerSecond: (records * RECORD_BYTES) / seconds / 1e6 };
}

async function withFleet<T>(groupCommit: boolean, body: (connection: VolumeConnection, fleet: Fleet) => Promise<T>, lsnAheadOfVdlMax = 20000n): Promise<T> {
  const fleet = await Fleet.start({ groups: 4, pagesPerGroup: 1024, extraArgs: groupCommit ? [] : ['--no-group-commit'] });
  const connection = connectVolume({ name: 'bench', metadataPath: fleet.metadataPath, nodes: fleet.addresses, limits: { lsnAheadOfVdlMax } });
  try {
    await connection.open();
    return await body(connection, fleet);
  } finally {
    await connection.close();
    await fleet.destroy();
  }
}

/** Heap and other private memory, then file-backed pages (lmdb's memory map, page cache the kernel can evict). */
function rssBreakdown(pid: number | undefined): string {
  if (pid === undefined) return '-';
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
  return `${field('RssAnon').toFixed(0)}+${field('RssFile').toFixed(0)} MB`;
}

function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function writeVolume(connection: VolumeConnection, fleet: Fleet, megabytes: number): Promise<void> {
  const client = connection.client;
  const recordBytes = 7 * 1024;
  const total = Math.ceil((megabytes * 1024 * 1024) / recordBytes);
  const payload = new Uint8Array(recordBytes);
  const started = Date.now();
  let written = 0;
  let last: Lsn = 0n;
  let nextReport = total / 4;
  const inFlight: Array<Promise<void>> = [];
  while (written < total) {
    while (!client.canAppend()) await new Promise((resolve) => setTimeout(resolve, 1));
    payload.fill(written % 251);
    const [record] = client.writeMiniTransaction([{ pageId: pageId(written % client.pageCount), kind: RedoKind.Write, offset: 0, data: payload.slice() }]);
    last = record!.lsn;
    written++;
    if (written >= nextReport) {
      nextReport += total / 4;
      const rss = fleet.nodes.map((node) => rssBreakdown(fleet.pid(node.id))).join(' | ');
      console.log(`  ${((written * recordBytes) / 1024 / 1024).toFixed(0)} MB written: storage node RSS (anonymous + lmdb map) ${rss}`);
    }
    if (written % 64 === 0) {
      inFlight.push(connection.commit(last).then(() => void (client.retentionLsn = client.vdl)));
      if (inFlight.length > 32) await inFlight.shift();
    }
  }
  await connection.commit(last);
  await Promise.all(inFlight);
  const seconds = (Date.now() - started) / 1000;
  console.log(`\nwrote a ${megabytes} MB volume (${total} records of ${recordBytes} bytes) in ${seconds.toFixed(1)} s: ${(megabytes / seconds).toFixed(1)} MB/s durable on a write quorum`);
  // Let coalescing and GC catch up before reading the high-water marks.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  console.log('peak RSS per storage node (VmHWM):');
  for (const node of fleet.nodes) {
    const pid = fleet.pid(node.id);
    const diskMb = directoryBytes(node.dir) / 1024 / 1024;
    const hotLogMb = directoryBytes(path.join(node.dir, 'hot-log')) / 1024 / 1024;
    console.log(`  node ${node.id} (${node.zone}): peak RSS ${peakRssMb(pid).toFixed(0)} MB (now ${rssBreakdown(pid)} anonymous + lmdb map), on disk ${diskMb.toFixed(0)} MB (hot log ${hotLogMb.toFixed(0)} MB)`);
  }
}

function directoryBytes(directory: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    total += entry.isDirectory() ? directoryBytes(full) : fs.statSync(full).size;
  }
  return total;
}

const format = (value: number): string => value.toFixed(value < 10 ? 2 : 0);

async function main(): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-bench-'));
  console.log(`bench/storage: ${RECORD_BYTES}-byte records, ${SAMPLES} latency samples, ${SECONDS} s per throughput run, ${os.cpus().length} cores`);
  const rows: string[] = [];
  try {
    const floor = ONLY_VOLUME ? undefined : await FloorQuorum.start(scratch);
    try {
      for (const groupCommit of ONLY_VOLUME ? [] : [false, true]) {
        const baselineLog = new LocalLog(path.join(scratch, `baseline-${groupCommit}.log`), groupCommit);
        const baseline = await latency(baselineLog);
        const quorum = await withFleet(groupCommit, (connection) => latency(new QuorumCommitter(connection)));
        const bare = await latency(floor!);
        rows.push(
          `latency, group commit ${groupCommit ? 'on ' : 'off'} | quorum p50 ${format(quorum.p50)} ms p99 ${format(quorum.p99)} ms | local fdatasync p50 ${format(baseline.p50)} ms p99 ${format(baseline.p99)} ms | ratio p50 ${(quorum.p50 / baseline.p50).toFixed(2)}x p99 ${(quorum.p99 / baseline.p99).toFixed(2)}x | floor p50 ${format(bare.p50)} ms (${(bare.p50 / baseline.p50).toFixed(2)}x)`,
        );
        console.log(rows[rows.length - 1]);
        baselineLog.close();
      }
      await withFleet(true, async (connection) => {
        const committer = new QuorumCommitter(connection);
        for (const concurrency of ONLY_VOLUME ? [] : [1, 8, 64]) {
          const baselineLog = new LocalLog(path.join(scratch, `throughput-${concurrency}.log`), true);
          const baseline = await throughput(baselineLog, concurrency);
          baselineLog.close();
          const quorum = await throughput(committer, concurrency);
          const bare = await throughput(floor!, concurrency);
          rows.push(
            `throughput, ${String(concurrency).padStart(2)} committers | quorum ${format(quorum.recordsPerSecond)} records/s ${format(quorum.megabytesPerSecond)} MB/s | local fdatasync ${format(baseline.recordsPerSecond)} records/s ${format(baseline.megabytesPerSecond)} MB/s | ratio ${(quorum.recordsPerSecond / baseline.recordsPerSecond).toFixed(2)}x | floor ${format(bare.recordsPerSecond)} records/s (${(bare.recordsPerSecond / baseline.recordsPerSecond).toFixed(2)}x)`,
          );
          console.log(rows[rows.length - 1]);
        }
      });
    } finally {
      await floor?.stop();
    }
    // The writer may run 2048 LSNs (14 MB of 7 KB records) ahead of the VDL: what a node
    // holds in memory is bounded by that and its own limits, not by the volume's size.
    if (VOLUME_MB > 0) await withFleet(true, (connection, fleet) => writeVolume(connection, fleet, VOLUME_MB), 2048n);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(`bench/storage: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
