export * from './environment.js';
export * from './storage-node.js';
export { Segment, survivesHistory, mergeHistory, nodeOfSegment, groupOfSegment } from './segment.js';
export type { SegmentControl, SegmentMeta } from './segment.js';
