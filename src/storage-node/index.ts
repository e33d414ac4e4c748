export * from './environment.js';
export * from './storage-node.js';
export { Segment, survivesHistory, mergeHistory } from './segment.js';
export type { SegmentControl, SegmentMeta } from './segment.js';
