// Operating errors: a small set, one per reaction a caller can take.

export type StorageErrorCode =
  | 'fenced' // a newer epoch exists: this writer must stop; nothing it sends will be applied
  | 'commit_unknown_result' // the writer lost its volume before the commit became durable
  | 'back_pressure' // the writer is too far ahead of the VDL; wait and retry
  | 'unavailable' // no segment could serve the request in time
  | 'checksum_mismatch' // bytes failed their checksum; they were not used
  | 'frame_too_large'
  | 'malformed_frame'
  | 'unknown_segment'
  | 'stale_epoch' // the segment has not yet applied the newest truncation
  | 'disk_error' // append or sync failed (disk full, EIO); nothing was acknowledged
  | 'overloaded' // a named limit was reached
  | 'not_readable'; // the segment is not complete at, or no longer keeps, the asked LSN

export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
