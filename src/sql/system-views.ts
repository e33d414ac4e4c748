// pg_catalog and information_schema as virtual tables computed from Boreal's catalog at
// execution time (so they are as transactional as the catalog itself). Only the columns
// clients commonly read are present; the rest of a query against them gets 42703.

import type { TableDef, Transaction } from '../engine/database.js';
import { Oid, type TypeOid } from './oid.js';
import type { ExecContext, ExplainLine, PlanNode } from './exec.js';
import type { Env } from './expr.js';
import { arrayOf, columnType, typeCatalog, type Datum } from './typesys.js';
import { sessionsOf } from './session.js';

export interface VirtualTable {
  columns: Array<{ name: string; type: TypeOid }>;
  plan(): PlanNode;
}

type Producer = (tx: Transaction) => Promise<Datum[][]>;

const NAMESPACE_OID: Record<string, number> = { pg_catalog: 11, public: 2200, information_schema: 13000 };

function virtual(name: string, columns: Array<[string, TypeOid]>, produce: Producer): VirtualTable {
  return {
    columns: columns.map(([column, type]) => ({ name: column, type })),
    plan: () => new VirtualScanNode(name, columns.length, produce),
  };
}

class VirtualScanNode implements PlanNode {
  constructor(
    private readonly name: string,
    readonly width: number,
    private readonly produce: Producer,
  ) {}

  async *rows(ctx: ExecContext, _env: Env): AsyncGenerator<Datum[]> {
    yield* await this.produce(ctx.tx);
  }

  explain(): ExplainLine {
    return { title: `Function Scan on ${this.name}` };
  }
}

async function schemaOids(tx: Transaction): Promise<Map<string, number>> {
  const map = new Map<string, number>(Object.entries(NAMESPACE_OID));
  for (const schema of await tx.schemas()) if (!map.has(schema.name)) map.set(schema.name, schema.oid);
  return map;
}

async function userTables(tx: Transaction): Promise<TableDef[]> {
  return (await tx.allTables()).filter((table) => !table.name.startsWith('boreal_'));
}

