// DDL: CREATE/DROP TABLE, INDEX, SCHEMA, SEQUENCE; TRUNCATE; ALTER TABLE ADD COLUMN /
// PRIMARY KEY / UNIQUE / CHECK. Each runs in the session's transaction, so DDL is
// transactional (the engine's catalog is MVCC tables). Column types are stored as
// PostgreSQL's format_type text, defaults and CHECKs as SQL expression text.

import { deparseSync } from './deparse.js';
import { SqlError, type Output } from '../pgwire/session.js';
import type { ColumnDef, TableDef, Transaction } from '../engine/database.js';
import { Oid } from './oid.js';
import type { Node } from './expr.js';
import { columnType, formatType, resolveTypeName } from './typesys.js';
import type { SqlSession } from './session.js';

const nameOf = (node: Node): string => node.String.sval as string;

function relationName(range: Node): { schema: string; name: string } {
  return { schema: (range.schemaname as string | undefined) ?? 'public', name: range.relname as string };
}

export async function runDdl(session: SqlSession, kind: string, body: Node, text: string, out: Output): Promise<string> {
  const tx = session.transaction();
  void text;
  switch (kind) {
    case 'CreateStmt':
      return createTable(tx, body, out);
    case 'IndexStmt':
      return createIndex(tx, body, out);
    case 'DropStmt':
      return drop(tx, body, out);
    case 'CreateSchemaStmt':
      if (body.schemaElts !== undefined) throw new SqlError('0A000', 'CREATE SCHEMA with elements is not supported yet');
      await tx.createSchema(body.schemaname, { ifNotExists: body.if_not_exists === true }).catch((error: { sqlState?: string }) => {
        throw error.sqlState === '42P06' && body.if_not_exists ? undefined : error;
      });
      return 'CREATE SCHEMA';
    case 'CreateSeqStmt':
      return createSequence(tx, body);
    case 'TruncateStmt': {
      for (const relation of body.relations as Node[]) {
        const { schema, name } = relationName(relation.RangeVar);
        const table = await tx.table(name, schema);
        await tx.truncate(table);
      }
      return 'TRUNCATE TABLE';
    }
    case 'AlterTableStmt':
      return alterTable(session, tx, body, out);
    case 'ViewStmt':
      return createView(session, tx, body);
    default:
      throw new SqlError('0A000', `${kind.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()} is not supported yet`);
  }
}

interface ColumnSpec {
  def: ColumnDef;
  primary: boolean;
  unique: boolean;
  checks: string[];
  serial: 'int4' | 'int8' | 'int2' | undefined;
}

function columnSpec(node: Node): ColumnSpec {
  const column = node.ColumnDef;
  const names = (column.typeName.names as Node[]).map(nameOf);
  const last = names[names.length - 1]!.toLowerCase();
  const serial = last === 'serial' || last === 'serial4' ? 'int4' : last === 'bigserial' || last === 'serial8' ? 'int8' : last === 'smallserial' || last === 'serial2' ? 'int2' : undefined;
  const resolved = serial !== undefined ? { type: serial === 'int4' ? Oid.int4 : serial === 'int8' ? Oid.int8 : Oid.int2, typmod: -1 } : resolveTypeName(column.typeName);
  if (column.typeName.arrayBounds !== undefined) throw new SqlError('0A000', 'array columns are not supported yet');
  const spec: ColumnSpec = { def: { name: column.colname, type: formatType(resolved.type, resolved.typmod), notNull: serial !== undefined, default: null }, primary: false, unique: false, checks: [], serial };
  for (const constraint of (column.constraints ?? []) as Node[]) {
    const c = constraint.Constraint;
    switch (c.contype as string) {
      case 'CONSTR_NOTNULL':
        spec.def.notNull = true;
        break;
      case 'CONSTR_NULL':
        break;
      case 'CONSTR_DEFAULT':
        spec.def.default = deparseSync(c.raw_expr);
        break;
      case 'CONSTR_PRIMARY':
        spec.primary = true;
        spec.def.notNull = true;
        break;
      case 'CONSTR_UNIQUE':
        spec.unique = true;
        break;
      case 'CONSTR_CHECK':
        spec.checks.push(deparseSync(c.raw_expr));
        break;
      case 'CONSTR_FOREIGN':
        throw new SqlError('0A000', 'FOREIGN KEY constraints are not supported yet');
      case 'CONSTR_IDENTITY':
      case 'CONSTR_GENERATED':
        throw new SqlError('0A000', 'identity and generated columns are not supported yet');
      default:
        throw new SqlError('0A000', `column constraint ${c.contype} is not supported yet`);
    }
  }
  return spec;
}

