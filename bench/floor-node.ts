// The transport-and-disk floor for bench/storage: a process that does only what a storage
// node must do at the least for a quorum write, and nothing else. It appends every frame
// it receives to one file, fdatasyncs once per event-loop step (group commit, as the
// storage node does), then acknowledges each frame with its 4-byte sequence number. No
// checksums, no segments, no page store: six of these on loopback show what this machine
// allows a 6-process quorum on one disk, whatever the storage code does.
//
// Frame in: u32 length | u32 sequence | payload. Reply: u32 sequence per frame.
// Prints its port on stdout; exits when stdin closes (its parent is gone).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const directory = fs.mkdtempSync(path.join(process.argv[2] ?? os.tmpdir(), 'floor-'));
const descriptor = fs.openSync(path.join(directory, 'log'), 'a');
const pending: Array<{ socket: net.Socket; bytes: Buffer[]; sequences: number[] }> = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  const batch = pending.splice(0);
  for (const entry of batch) for (const bytes of entry.bytes) fs.writeSync(descriptor, bytes);
  fs.fdatasyncSync(descriptor);
  for (const entry of batch) {
    const reply = Buffer.alloc(4 * entry.sequences.length);
    entry.sequences.forEach((sequence, index) => reply.writeUInt32LE(sequence, index * 4));
    entry.socket.write(reply);
  }
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let buffered: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const entry = { socket, bytes: [] as Buffer[], sequences: [] as number[] };
    while (buffered.length >= 8 && buffered.length >= 8 + buffered.readUInt32LE(0)) {
      const length = buffered.readUInt32LE(0);
      entry.sequences.push(buffered.readUInt32LE(4));
      entry.bytes.push(buffered.subarray(0, 8 + length));
      buffered = buffered.subarray(8 + length);
    }
    if (entry.sequences.length === 0) return;
    pending.push(entry);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
  socket.on('error', () => undefined);
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => {
  fs.closeSync(descriptor);
  fs.rmSync(directory, { recursive: true, force: true });
  process.exit(0);
});