const TABLES: Record<string, () => VirtualTable> = {
  pg_namespace: () =>
    virtual('pg_namespace', [['oid', Oid.oid], ['nspname', Oid.name], ['nspowner', Oid.oid]], async (tx) => [...(await schemaOids(tx))].map(([name, oid]) => [oid, name, 10])),
  pg_class: () =>
    virtual(
      'pg_class',
      [
        ['oid', Oid.oid], ['relname', Oid.name], ['relnamespace', Oid.oid], ['relkind', Oid.bpchar], ['relowner', Oid.oid], ['relam', Oid.oid], ['reltuples', Oid.float4],
        ['relhasindex', Oid.bool], ['relpersistence', Oid.bpchar], ['relnatts', Oid.int2], ['relchecks', Oid.int2], ['relhasrules', Oid.bool], ['relhastriggers', Oid.bool],
        ['relrowsecurity', Oid.bool], ['relforcerowsecurity', Oid.bool], ['relispartition', Oid.bool], ['reltablespace', Oid.oid], ['reloftype', Oid.oid], ['relreplident', Oid.bpchar], ['reltoastrelid', Oid.oid], ['relpartbound', Oid.text],
      ],
      async (tx) => {
        const schemas = await schemaOids(tx);
        const tables = new Map((await userTables(tx)).map((table) => [table.id, table]));
        const rows: Datum[][] = [];
        for (const relation of await tx.relations()) {
          const table = tables.get(relation.oid);
          const am = relation.kind === 'r' ? 2 : relation.kind === 'i' ? 403 : 0;
          rows.push([relation.oid, relation.name, schemas.get(relation.schema) ?? 2200, relation.kind, 10, am, -1, (table?.indexes.length ?? 0) > 0, 'p', table?.columns.length ?? 0, table?.checks.length ?? 0, false, false, false, false, false, 0, 0, 'd', 0, null]);
        }
        return rows;
      },
    ),
  pg_index: () =>
    virtual(
      'pg_index',
      [['indexrelid', Oid.oid], ['indrelid', Oid.oid], ['indnatts', Oid.int2], ['indisunique', Oid.bool], ['indisprimary', Oid.bool], ['indisclustered', Oid.bool], ['indisvalid', Oid.bool], ['indisready', Oid.bool], ['indislive', Oid.bool], ['indisreplident', Oid.bool]],
      async (tx) => {
        const rows: Datum[][] = [];
        for (const table of await userTables(tx)) for (const index of table.indexes) rows.push([index.id, table.id, index.columns.length, index.unique, index.primary, false, true, true, true, false]);
        return rows;
      },
    ),
  pg_auth_members: () => virtual('pg_auth_members', [['roleid', Oid.oid], ['member', Oid.oid], ['grantor', Oid.oid], ['admin_option', Oid.bool]], async () => []),
  pg_attribute: () =>
    virtual(
      'pg_attribute',
      [['attrelid', Oid.oid], ['attname', Oid.name], ['atttypid', Oid.oid], ['attnum', Oid.int2], ['attnotnull', Oid.bool], ['atttypmod', Oid.int4], ['attisdropped', Oid.bool], ['atthasdef', Oid.bool], ['attcollation', Oid.oid], ['attidentity', Oid.bpchar], ['attgenerated', Oid.bpchar]],
      async (tx) => {
        const rows: Datum[][] = [];
        for (const table of await userTables(tx)) {
          for (const [index, column] of table.columns.entries()) {
            const { type, typmod } = columnType(column.type);
            rows.push([table.id, column.name, type, index + 1, column.notNull || (table.primaryKey?.includes(index) ?? false), typmod, false, column.default !== null, 0, '', '']);
          }
        }
        return rows;
      },
    ),
  pg_type: () =>
    virtual('pg_type', [['oid', Oid.oid], ['typname', Oid.name], ['typnamespace', Oid.oid], ['typlen', Oid.int2], ['typtype', Oid.bpchar], ['typcategory', Oid.bpchar], ['typelem', Oid.oid], ['typarray', Oid.oid], ['typbasetype', Oid.oid], ['typrelid', Oid.oid], ['typcollation', Oid.oid]], async () =>
      typeCatalog().map((type) => [type.oid, type.name, 11, type.length, 'b', type.category, type.element, type.array, 0, 0, 0]),
    ),
  pg_database: () =>
    virtual(
      'pg_database',
      [['oid', Oid.oid], ['datname', Oid.name], ['datdba', Oid.oid], ['encoding', Oid.int4], ['datlocprovider', Oid.bpchar], ['datistemplate', Oid.bool], ['datallowconn', Oid.bool], ['datconnlimit', Oid.int4], ['datcollate', Oid.text], ['datctype', Oid.text], ['daticulocale', Oid.text], ['datacl', 1009]],
      async () => [[5, 'postgres', 10, 6, 'c', false, true, -1, 'C', 'C', null, null]],
    ),
  pg_roles: () =>
    virtual(
      'pg_roles',
      [['oid', Oid.oid], ['rolname', Oid.name], ['rolsuper', Oid.bool], ['rolinherit', Oid.bool], ['rolcreaterole', Oid.bool], ['rolcreatedb', Oid.bool], ['rolcanlogin', Oid.bool], ['rolreplication', Oid.bool], ['rolconnlimit', Oid.int4], ['rolvaliduntil', Oid.timestamptz], ['rolbypassrls', Oid.bool]],
      async () => [[10, 'postgres', true, true, true, true, true, true, -1, null, true]],
    ),
  pg_stat_activity: () =>
    virtual(
      'pg_stat_activity',
      [['datname', Oid.name], ['pid', Oid.int4], ['usename', Oid.name], ['application_name', Oid.text], ['state', Oid.text], ['query', Oid.text], ['wait_event_type', Oid.text], ['wait_event', Oid.text], ['backend_type', Oid.text]],
      async (tx) =>
        [...sessionsOf(tx.db)].map((session) => [
          session.options.database,
          session.options.processId,
          session.options.user,
          session.settings.get('application_name'),
          session.activity.state,
          session.activity.query,
          session.waitingForLock ? 'Lock' : null,
          session.waitingForLock ? 'tuple' : null,
          'client backend',
        ]),
    ),
  pg_partitioned_table: () => virtual('pg_partitioned_table', [['partrelid', Oid.oid], ['partstrat', Oid.bpchar], ['partnatts', Oid.int2]], async () => []),
  pg_inherits: () => virtual('pg_inherits', [['inhrelid', Oid.oid], ['inhparent', Oid.oid], ['inhseqno', Oid.int4], ['inhdetachpending', Oid.bool]], async () => []),
  pg_attrdef: () =>
    virtual('pg_attrdef', [['oid', Oid.oid], ['adrelid', Oid.oid], ['adnum', Oid.int2], ['adbin', Oid.text]], async (tx) => {
      // Defaults are kept as SQL text; pg_get_expr(adbin, adrelid) returns it as it is.
      const rows: Datum[][] = [];
      for (const table of await userTables(tx)) {
        for (const [index, column] of table.columns.entries()) if (column.default !== null) rows.push([0, table.id, index + 1, column.default]);
      }
      return rows;
    }),
  pg_constraint: () =>
    virtual(
      'pg_constraint',
      [['oid', Oid.oid], ['conname', Oid.name], ['connamespace', Oid.oid], ['contype', Oid.bpchar], ['condeferrable', Oid.bool], ['condeferred', Oid.bool], ['convalidated', Oid.bool], ['conrelid', Oid.oid], ['contypid', Oid.oid], ['conindid', Oid.oid], ['confrelid', Oid.oid], ['conkey', arrayOf(Oid.int2)]],
      async (tx) => {
        const schemas = await schemaOids(tx);
        const tables = new Map((await userTables(tx)).map((table) => [table.id, table]));
        const rows: Datum[][] = [];
        for (const constraint of await tx.constraints()) {
          const table = tables.get(constraint.relation);
          if (table === undefined) continue;
          // A primary key or unique constraint is enforced by the index of the same name.
          const index = table.indexes.find((each) => each.name === constraint.name);
          rows.push([constraint.oid, constraint.name, schemas.get(table.schema) ?? 2200, constraint.kind, false, false, true, table.id, 0, index?.id ?? 0, 0, index === undefined ? null : index.columns.map((column) => column + 1)]);
        }
        return rows;
      },
    ),
  pg_collation: () => virtual('pg_collation', [['oid', Oid.oid], ['collname', Oid.name], ['collnamespace', Oid.oid]], async () => [[100, 'default', 11], [950, 'C', 11]]),
  pg_policy: () =>
    virtual('pg_policy', [['oid', Oid.oid], ['polname', Oid.name], ['polrelid', Oid.oid], ['polcmd', Oid.bpchar], ['polpermissive', Oid.bool], ['polroles', arrayOf(Oid.oid)], ['polqual', Oid.text], ['polwithcheck', Oid.text]], async () => []),
  pg_statistic_ext: () =>
    virtual('pg_statistic_ext', [['oid', Oid.oid], ['stxrelid', Oid.oid], ['stxname', Oid.name], ['stxnamespace', Oid.oid], ['stxkind', arrayOf(Oid.bpchar)], ['stxstattarget', Oid.int4]], async () => []),
  pg_publication: () => virtual('pg_publication', [['oid', Oid.oid], ['pubname', Oid.name], ['puballtables', Oid.bool]], async () => []),
  pg_publication_namespace: () => virtual('pg_publication_namespace', [['oid', Oid.oid], ['pnpubid', Oid.oid], ['pnnspid', Oid.oid]], async () => []),
  pg_publication_rel: () => virtual('pg_publication_rel', [['oid', Oid.oid], ['prpubid', Oid.oid], ['prrelid', Oid.oid], ['prqual', Oid.text], ['prattrs', arrayOf(Oid.int2)]], async () => []),
  pg_am: () => virtual('pg_am', [['oid', Oid.oid], ['amname', Oid.name], ['amtype', Oid.bpchar]], async () => [[2, 'heap', 't'], [403, 'btree', 'i']]),
  pg_tables: () =>
    virtual('pg_tables', [['schemaname', Oid.name], ['tablename', Oid.name], ['tableowner', Oid.name], ['hasindexes', Oid.bool]], async (tx) =>
      (await userTables(tx)).map((table) => [table.schema, table.name, 'postgres', table.indexes.length > 0]),
    ),
};