async function createTable(tx: Transaction, body: Node, out: Output): Promise<string> {
  const { schema, name } = relationName(body.relation);
  if (body.relation.relpersistence === 't') throw new SqlError('0A000', 'temporary tables are not supported yet');
  if (body.inhRelations !== undefined || body.partspec !== undefined || body.partbound !== undefined) throw new SqlError('0A000', 'inheritance and partitioning are not supported yet');
  const specs: ColumnSpec[] = [];
  let primaryKey: number[] | undefined;
  const unique: Array<{ name?: string; columns: number[] }> = [];
  const checks: Array<{ name?: string; expression: string }> = [];
  const tableConstraints: Node[] = [];
  for (const element of body.tableElts ?? []) {
    if (element.ColumnDef !== undefined) {
      const spec = columnSpec(element);
      if (specs.some((other) => other.def.name === spec.def.name)) throw new SqlError('42701', `column "${spec.def.name}" specified more than once`);
      specs.push(spec);
    } else if (element.Constraint !== undefined) tableConstraints.push(element.Constraint);
    else throw new SqlError('0A000', `table element ${Object.keys(element)[0]} is not supported yet`);
  }
  const position = (column: string): number => {
    const index = specs.findIndex((spec) => spec.def.name === column);
    if (index < 0) throw new SqlError('42703', `column "${column}" named in key does not exist`);
    return index;
  };
  for (const [index, spec] of specs.entries()) {
    if (spec.primary) {
      if (primaryKey !== undefined) throw new SqlError('42P16', `multiple primary keys for table "${name}" are not allowed`);
      primaryKey = [index];
    }
    if (spec.unique) unique.push({ columns: [index] });
    for (const check of spec.checks) checks.push({ name: `${name}_${spec.def.name}_check`, expression: check });
  }
  for (const c of tableConstraints) {
    const keys = ((c.keys ?? []) as Node[]).map((key) => position(nameOf(key)));
    switch (c.contype as string) {
      case 'CONSTR_PRIMARY':
        if (primaryKey !== undefined) throw new SqlError('42P16', `multiple primary keys for table "${name}" are not allowed`);
        primaryKey = keys;
        for (const key of keys) specs[key]!.def.notNull = true;
        break;
      case 'CONSTR_UNIQUE':
        unique.push({ name: c.conname, columns: keys });
        break;
      case 'CONSTR_CHECK':
        checks.push({ name: c.conname ?? `${name}_check${checks.length === 0 ? '' : checks.length}`, expression: deparseSync(c.raw_expr) });
        break;
      case 'CONSTR_FOREIGN':
        throw new SqlError('0A000', 'FOREIGN KEY constraints are not supported yet');
      default:
        throw new SqlError('0A000', `table constraint ${c.contype} is not supported yet`);
    }
  }
  if (body.if_not_exists && (await tx.findTable(name, schema)) !== undefined) {
    out.notice({ severity: 'NOTICE', code: '42P07', message: `relation "${name}" already exists, skipping` });
    return 'CREATE TABLE';
  }
  // SERIAL: a sequence named <table>_<column>_seq and a nextval default.
  for (const spec of specs) {
    if (spec.serial === undefined) continue;
    const sequence = `${name}_${spec.def.name}_seq`;
    await tx.createSequence(sequence, spec.serial === 'int8' ? { schema } : { schema, max: spec.serial === 'int4' ? 2147483647n : 32767n });
    spec.def.default = `nextval('${schema === 'public' ? '' : `${schema}.`}${sequence}'::regclass)`;
  }
  await tx.createTable({ name, schema, columns: specs.map((spec) => spec.def), ...(primaryKey !== undefined ? { primaryKey } : {}), unique, checks, ifNotExists: body.if_not_exists === true });
  return 'CREATE TABLE';
}

async function createIndex(tx: Transaction, body: Node, out: Output): Promise<string> {
  const { schema, name: tableName } = relationName(body.relation);
  if (body.whereClause !== undefined) throw new SqlError('0A000', 'partial indexes are not supported yet');
  if (body.accessMethod !== undefined && body.accessMethod !== 'btree') throw new SqlError('0A000', `access method "${body.accessMethod}" is not supported`);
  const table = await tx.table(tableName, schema);
  const columns = (body.indexParams as Node[]).map((param) => {
    const element = param.IndexElem;
    if (element.name === undefined) throw new SqlError('0A000', 'indexes on expressions are not supported yet');
    // DESC columns are stored ascending: a B+tree range is read the same either way, and the
    // planner only relies on ascending order (so an ORDER BY … DESC still sorts).
    const index = table.columns.findIndex((column) => column.name === element.name);
    if (index < 0) throw new SqlError('42703', `column "${element.name}" does not exist`);
    return index;
  });
  const name = (body.idxname as string | undefined) ?? `${tableName}_${columns.map((column) => table.columns[column]!.name).join('_')}_idx`;
  const relations = await tx.findTable(name, schema);
  if (relations !== undefined || table.indexes.some((index) => index.name === name)) {
    if (body.if_not_exists) {
      out.notice({ severity: 'NOTICE', code: '42P07', message: `relation "${name}" already exists, skipping` });
      return 'CREATE INDEX';
    }
  }
  await tx.createIndex(tableName, { name, columns, unique: body.unique === true, schema });
  return 'CREATE INDEX';
}

