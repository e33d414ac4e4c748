// Type names: from the parser's TypeName (catalog name + modifiers) or from SQL text
// ('character varying(10)', 'timestamp(3) with time zone', 'serial') to an OID and a typmod,
// and back (format_type). Typmods use PostgreSQL's encoding, so they go on the wire as is:
// varchar(n)/char(n) n + 4, numeric(p,s) ((p << 16) | (s & 0x7ff)) + 4, timestamp(p) p.

import { SqlError } from '../../pgwire/session.js';
import { characterTypmod } from './character.js';
import { timestampTypmod } from './datetime.js';
import { numericTypmod, numericTypmodParts } from './numeric.js';
import { arrayElement, baseTypeName, findTypeInfo, TypeOids, type TypeName, type TypeOid } from './types.js';

export interface ResolvedType {
  type: TypeOid;
  /** -1 when the type has no modifier. */
  typmod: number;
  /** serial, bigserial, smallserial: the column's default comes from a sequence. */
  serial?: 'smallserial' | 'serial' | 'bigserial';
}

const serialTypes: Readonly<Record<string, { base: TypeName; serial: NonNullable<ResolvedType['serial']> }>> = {
  smallserial: { base: 'int2', serial: 'smallserial' },
  serial2: { base: 'int2', serial: 'smallserial' },
  serial: { base: 'int4', serial: 'serial' },
  serial4: { base: 'int4', serial: 'serial' },
  bigserial: { base: 'int8', serial: 'bigserial' },
  serial8: { base: 'int8', serial: 'bigserial' },
};

function invalidTypeModifier(message = 'invalid type modifier'): SqlError {
  return new SqlError('22023', message);
}

/** The typmod of a type given its modifiers (typmodin), or -1 when there are none. */
function typmodFor(name: TypeName, modifiers: readonly number[], shownName: string): number {
  if (modifiers.length === 0) return -1;
  switch (name) {
    case 'numeric':
      if (modifiers.length > 2) throw invalidTypeModifier('invalid NUMERIC type modifier');
      return numericTypmod(modifiers[0]!, modifiers[1] ?? 0);
    case 'varchar':
    case 'bpchar':
      if (modifiers.length !== 1) throw invalidTypeModifier();
      return characterTypmod(modifiers[0]!, name === 'varchar' ? 'varchar' : 'char');
    case 'timestamp':
    case 'timestamptz':
      if (modifiers.length !== 1) throw invalidTypeModifier();
      return timestampTypmod(modifiers[0]!, name === 'timestamptz');
    default:
      throw new SqlError('42601', `type modifier is not allowed for type "${shownName}"`);
  }
}

/**
 * A catalog type name as the parser gives it (the last part of TypeName.names: 'int4',
 * 'varchar', 'timestamptz', 'serial', '_int4'...) with its integer modifiers.
 */
export function resolveType(name: string, modifiers: readonly number[] = []): ResolvedType {
  const serial = serialTypes[name];
  if (serial !== undefined) {
    if (modifiers.length > 0) throw new SqlError('42601', `type modifier is not allowed for type "${name}"`);
    return { type: TypeOids[serial.base], typmod: -1, serial: serial.serial };
  }
  if (Object.hasOwn(TypeOids, name)) {
    const base = name as TypeName;
    return { type: TypeOids[base], typmod: typmodFor(base, modifiers, name) };
  }
  if (name.startsWith('_') && Object.hasOwn(TypeOids, name.slice(1))) {
    const element = name.slice(1) as TypeName;
    const arrayOid = findTypeInfo(TypeOids[element])?.arrayOid ?? 0;
    if (arrayOid !== 0) return { type: arrayOid, typmod: typmodFor(element, modifiers, name) };
  }
  throw new SqlError('42704', `type "${name}" does not exist`);
}

/** SQL spellings (after lower-casing and collapsing spaces) to catalog names. */
const spellings: Readonly<Record<string, string>> = {
  smallint: 'int2',
  integer: 'int4',
  int: 'int4',
  bigint: 'int8',
  real: 'float4',
  'double precision': 'float8',
  decimal: 'numeric',
  dec: 'numeric',
  boolean: 'bool',
  'character varying': 'varchar',
  'char varying': 'varchar',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
};

/**
 * A type written in SQL: 'integer', 'varchar(10)', 'numeric(10,2)', 'double precision',
 * 'timestamp(3) with time zone', 'char' (= character(1)), 'float(24)', 'serial',
 * 'pg_catalog.int4', 'integer[]'.
 */