const INFORMATION_SCHEMA: Record<string, () => VirtualTable> = {
  tables: () =>
    virtual('tables', [['table_catalog', Oid.name], ['table_schema', Oid.name], ['table_name', Oid.name], ['table_type', Oid.varchar]], async (tx) =>
      (await userTables(tx)).map((table) => ['postgres', table.schema, table.name, 'BASE TABLE']),
    ),
  columns: () =>
    virtual(
      'columns',
      [['table_catalog', Oid.name], ['table_schema', Oid.name], ['table_name', Oid.name], ['column_name', Oid.name], ['ordinal_position', Oid.int4], ['column_default', Oid.varchar], ['is_nullable', Oid.varchar], ['data_type', Oid.varchar]],
      async (tx) => {
        const rows: Datum[][] = [];
        for (const table of await userTables(tx)) {
          for (const [index, column] of table.columns.entries()) {
            const notNull = column.notNull || (table.primaryKey?.includes(index) ?? false);
            rows.push(['postgres', table.schema, table.name, column.name, index + 1, column.default, notNull ? 'NO' : 'YES', column.type.replace(/\(.*\)/, '')]);
          }
        }
        return rows;
      },
    ),
  schemata: () =>
    virtual('schemata', [['catalog_name', Oid.name], ['schema_name', Oid.name], ['schema_owner', Oid.name]], async (tx) => [...(await schemaOids(tx)).keys()].map((name) => ['postgres', name, 'postgres'])),
};

/** A system table by (optional) schema and name, if it is one. */
export function virtualTable(schema: string | undefined, name: string): VirtualTable | undefined {
  if (schema === undefined || schema === 'pg_catalog') {
    const make = TABLES[name];
    if (make !== undefined) return make();
  }
  if (schema === 'information_schema') return INFORMATION_SCHEMA[name]?.();
  return undefined;
}
