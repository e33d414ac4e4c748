// Functions that describe catalog objects by OID, as psql's \d asks for them:
// pg_get_indexdef, pg_get_constraintdef, pg_get_expr, format_type, and the casts of an OID
// to regtype and regnamespace (their text is the object's name). Those that read the
// catalog run at execution time through the statement's transaction (Env.catalog), so they
// see what the statement's snapshot sees.

import type { Transaction } from '../engine/database.js';
import { Oid } from './oid.js';
import { coerce, type Compiled, type Env } from './expr.js';
import { columnType, formatType, type Datum } from './typesys.js';

/** What catalog-reading functions need at execution time. */
export interface CatalogLookup {
  indexDef(oid: number): Promise<string | null>;
  constraintDef(oid: number): Promise<string | null>;
  namespaceName(oid: number): Promise<string | null>;
}

const NAMESPACE_NAMES = new Map([[11, 'pg_catalog'], [2200, 'public'], [13000, 'information_schema']]);

const quoteIdent = (name: string): string => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`);

/** The catalog as the given transaction sees it. */
export function catalogLookup(transaction: () => Transaction): CatalogLookup {
  return {
    async indexDef(oid) {
      for (const table of await transaction().allTables()) {
        const index = table.indexes.find((each) => each.id === oid);
        if (index === undefined) continue;
        const columns = index.columns.map((column) => quoteIdent(table.columns[column]!.name)).join(', ');
        return `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(index.name)} ON ${quoteIdent(table.schema)}.${quoteIdent(table.name)} USING btree (${columns})`;
      }
      return null;
    },
    async constraintDef(oid) {
      const constraint = (await transaction().constraints()).find((each) => each.oid === oid);
      if (constraint === undefined) return null;
      return constraint.kind === 'c' ? `CHECK (${constraint.definition})` : constraint.definition;
    },
    async namespaceName(oid) {
      const known = NAMESPACE_NAMES.get(oid);
      if (known !== undefined) return known;
      return (await transaction().schemas()).find((schema) => schema.oid === oid)?.name ?? null;
    },
  };
}

/** A call whose result comes from the catalog: asynchronous, never folded to a constant. */
function catalogCall(args: Compiled[], type: number, op: (catalog: CatalogLookup, ...values: Datum[]) => Promise<Datum>): Compiled {
  return {
    type,
    typmod: -1,
    async: true,
    fn: async (row: Datum[], env: Env) => {
      const values: Datum[] = [];
      for (const arg of args) values.push(await arg.fn(row, env));
      if (values[0] === null) return null;
      if (env.catalog === undefined) return null;
      return op(env.catalog, ...values);
    },
  };
}

/** The catalog-describing functions; undefined when `name` is not one of them. */
export function catalogFunction(name: string, args: Compiled[]): Compiled | undefined {
  const oidArg = (): Compiled => coerce(args[0]!, Oid.oid);
  switch (name) {
    case 'pg_get_indexdef':
      if (args.length !== 1 && args.length !== 3) return undefined;
      return catalogCall([oidArg()], Oid.text, (catalog, oid) => catalog.indexDef(oid as number));
    case 'pg_get_constraintdef':
      if (args.length !== 1 && args.length !== 2) return undefined;
      return catalogCall([oidArg()], Oid.text, (catalog, oid) => catalog.constraintDef(oid as number));
    case 'pg_get_expr':
      // Boreal keeps expressions (defaults, checks) as SQL text: the "node tree" is the text.
      if (args.length !== 2 && args.length !== 3) return undefined;
      return { ...coerce(args[0]!, Oid.text), type: Oid.text };
    case 'format_type':
      if (args.length !== 2) return undefined;
      return catalogCall([oidArg(), coerce(args[1]!, Oid.int4)], Oid.text, async (_catalog, oid, typmod) => formatType(oid as number, (typmod as number | null) ?? -1));
    case 'pg_get_statisticsobjdef_columns':
      // No extended statistics objects exist.
      if (args.length !== 1) return undefined;
      return catalogCall([oidArg()], Oid.text, async () => null);
    case 'pg_relation_is_publishable':
      // No publications exist.
      if (args.length !== 1) return undefined;
      return catalogCall([oidArg()], Oid.bool, async () => false);
    default:
      return undefined;
  }
}

/** oid::regnamespace (and ::regtype), whose text is the name; undefined for other targets. */
export function regCast(target: string, arg: Compiled): Compiled | undefined {
  if (target === 'regtype' && arg.type === Oid.unknown && arg.constant !== undefined) {
    // 'int4'::regtype: a type name, printed as format_type prints it.
    const text = arg.constant.value;
    return { type: Oid.text, typmod: -1, async: false, fn: () => (text === null ? null : formatType(columnType(text as string).type, -1)), constant: { value: text === null ? null : formatType(columnType(text as string).type, -1) } };
  }
  if (target === 'regtype') return catalogCall([coerce(arg, Oid.oid)], Oid.text, async (_catalog, oid) => formatType(oid as number, -1));
  if (target === 'regnamespace') return catalogCall([coerce(arg, Oid.oid)], Oid.text, (catalog, oid) => catalog.namespaceName(oid as number));
  return undefined;
}
