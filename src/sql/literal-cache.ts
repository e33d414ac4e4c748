// Plans for simple-protocol queries that differ only in their integer literals (pgbench's
// `SELECT abalance FROM pgbench_accounts WHERE aid = 4711`, an ORM's inlined ids): the
// text is split into a shape, with each small integer literal replaced by a typed
// parameter, and the literals. A session plans each shape once, as a statement whose
// parameters are int4 — exactly the type PostgreSQL gives those literals — and runs it
// with the literals bound, skipping parse, bind and plan.
//
// Invariants:
//  LC1. A shape is only used when it means what the literal text means: plain SELECT,
//       INSERT, UPDATE and DELETE; no literal where its position matters syntactically
//       (ORDER BY 1, GROUP BY 1, DISTINCT ON (1), a type modifier); anything the scanner is
//       not sure of (comments, dollar quotes, escape strings, existing $n parameters,
//       literals of 2^31 and more) is not normalized at all.
//  LC2. Only integer literals are replaced, and by parameters typed int4, so operator and
//       function resolution, assignment casts and result types are those of the literal.
//  LC4. A bare BEGIN, START TRANSACTION, COMMIT, END or ROLLBACK (no literal to replace) is
//       its own shape: pgbench sends two per transaction, and each cost a parse.
// Tests: src/sql/literal-cache.test.ts; every differential, random-query and sqllogictest
// query sent through the simple protocol goes through it.

import type { Node } from './expr.js';

export interface Normalized {
  /** The text with $1..$n in place of the literals. */
  shape: string;
  /** The literals, in order, as text. */
  literals: string[];
}

const INT4_MAX = 2147483647;

const isIdentChar = (code: number): boolean =>
  (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code === 36 || code >= 128;
const isDigit = (code: number): boolean => code >= 48 && code <= 57;

/** Splits a query into shape and integer literals, or undefined when it is not sure how (LC1). */
export function normalizeLiterals(sql: string): Normalized | undefined {
  const literals: string[] = [];
  let shape = '';
  let copiedTo = 0;
  const length = sql.length;
  let at = 0;
  while (at < length) {
    const code = sql.charCodeAt(at);
    if (code === 39 /* ' */) {
      // A standard string: '' is an escaped quote; a backslash may be an escape (E'' or
      // standard_conforming_strings off): not sure, so no shape.
      const prefix = at > 0 ? sql.charCodeAt(at - 1) : 0;
      if (prefix === 69 || prefix === 101) return undefined;
      at++;
      for (;;) {
        if (at >= length) return undefined;
        const inner = sql.charCodeAt(at);
        if (inner === 92 /* \ */) return undefined;
        if (inner === 39) {
          if (sql.charCodeAt(at + 1) === 39) {
            at += 2;
            continue;
          }
          break;
        }
        at++;
      }
      at++;
      continue;
    }
    if (code === 34 /* " */) {
      at = sql.indexOf('"', at + 1);
      if (at < 0) return undefined;
      at++;
      continue;
    }
    if (code === 45 /* - */ && sql.charCodeAt(at + 1) === 45) return undefined; // a comment
    if (code === 47 /* / */ && sql.charCodeAt(at + 1) === 42) return undefined; // a block comment
    if (code === 36 /* $ */ && !(at > 0 && isIdentChar(sql.charCodeAt(at - 1)))) return undefined; // $n or a dollar quote
    if (isIdentChar(code) && !isDigit(code)) {
      // An identifier or keyword (digits and $ inside it belong to it).
      while (at < length && isIdentChar(sql.charCodeAt(at))) at++;
      continue;
    }
    if (isDigit(code) || (code === 46 /* . */ && isDigit(sql.charCodeAt(at + 1)))) {
      const start = at;
      while (at < length && isDigit(sql.charCodeAt(at))) at++;
      const next = at < length ? sql.charCodeAt(at) : 0;
      if (code === 46 || next === 46 || isIdentChar(next)) {
        // A decimal, an exponent, or digits glued to letters: left in the shape as they are.
        while (at < length && (isIdentChar(sql.charCodeAt(at)) || sql.charCodeAt(at) === 46 || ((sql.charCodeAt(at) === 43 || sql.charCodeAt(at) === 45) && (sql.charCodeAt(at - 1) | 32) === 101))) at++;
        continue;
      }
      const text = sql.slice(start, at);
      if (text.length > 10 || Number(text) > INT4_MAX) continue;
      literals.push(text);
      shape += `${sql.slice(copiedTo, start)}$${literals.length}`;
      copiedTo = at;
      continue;
    }
    at++;
  }
  if (literals.length === 0) return BARE_TRANSACTION_CONTROL.test(sql) ? { shape: sql, literals } : undefined;
  return { shape: shape + sql.slice(copiedTo), literals };
}

const CACHEABLE = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'TransactionStmt']);
const BARE_TRANSACTION_CONTROL = /^\s*(begin|start\s+transaction|commit|end|rollback)\s*;?\s*$/i;

/** Whether a parsed shape means what its literal text meant (LC1): no parameter where a literal's position matters. */
export function shapeIsSafe(stmt: Node): boolean {
  const kind = Object.keys(stmt)[0];
  if (kind === undefined || !CACHEABLE.has(kind)) return false;
  let safe = true;
  // A parameter, or a negated one (ORDER BY -1 is a position to PostgreSQL: an error).
  const isParam = (value: unknown): boolean => {
    if (typeof value !== 'object' || value === null) return false;
    if ('ParamRef' in value) return true;
    const expr = (value as { A_Expr?: { lexpr?: unknown; rexpr?: unknown } }).A_Expr;
    return expr !== undefined && expr.lexpr === undefined && isParam(expr.rexpr);
  };
  const visit = (value: unknown): void => {
    if (!safe || typeof value !== 'object' || value === null) return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    const record = value as Record<string, unknown>;
    if (record.SortBy !== undefined && isParam((record.SortBy as Record<string, unknown>).node)) safe = false;
    if (Array.isArray(record.groupClause) && record.groupClause.some(isParam)) safe = false;
    if (Array.isArray(record.distinctClause) && record.distinctClause.some(isParam)) safe = false;
    if (record.typmods !== undefined && JSON.stringify(record.typmods).includes('ParamRef')) safe = false;
    for (const child of Object.values(record)) visit(child);
  };
  visit(stmt);
  return safe;
}
