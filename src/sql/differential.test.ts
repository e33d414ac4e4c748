// Differential tests: every statement of spec/sql/*.sql runs on Boreal (a real cluster over
// the wire) and on PostgreSQL (PGlite), and the outcomes must match: column names and
// types, rows, and SQLSTATEs.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { differentialSuite, readCases, sameOutcome, type Difference } from '../testing/differential.js';

const SPEC_DIR = fileURLToPath(new URL('../../../spec/sql/', import.meta.url));

const targets = differentialSuite();

const files = fs.readdirSync(SPEC_DIR).filter((name) => name.endsWith('.sql')).sort();

for (const file of files) {
  test(`spec/sql/${file}: Boreal matches PostgreSQL statement by statement`, async () => {
    const statements = await readCases(path.join(SPEC_DIR, file));
    const differences: Difference[] = [];
    for (const statement of statements) {
      const [mine, theirs] = [await targets.boreal().run(statement), await targets.postgres().run(statement)];
      if (!sameOutcome(mine, theirs)) differences.push({ file, line: statement.line, sql: statement.sql, boreal: mine, postgres: theirs });
    }
    const report = differences.map((difference) => `${difference.file}:${difference.line}: ${difference.sql}\n  boreal:   ${JSON.stringify(difference.boreal)}\n  postgres: ${JSON.stringify(difference.postgres)}`).join('\n');
    assert.equal(differences.length, 0, `${differences.length} of ${statements.length} statements differ:\n${report}`);
  });
}