async function drop(tx: Transaction, body: Node, out: Output): Promise<string> {
  const kind = body.removeType as string;
  const missingOk = body.missing_ok === true;
  if (body.behavior === 'DROP_CASCADE' && kind !== 'OBJECT_TABLE' && kind !== 'OBJECT_INDEX') throw new SqlError('0A000', 'DROP … CASCADE is not supported yet');
  for (const object of body.objects as Node[]) {
    const parts = (object.List?.items ?? [object]).map((item: Node) => (item.String !== undefined ? nameOf(item) : ''));
    const name = parts[parts.length - 1]!;
    const schema = parts.length > 1 ? parts[parts.length - 2] : 'public';
    switch (kind) {
      case 'OBJECT_TABLE': {
        const dropped = await tx.dropTable(name, { schema, ifExists: missingOk });
        if (!dropped) out.notice({ severity: 'NOTICE', code: '00000', message: `table "${name}" does not exist, skipping` });
        break;
      }
      case 'OBJECT_VIEW': {
        const dropped = await tx.dropView(name, { schema, ifExists: missingOk });
        if (!dropped) out.notice({ severity: 'NOTICE', code: '00000', message: `view "${name}" does not exist, skipping` });
        break;
      }
      case 'OBJECT_INDEX': {
        const dropped = await tx.dropIndex(name, { schema, ifExists: missingOk });
        if (!dropped) out.notice({ severity: 'NOTICE', code: '00000', message: `index "${name}" does not exist, skipping` });
        break;
      }
      default:
        throw new SqlError('0A000', `DROP ${kind.replace('OBJECT_', '')} is not supported yet`);
    }
  }
  const label: Record<string, string> = { OBJECT_TABLE: 'DROP TABLE', OBJECT_INDEX: 'DROP INDEX', OBJECT_VIEW: 'DROP VIEW' };
  return label[kind] ?? 'DROP';
}

function bigintOption(option: Node): bigint {
  const arg = option.DefElem.arg;
  if (arg?.Integer !== undefined) return BigInt(arg.Integer.ival ?? 0);
  if (arg?.Float !== undefined) return BigInt(arg.Float.fval);
  if (arg?.A_Const?.ival !== undefined) return BigInt(arg.A_Const.ival.ival ?? 0);
  throw new SqlError('22023', `invalid value for sequence option "${option.DefElem.defname}"`);
}

async function createView(session: SqlSession, tx: Transaction, body: Node): Promise<string> {
  const { schema, name } = relationName(body.view);
  if (body.view.relpersistence === 't') throw new SqlError('0A000', 'temporary views are not supported yet');
  if (body.withCheckOption !== undefined && body.withCheckOption !== 'NO_CHECK_OPTION') throw new SqlError('0A000', 'WITH CHECK OPTION is not supported yet');
  const query = deparseSync(body.query);
  const aliases = ((body.aliases ?? []) as Node[]).map(nameOf);
  const definition = aliases.length === 0 ? query : `SELECT * FROM (${query}) AS ${quote(name)}(${aliases.map(quote).join(', ')})`;
  // The query must plan now (unknown tables and columns are errors at CREATE VIEW).
  const columns = await session.checkQuery(definition);
  if ((await tx.findTable(name, schema)) !== undefined) throw new SqlError('42P07', `relation "${name}" already exists`);
  const existing = body.replace === true ? await tx.findView(name, schema) : undefined;
  if (existing !== undefined) {
    // CREATE OR REPLACE may add columns at the end, not drop, rename or retype them.
    const before = await session.checkQuery(existing.definition);
    if (columns.length < before.length) throw new SqlError('42P16', 'cannot drop columns from view');
    for (const [index, column] of before.entries()) {
      if (column.name !== columns[index]!.name) throw new SqlError('42P16', `cannot change name of view column "${column.name}" to "${columns[index]!.name}"`, { hint: 'Use ALTER VIEW ... RENAME COLUMN ... to change name of view column instead.' });
      if (column.type !== columns[index]!.type) throw new SqlError('42P16', `cannot change data type of view column "${column.name}"`);
    }
  }
  await tx.createView(name, definition, { schema, replace: body.replace === true });
  return 'CREATE VIEW';
}

