export * from './codec.js';
export * from './connection.js';
export * from './scram.js';
export * from './server.js';
export * from './session.js';
