export * from './redo.js';
