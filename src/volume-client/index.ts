export * from './volume-client.js';
export { LsnQueue } from './lsn-queue.js';
export * from './process.js';
