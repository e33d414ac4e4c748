// The node's hot log: one sequence of append-only files shared by all its segments, so
// that one fdatasync makes a whole group of writes durable (group commit).
//
// Frame on disk: u32 frameBytes | u32 checksum(rest) | u8 type | u16 segmentBytes | segment
// | payload. Type 1 payload: one redo record. Type 2 payload: a segment's control state
// (JSON). Type 4: the segment was dropped (no payload). Replay stops at the first frame that does not check out in a file: what follows
// a torn write was never acknowledged, because acknowledgement waits for the sync.
//
// State machine of one flush:  idle --flush()--> appending --append ok--> syncing
//   --sync ok--> idle (callbacks run with no error)
//   --append or sync error--> idle (callbacks run with the error; the file is abandoned
//     and later frames go to a new file, so garbage never sits before acknowledged data)

import { assert, checksum, concatBytes, nameBytes } from '../common/index.js';
import type { DiskCallback, LogDisk } from './environment.js';

export const enum LogFrameType {
  Record = 1,
  Control = 2,
  /** Ends every flushed group: frames before a commit frame were synced and may be acknowledged. */
  Commit = 3,
  /** The segment was dropped with its volume (empty payload): replay forgets it. */
  Drop = 4,
}

export interface LogFrame {
  type: LogFrameType;
  segment: string;
  payload: Uint8Array;
}

interface PendingAppend {
  bytes: Uint8Array;
  frameCount: number;
  done: (error: Error | undefined, file: string) => void;
}

export interface LogWriterOptions {
  groupCommit: boolean;
  fileBytesMax: number;
  queueMax: number;
  queueBytesMax: number;
  /** Deliberate bug for the simulator's self-test: acknowledge before the sync. */
  acknowledgeBeforeSync?: boolean;
}

const textDecoder = new TextDecoder();

export function encodeLogFrame(frame: LogFrame): Uint8Array {
  return encodeLogFrames(frame.type, frame.segment, [frame.payload]);
}

/** Frames of one type and segment, one per payload, back to back in one buffer. */
export function encodeLogFrames(type: LogFrameType, segment: string, payloads: readonly Uint8Array[]): Uint8Array {
  const segmentBytes = nameBytes(segment);
  let total = 0;
  for (const payload of payloads) total += 11 + segmentBytes.length + payload.length;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const payload of payloads) {
    const frameBytes = 11 + segmentBytes.length + payload.length;
    view.setUint32(at, frameBytes, true);
    view.setUint8(at + 8, type);
    view.setUint16(at + 9, segmentBytes.length, true);
    bytes.set(segmentBytes, at + 11);
    bytes.set(payload, at + 11 + segmentBytes.length);
    view.setUint32(at + 4, checksum(bytes, at + 8, at + frameBytes), true);
    at += frameBytes;
  }
  return bytes;
}

function frameAt(bytes: Uint8Array, view: DataView, at: number): LogFrame | undefined {
  if (at + 11 > bytes.length) return undefined;
  const total = view.getUint32(at, true);
  if (total < 11 || at + total > bytes.length) return undefined;
  if (checksum(bytes, at + 8, at + total) !== view.getUint32(at + 4, true)) return undefined;
  const segmentBytes = view.getUint16(at + 9, true);
  if (11 + segmentBytes > total) return undefined;
  return {
    type: view.getUint8(at + 8) as LogFrameType,
    segment: textDecoder.decode(bytes.subarray(at + 11, at + 11 + segmentBytes)),
    payload: bytes.slice(at + 11 + segmentBytes, at + total),
  };
}

/**
 * Decodes every intact frame of a file and stops at the first torn or corrupt one.
 * A bad frame followed later by a valid commit frame cannot be a torn write (a torn write
 * only ever affects what came after the last sync): it is corruption of acknowledged data,
 * reported as `corrupt` so the node repairs its segments from peers.
 */