export function parseTypeText(text: string): ResolvedType {
  let rest = text.trim().toLowerCase().replace(/\s+/g, ' ');
  if (rest.startsWith('pg_catalog.')) rest = rest.slice('pg_catalog.'.length);
  const arraySuffix = /(?: ?\[ ?\d* ?\])+$/.exec(rest);
  if (arraySuffix !== null) rest = rest.slice(0, arraySuffix.index).trim();
  let modifiers: number[] = [];
  const modifierGroup = /\(([^()]*)\)/.exec(rest);
  if (modifierGroup !== null) {
    modifiers = modifierGroup[1]!.split(',').map((part) => {
      const trimmed = part.trim();
      if (!/^-?\d+$/.test(trimmed)) throw new SqlError('42601', `syntax error in type name "${text.trim()}"`);
      return Number(trimmed);
    });
    rest = (rest.slice(0, modifierGroup.index) + ' ' + rest.slice(modifierGroup.index + modifierGroup[0].length)).replace(/\s+/g, ' ').trim();
  }
  const resolved = resolveSpelling(rest, modifiers, text.trim());
  if (arraySuffix === null) return resolved;
  const arrayOid = findTypeInfo(resolved.type)?.arrayOid ?? 0;
  if (arrayOid === 0 || resolved.serial !== undefined) throw new SqlError('42704', `type "${text.trim()}" does not exist`);
  return { type: arrayOid, typmod: resolved.typmod };
}

function resolveSpelling(words: string, modifiers: number[], original: string): ResolvedType {
  if (words === 'float') return floatWithPrecision(modifiers);
  if (words === 'character' || words === 'char') {
    // CHARACTER without a length is character(1), per the SQL standard.
    return resolveType('bpchar', modifiers.length === 0 ? [1] : modifiers);
  }
  const name = spellings[words] ?? words;
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new SqlError('42704', `type "${original}" does not exist`);
  return resolveType(name, modifiers);
}

/** FLOAT(p): p bits of mantissa; up to 24 is real, up to 53 double precision. */
function floatWithPrecision(modifiers: number[]): ResolvedType {
  if (modifiers.length === 0) return { type: TypeOids.float8, typmod: -1 };
  if (modifiers.length > 1) throw new SqlError('42601', 'syntax error in type name "float"');
  const bits = modifiers[0]!;
  if (bits < 1) throw new SqlError('22023', 'precision for type float must be at least 1 bit');
  if (bits > 53) throw new SqlError('22023', 'precision for type float must be less than 54 bits');
  return { type: bits <= 24 ? TypeOids.float4 : TypeOids.float8, typmod: -1 };
}

/** format_type(type, typmod): 'integer', 'character varying(10)', 'numeric(10,2)', 'integer[]'. */
export function formatType(type: TypeOid, typmod = -1): string {
  if (findTypeInfo(type) === undefined) throw new Error(`type OID ${type} is not in the registry`);
  const element = arrayElement(type);
  if (element !== null) return `${formatType(element, typmod)}[]`;
  const name = baseTypeName(type);
  switch (name) {
    case 'bool':
      return 'boolean';
    case 'int2':
      return 'smallint';
    case 'int4':
      return 'integer';
    case 'int8':
      return 'bigint';
    case 'float4':
      return 'real';
    case 'float8':
      return 'double precision';
    case 'bpchar':
      // bpchar without a length is not character(1): format_type keeps the name bpchar.
      return typmod >= 0 ? `character(${typmod - 4})` : 'bpchar';
    case 'varchar':
      return typmod >= 0 ? `character varying(${typmod - 4})` : 'character varying';
    case 'timestamp':
      return typmod >= 0 ? `timestamp(${typmod}) without time zone` : 'timestamp without time zone';
    case 'timestamptz':
      return typmod >= 0 ? `timestamp(${typmod}) with time zone` : 'timestamp with time zone';
    case 'numeric': {
      const parts = numericTypmodParts(typmod);
      return parts === null ? 'numeric' : `numeric(${parts.precision},${parts.scale})`;
    }
    default:
      return name;
  }
}

/** format_type_be: the name in messages ('integer', 'character', 'character varying'). */
export function typeDisplayName(type: TypeOid): string {
  if (type === TypeOids.bpchar) return 'character';
  const element = arrayElement(type);
  if (element !== null) return `${typeDisplayName(element)}[]`;
  return formatType(type, -1);
}