const quote = (identifier: string): string => (/^[a-z_][a-z0-9_]*$/.test(identifier) ? identifier : `"${identifier.replace(/"/g, '""')}"`);

async function createSequence(tx: Transaction, body: Node): Promise<string> {
  const { schema, name } = relationName(body.sequence);
  const options: { schema: string; start?: bigint; increment?: bigint; min?: bigint; max?: bigint; cycle?: boolean } = { schema };
  for (const option of (body.options ?? []) as Node[]) {
    const key = option.DefElem.defname as string;
    if (key === 'start') options.start = bigintOption(option);
    else if (key === 'increment') options.increment = bigintOption(option);
    else if (key === 'minvalue') options.min = bigintOption(option);
    else if (key === 'maxvalue') options.max = bigintOption(option);
    else if (key === 'cycle') options.cycle = option.DefElem.arg?.Boolean?.boolval === true || option.DefElem.arg === undefined;
    else if (key === 'cache' || key === 'as') continue;
    else throw new SqlError('0A000', `sequence option ${key} is not supported yet`);
  }
  try {
    await tx.createSequence(name, options);
  } catch (error) {
    if ((error as { sqlState?: string }).sqlState === '42P07' && body.if_not_exists) return 'CREATE SEQUENCE';
    throw error;
  }
  return 'CREATE SEQUENCE';
}

async function alterTable(session: SqlSession, tx: Transaction, body: Node, out: Output): Promise<string> {
  const { schema, name } = relationName(body.relation);
  let table: TableDef | undefined = await tx.findTable(name, schema);
  if (table === undefined) {
    if (body.missing_ok) {
      out.notice({ severity: 'NOTICE', code: '00000', message: `relation "${name}" does not exist, skipping` });
      return 'ALTER TABLE';
    }
    throw new SqlError('42P01', `relation "${name}" does not exist`);
  }
  for (const command of body.cmds as Node[]) {
    const cmd = command.AlterTableCmd;
    switch (cmd.subtype as string) {
      case 'AT_AddColumn': {
        const spec = columnSpec(cmd.def);
        if (spec.primary || spec.unique || spec.serial !== undefined) throw new SqlError('0A000', 'ADD COLUMN with PRIMARY KEY, UNIQUE or SERIAL is not supported yet');
        if (table.columns.some((column) => column.name === spec.def.name)) {
          if (cmd.missing_ok) {
            out.notice({ severity: 'NOTICE', code: '42701', message: `column "${spec.def.name}" of relation "${name}" already exists, skipping` });
            break;
          }
          throw new SqlError('42701', `column "${spec.def.name}" of relation "${name}" already exists`);
        }
        table = await tx.addColumn(table, spec.def);
        if (spec.def.default !== null || spec.def.notNull) await session.fillNewColumn(table, table.columns.length - 1);
        for (const check of spec.checks) await tx.addCheck(table, `${name}_${spec.def.name}_check`, check);
        break;
      }
      case 'AT_AddConstraint': {
        const c = cmd.def.Constraint;
        const keys = ((c.keys ?? []) as Node[]).map((key) => {
          const column = table!.columns.findIndex((each) => each.name === nameOf(key));
          if (column < 0) throw new SqlError('42703', `column "${nameOf(key)}" named in key does not exist`);
          return column;
        });
        if (c.contype === 'CONSTR_PRIMARY') table = await tx.addPrimaryKey(table, keys, c.conname ?? `${name}_pkey`);
        else if (c.contype === 'CONSTR_UNIQUE') await tx.addUnique(table, c.conname ?? `${name}_${keys.map((key) => table!.columns[key]!.name).join('_')}_key`, keys);
        else if (c.contype === 'CONSTR_CHECK') {
          const expression = deparseSync(c.raw_expr);
          await session.validateCheck(table, expression, c.conname ?? `${name}_check`);
          await tx.addCheck(table, c.conname ?? `${name}_check`, expression);
        } else if (c.contype === 'CONSTR_FOREIGN') throw new SqlError('0A000', 'FOREIGN KEY constraints are not supported yet');
        else throw new SqlError('0A000', `ADD CONSTRAINT ${c.contype} is not supported yet`);
        break;
      }
      default:
        throw new SqlError('0A000', `ALTER TABLE ${String(cmd.subtype).replace('AT_', '')} is not supported yet`);
    }
  }
  void columnType;
  return 'ALTER TABLE';
}