export function decodeLogFile(bytes: Uint8Array): { frames: LogFrame[]; validBytes: number; damaged: boolean; corrupt: boolean } {
  const frames: LogFrame[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  for (;;) {
    const frame = frameAt(bytes, view, at);
    if (frame === undefined) break;
    if (frame.type !== LogFrameType.Commit) frames.push(frame);
    at += view.getUint32(at, true);
  }
  const damaged = at !== bytes.length;
  let corrupt = false;
  for (let probe = at + 1; damaged && probe + 11 <= bytes.length; probe++) {
    if (frameAt(bytes, view, probe)?.type === LogFrameType.Commit) {
      corrupt = true;
      break;
    }
  }
  return { frames, validBytes: at, damaged, corrupt };
}

export function logFileName(sequence: number): string {
  return `hot-log-${String(sequence).padStart(10, '0')}.bin`;
}

export function logFileSequence(name: string): number {
  const match = /^hot-log-(\d+)\.bin$/.exec(name);
  return match ? Number(match[1]) : -1;
}

export class LogWriter {
  private queue: PendingAppend[] = [];
  private queuedBytes = 0;
  private flushing = false;
  private currentFile: string;
  private currentBytes = 0;
  /** Frames in a file not yet made redundant by the page store; files at 0 may go. */
  private readonly liveFrames = new Map<string, number>();

  constructor(
    private readonly disk: LogDisk,
    private readonly options: LogWriterOptions,
    nextSequence: number,
  ) {
    this.currentFile = logFileName(nextSequence);
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Registers frames found at start-up so their files are kept until they are redundant. */
  adoptReplayed(file: string, frameCount: number): void {
    this.liveFrames.set(file, (this.liveFrames.get(file) ?? 0) + frameCount);
  }

  /** Queues frames; done runs once they are durable (or failed). Returns false when full. */
  append(frames: Uint8Array[], done: (error: Error | undefined, file: string) => void): boolean {
    return this.appendEncoded(frames.length === 1 ? frames[0]! : concatBytes(frames), frames.length, done);
  }

  /** Like append, for `frameCount` frames already back to back in `bytes` (encodeLogFrames). */
  appendEncoded(bytes: Uint8Array, frameCount: number, done: (error: Error | undefined, file: string) => void): boolean {
    if (this.queue.length >= this.options.queueMax || this.queuedBytes + bytes.length > this.options.queueBytesMax) return false;
    this.queuedBytes += bytes.length;
    this.queue.push({ bytes, frameCount, done });
    this.flush();
    return true;
  }

  /** A frame of `file` is now also in the page store (or was discarded). */
  release(file: string, frameCount = 1): void {
    const live = (this.liveFrames.get(file) ?? 0) - frameCount;
    assert(live >= 0, `log file ${file} released more frames than it holds`);
    this.liveFrames.set(file, live);
    if (live === 0 && file !== this.currentFile) {
      this.liveFrames.delete(file);
      this.disk.remove(file, () => undefined);
    }
  }

  private flush(): void {
    if (this.flushing || this.queue.length === 0) return;
    const batch = this.options.groupCommit ? this.queue.splice(0, this.queue.length) : this.queue.splice(0, 1);
    for (const entry of batch) this.queuedBytes -= entry.bytes.length;
    const commit = encodeLogFrame({ type: LogFrameType.Commit, segment: '', payload: new Uint8Array(0) });
    let total = commit.length;
    for (const entry of batch) total += entry.bytes.length;
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const entry of batch) {
      bytes.set(entry.bytes, at);
      at += entry.bytes.length;
    }
    bytes.set(commit, at);
    const file = this.currentFile;
    this.flushing = true;
    // Counted before the write, so that no rotation can delete the file under these frames.
    let frameCount = 0;
    for (const entry of batch) frameCount += entry.frameCount;
    this.liveFrames.set(file, (this.liveFrames.get(file) ?? 0) + frameCount);
    const finish: DiskCallback = (error) => {
      this.flushing = false;
      if (error) {
        // Nothing of this batch was acknowledged, so nothing will ever release its frames.
        this.liveFrames.set(file, (this.liveFrames.get(file) ?? 0) - frameCount);
        this.abandonCurrentFile();
      }
      else {
        this.currentBytes += total;
        if (this.currentBytes >= this.options.fileBytesMax) this.abandonCurrentFile();
      }
      if (!this.options.acknowledgeBeforeSync || error) for (const entry of batch) entry.done(error, file);
      this.flush();
    };
    this.disk.append(file, bytes, (appendError) => {
      if (appendError) return finish(appendError);
      if (this.options.acknowledgeBeforeSync) for (const entry of batch) entry.done(undefined, file);
      this.disk.sync(file, finish);
    });
  }

  private abandonCurrentFile(): void {
    const previous = this.currentFile;
    this.currentFile = logFileName(logFileSequence(previous) + 1);
    this.currentBytes = 0;
    if ((this.liveFrames.get(previous) ?? 0) === 0) {
      this.liveFrames.delete(previous);
      this.disk.remove(previous, () => undefined);
    }
  }
}
