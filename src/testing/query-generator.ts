// Random tables and random queries over them, for differential testing against PostgreSQL.
// Everything is drawn from a seeded generator, so a failing query is replayed by its seed.
// The generator avoids what PostgreSQL leaves unspecified or order-dependent: no division
// (error vs. no error depends on evaluation order), no floating point, ORDER BY on every
// output column whenever LIMIT is used.

import { SeededRandom } from '../common/random.js';

export interface GeneratedColumn {
  name: string;
  type: 'int' | 'text' | 'numeric';
}

export interface GeneratedTable {
  name: string;
  columns: GeneratedColumn[];
  rows: Array<Array<string | null>>;
}

export class QueryGenerator {
  private readonly random: SeededRandom;

  constructor(seed: number) {
    this.random = new SeededRandom(seed);
  }

  private pick<T>(items: readonly T[]): T {
    return this.random.pick(items);
  }

  private chance(percent: number): boolean {
    return this.random.integer(100) < percent;
  }

  private int(min: number, max: number): number {
    return min + this.random.integer(max - min + 1);
  }

  tables(count: number): GeneratedTable[] {
    return Array.from({ length: count }, (_, index) => {
      const columns: GeneratedColumn[] = [{ name: 'id', type: 'int' }];
      const extra = this.int(2, 4);
      for (let column = 0; column < extra; column++) columns.push({ name: `c${column}`, type: this.pick(['int', 'int', 'text', 'numeric'] as const) });
      const rows = Array.from({ length: this.int(0, 12) }, (_, row) => columns.map((column) => (column.name === 'id' ? String(row + 1) : this.literalValue(column.type))));
      return { name: `g${index}`, columns, rows };
    });
  }

  private literalValue(type: GeneratedColumn['type']): string | null {
    if (this.chance(15)) return null;
    switch (type) {
      case 'int':
        return String(this.int(-5, 20));
      case 'numeric':
        return `${this.int(-9, 99)}.${this.int(0, 99)}`;
      case 'text':
        return this.pick(['a', 'b', 'ab', 'abc', 'B', '', 'zz', 'a b']);
    }
  }

  static ddl(table: GeneratedTable): string[] {
    const columns = table.columns.map((column) => `${column.name} ${column.type === 'int' ? 'int' : column.type === 'numeric' ? 'numeric(6,2)' : 'text'}${column.name === 'id' ? ' PRIMARY KEY' : ''}`);
    const statements = [`CREATE TABLE ${table.name} (${columns.join(', ')})`];
    if (table.rows.length > 0) {
      const values = table.rows.map((row) => `(${row.map((value, index) => (value === null ? 'NULL' : table.columns[index]!.type === 'text' ? `'${value}'` : value)).join(', ')})`);
      statements.push(`INSERT INTO ${table.name} VALUES ${values.join(', ')}`);
    }
    return statements;
  }

  /** An expression over the given qualified columns, of roughly the requested type. */
  private expression(columns: Array<{ ref: string; type: GeneratedColumn['type'] }>, type: GeneratedColumn['type'], depth = 0): string {
    const ofType = columns.filter((column) => column.type === type);
    if (depth >= 2 || this.chance(45)) {
      if (ofType.length > 0 && this.chance(75)) return this.pick(ofType).ref;
      return this.literalValue(type) === null ? `NULL::${type === 'numeric' ? 'numeric' : type}` : type === 'text' ? `'${this.pick(['a', 'b', 'x'])}'` : String(this.literalValue(type));
    }
    switch (type) {
      case 'int':
      case 'numeric': {
        const shape = this.int(0, 4);
        if (shape === 0) return `(${this.expression(columns, type, depth + 1)} ${this.pick(['+', '-', '*'])} ${this.expression(columns, type, depth + 1)})`;
        if (shape === 1) return `COALESCE(${this.expression(columns, type, depth + 1)}, ${this.int(0, 9)})`;
        if (shape === 2) return `CASE WHEN ${this.predicate(columns, depth + 1)} THEN ${this.expression(columns, type, depth + 1)} ELSE ${this.expression(columns, type, depth + 1)} END`;
        if (shape === 3) return `abs(${this.expression(columns, type, depth + 1)})`;
        return `NULLIF(${this.expression(columns, type, depth + 1)}, ${this.int(0, 5)})`;
      }
      case 'text': {
        const shape = this.int(0, 2);
        if (shape === 0) return `(${this.expression(columns, 'text', depth + 1)} || ${this.expression(columns, 'text', depth + 1)})`;
        if (shape === 1) return `upper(${this.expression(columns, 'text', depth + 1)})`;
        return `COALESCE(${this.expression(columns, 'text', depth + 1)}, 'none')`;
      }
    }
  }

