// A writer process for the kill tests and benchmarks: opens the volume, streams one-record
// mini-transactions, and prints a JSON line for each commit the volume acknowledged.
// Record i writes 16 bytes into slot (page, slot) that no other record touches, so a
// reader can tell exactly which records are visible:
//   page = i mod pageCount, slot = floor(i / pageCount); bytes = u64 lsn | u64 i + 1.
//
//   node stream-writer.js --metadata FILE --peers 1=host:port,... [--records N] [--in-flight K]

import { pageId, StorageError, type Lsn } from '../common/index.js';
import { RedoKind } from '../page/index.js';
import { parsePeers } from '../storage-node/process.js';
import { connectVolume } from './process.js';
import { SLOT_BYTES, slotBytes, slotOf } from './slots.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flag = (name: string, fallback?: string): string => {
    const at = argv.indexOf(`--${name}`);
    const value = at >= 0 ? argv[at + 1] : fallback;
    if (value === undefined) throw new Error(`--${name} is required`);
    return value;
  };
  const connection = connectVolume({ name: `stream-writer-${process.pid}`, metadataPath: flag('metadata'), nodes: parsePeers(flag('peers')) });
  await connection.open();
  const client = connection.client;
  const records = Number(flag('records', '1000000'));
  const inFlightMax = Number(flag('in-flight', '16'));
  const pageCount = client.pageCount;
  console.log(JSON.stringify({ open: true, epoch: client.epoch, vdl: String(client.vdl) }));
  let next = 0;
  let inFlight = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (inFlight < inFlightMax && next < records && client.canAppend()) {
        const index = next++;
        const { page, slot } = slotOf(index, pageCount);
        // The LSN is only known once allocated: write a placeholder and patch it in place.
        const data = slotBytes(0n, index);
        const [record] = client.writeMiniTransaction([{ pageId: pageId(page), kind: RedoKind.Write, offset: slot * SLOT_BYTES, data }]);
        new DataView(record!.data.buffer, record!.data.byteOffset).setBigUint64(0, record!.lsn, true);
        inFlight++;
        client.commit(record!.lsn, (error?: StorageError) => {
          inFlight--;
          if (error) return reject(error);
          process.stdout.write(`${JSON.stringify({ ack: String(record!.lsn), index, page, slot })}\n`);
          if (next >= records && inFlight === 0) resolve();
          else pump();
        });
      }
      if (inFlight === 0 && next < records) setTimeout(pump, 1);
    };
    pump();
  });
  await connection.close();
}

main().catch((error: Error) => {
  console.error(`stream-writer: ${error.message}`);
  process.exit(1);
});
