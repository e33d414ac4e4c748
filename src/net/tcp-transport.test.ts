// A malformed or oversized frame closes only the connection that sent it: the storage node
// keeps serving everyone else.

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { queryNodeStatus } from './node-request.js';
import { checksum } from '../common/index.js';
import { Fleet } from '../testing/fleet.js';

function sendAndWaitForClose(port: number, bytes: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5000);
    socket.on('connect', () => socket.write(bytes));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => undefined);
  });
}

test('an oversized or malformed frame closes that connection only; the node keeps serving', { timeout: 60000 }, async () => {
  const fleet = await Fleet.start({ count: 1, groups: 1, pagesPerGroup: 4 });
  try {
    const port = fleet.node(1).port;
    const oversized = new Uint8Array(16);
    new DataView(oversized.buffer).setUint32(0, 0x7fffffff, true);
    assert.equal(await sendAndWaitForClose(port, oversized), true, 'an oversized frame must close the connection');
    // Intact on the wire (its checksum holds) but not a message: an unknown kind.
    const garbage = new Uint8Array(64).fill(0x41);
    new DataView(garbage.buffer).setUint32(0, 64, true);
    new DataView(garbage.buffer).setUint32(4, checksum(garbage, 8), true);
    assert.equal(await sendAndWaitForClose(port, garbage), true, 'a frame that does not parse must close the connection');
    const status = await queryNodeStatus('127.0.0.1', port, 2000);
    assert.ok(status !== undefined, 'the node still answers other connections');
    assert.equal(status.node, 1);
  } finally {
    await fleet.destroy();
  }
});