  private predicate(columns: Array<{ ref: string; type: GeneratedColumn['type'] }>, depth = 0): string {
    const shape = this.int(0, depth >= 2 ? 4 : 7);
    const type = this.pick(['int', 'int', 'numeric', 'text'] as const);
    switch (shape) {
      case 0:
      case 1:
        return `${this.expression(columns, type, depth + 1)} ${this.pick(['=', '<>', '<', '<=', '>', '>='])} ${this.expression(columns, type, depth + 1)}`;
      case 2:
        return `${this.expression(columns, type, depth + 1)} IS ${this.pick(['', 'NOT '])}NULL`;
      case 3:
        return type === 'text' ? `${this.expression(columns, 'text', depth + 1)} LIKE '${this.pick(['a%', '%b', '_', '%'])}'` : `${this.expression(columns, type, depth + 1)} BETWEEN ${this.int(-5, 5)} AND ${this.int(5, 20)}`;
      case 4:
        return type === 'text' ? `${this.expression(columns, 'text', depth + 1)} IN ('a', 'b', NULL)` : `${this.expression(columns, type, depth + 1)} ${this.pick(['IN', 'NOT IN'])} (${this.int(0, 5)}, ${this.int(5, 10)})`;
      case 5:
        return `(${this.predicate(columns, depth + 1)} AND ${this.predicate(columns, depth + 1)})`;
      case 6:
        return `(${this.predicate(columns, depth + 1)} OR ${this.predicate(columns, depth + 1)})`;
      default:
        return `NOT (${this.predicate(columns, depth + 1)})`;
    }
  }

  /** A SELECT over one or two of the tables. */
  query(tables: GeneratedTable[]): string {
    const first = this.pick(tables);
    const joined = tables.length > 1 && this.chance(40) ? this.pick(tables.filter((table) => table !== first)) : undefined;
    const columns = [
      ...first.columns.map((column) => ({ ref: `t1.${column.name}`, type: column.type })),
      ...(joined?.columns.map((column) => ({ ref: `t2.${column.name}`, type: column.type })) ?? []),
    ];
    let from = `${first.name} AS t1`;
    if (joined !== undefined) {
      const kind = this.pick(['JOIN', 'LEFT JOIN', 'RIGHT JOIN', 'FULL JOIN', 'CROSS JOIN']);
      // PostgreSQL runs FULL JOIN only on merge- or hash-joinable conditions (0A000 otherwise).
      const on = this.chance(70) || kind === 'FULL JOIN' ? 't1.id = t2.id' : this.predicate(columns, 1);
      from += kind === 'CROSS JOIN' ? ` CROSS JOIN ${joined.name} AS t2` : ` ${kind} ${joined.name} AS t2 ON ${on}`;
    }
    const where = this.chance(70) ? ` WHERE ${this.predicate(columns)}` : '';
    if (this.chance(35)) {
      // Aggregation: group by one column, aggregate another.
      const key = this.pick(columns);
      const measured = this.pick(columns.filter((column) => column.type !== 'text').concat(columns.slice(0, 1)));
      const aggregate = this.pick([`count(*)`, `count(${measured.ref})`, `sum(${measured.ref})`, `min(${measured.ref})`, `max(${measured.ref})`, `count(DISTINCT ${key.ref})`]);
      const having = this.chance(30) ? ` HAVING count(*) > ${this.int(0, 2)}` : '';
      return `SELECT ${key.ref}, ${aggregate} FROM ${from}${where} GROUP BY ${key.ref}${having}`;
    }
    const outputs = Array.from({ length: this.int(1, 3) }, () => this.expression(columns, this.pick(['int', 'numeric', 'text'] as const)));
    const distinct = this.chance(20) ? 'DISTINCT ' : '';
    if (this.chance(30)) {
      const positions = outputs.map((_, index) => `${index + 1}`).join(', ');
      return `SELECT ${distinct}${outputs.join(', ')} FROM ${from}${where} ORDER BY ${positions} LIMIT ${this.int(0, 5)}`;
    }
    return `SELECT ${distinct}${outputs.join(', ')} FROM ${from}${where}`;
  }
}
