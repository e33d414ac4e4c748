// Random queries over random tables, on Boreal (a real cluster, over the wire) and on
// PostgreSQL (PGlite): every query must give the same rows (compared as sorted lists unless
// ordered) and the same SQLSTATE. A failure prints the seed that replays it
// (RANDOM_QUERY_SEED=n; RANDOM_QUERY_COUNT sets how many queries per seed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { differentialSuite, sameOutcome, type Statement } from '../testing/differential.js';
import { QueryGenerator } from '../testing/query-generator.js';

const targets = differentialSuite();

const statement = (sql: string): Statement => ({ sql, ordered: false, compareRows: true, line: 0 });

const seeds = process.env.RANDOM_QUERY_SEED !== undefined ? [Number(process.env.RANDOM_QUERY_SEED)] : [1, 2, 3];
const perSeed = Number(process.env.RANDOM_QUERY_COUNT ?? 150);

for (const seed of seeds) {
  test(`random queries (seed ${seed}): Boreal matches PostgreSQL`, { timeout: 300_000 }, async () => {
    const generator = new QueryGenerator(seed);
    const tables = generator.tables(3);
    for (const table of tables) {
      for (const sql of [`DROP TABLE IF EXISTS ${table.name}`, ...QueryGenerator.ddl(table)]) {
        const [mine, theirs] = [await targets.boreal().run(statement(sql)), await targets.postgres().run(statement(sql))];
        assert.ok(sameOutcome(mine, theirs) && mine.error === undefined, `setup differs: ${sql}\n${JSON.stringify(mine)}\n${JSON.stringify(theirs)}`);
      }
    }
    const differences: string[] = [];
    for (let index = 0; index < perSeed; index++) {
      const sql = generator.query(tables);
      const [mine, theirs] = [await targets.boreal().run(statement(sql)), await targets.postgres().run(statement(sql))];
      if (!sameOutcome(mine, theirs)) differences.push(`${sql}\n  boreal:   ${JSON.stringify(mine)}\n  postgres: ${JSON.stringify(theirs)}`);
    }
    assert.equal(differences.length, 0, `seed ${seed}: ${differences.length} of ${perSeed} queries differ:\n${differences.slice(0, 10).join('\n')}`);
  });
}
