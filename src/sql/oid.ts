// Type OIDs the SQL layer names directly (PostgreSQL's, so clients decode them as usual);
// the registry in ./types/types.ts is their one definition.

export { TypeOids as Oid, type TypeOid } from './types/types.js';
