export * from './types.js';
export * from './assert.js';
export * from './checksum.js';
export * from './random.js';
export * from './limits.js';
export * from './errors.js';
export * from './json.js';
export * from './text.js';
