// What the engine needs from the volume: read a page at an LSN, append a mini-transaction's
// patches as redo, and know (and wait for) the durable point. The production adapter
// wraps a VolumeConnection; tests may supply their own.

import type { Lsn, PageId } from '../common/index.js';
import type { RedoRecord } from '../page/index.js';
import type { PagePatch, VolumeConnection } from '../volume-client/index.js';

export interface PageStore {
  /** Pages in the volume: valid page ids are 0 .. pageCount - 1. */
  readonly pageCount: number;
  /** Every redo record at or below this LSN is durable (the VDL). */
  durableLsn(): Lsn;
  /** The page as of `atLsn` (at most durableLsn()). */
  readPage(pageId: PageId, atLsn: Lsn): Promise<Uint8Array>;
  /** Whether append() of this many records may be called now (the writer stays within the LAL). */
  canAppend(records: number): boolean;
  /** The LSN the next appended record will get. */
  nextLsn(): Lsn;
  /** Appends one mini-transaction; returns the LSN of each patch's record, in order. */
  append(patches: PagePatch[]): Lsn[];
  /** Resolves once durableLsn() >= lsn. */
  waitDurable(lsn: Lsn): Promise<void>;
}

/** `onAppend` sees each mini-transaction's records as appended (a writer streams them to its readers). */
export function volumePageStore(connection: VolumeConnection, onAppend?: (records: RedoRecord[]) => void): PageStore {
  const client = connection.client;
  return {
    pageCount: client.pageCount,
    durableLsn: () => client.vdl,
    readPage: (pageId, atLsn) => connection.readPage(pageId, atLsn),
    canAppend: (records) => client.canAppend(records),
    nextLsn: () => client.lsnToAssign,
    append: (patches) => {
      const records = client.writeMiniTransaction(patches);
      onAppend?.(records);
      return records.map((record) => record.lsn);
    },
    waitDurable: (lsn) => connection.commit(lsn),
  };
}
