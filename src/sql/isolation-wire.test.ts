// The engine's isolation specs (spec/isolation/*.spec) as SQL over the wire, on Boreal (a
// real cluster) and on PostgreSQL 15 (Debian's server on a temp dir): both must give every
// permutation's expected outcome — commits, waits, 40001/40P01 errors and rows.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { parseSpec, runPermutation, type Spec } from '../testing/isolation/spec.js';
import { WireMonitor, WireSession } from '../testing/isolation/wire-session.js';
import { startPostgres15 } from '../testing/postgres15.js';
import { SqlCluster } from '../testing/sql-cluster.js';

const directory = new URL('../../../spec/isolation/', import.meta.url);
const specs = readdirSync(directory)
  .filter((name) => name.endsWith('.spec'))
  .sort()
  .map((file) => parseSpec(file, readFileSync(new URL(file, directory), 'utf8')));

let cluster: SqlCluster;
let postgres: Awaited<ReturnType<typeof startPostgres15>>;

before(async () => {
  [cluster, postgres] = await Promise.all([SqlCluster.start({ cacheMb: 32 }), startPostgres15()]);
});

after(async () => {
  await cluster?.destroy();
  await postgres?.stop();
});

/** Tables a spec's setup creates, dropped after each permutation so the next starts fresh. */
function createdTables(spec: Spec): string[] {
  return [...spec.setup.matchAll(/create\s+table\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*)/gi)].map((match) => match[1]!);
}

async function runSpec(url: string, spec: Spec): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const monitor = await WireMonitor.connect(url);
  try {
    for (const permutation of spec.permutations) {
      for (const table of createdTables(spec)) await admin.query(`DROP TABLE IF EXISTS ${table}`);
      await admin.query(spec.setup);
      const outcome = await runPermutation(spec, permutation, () => WireSession.connect(url, monitor));
      assert.deepEqual(outcome, permutation.expect, `permutation ${permutation.steps.join(' ')}`);
    }
    for (const table of createdTables(spec)) await admin.query(`DROP TABLE IF EXISTS ${table}`);
  } finally {
    await monitor.close();
    await admin.end();
  }
}

for (const spec of specs) {
  test(`isolation spec ${spec.name} over the wire on PostgreSQL 15`, { timeout: 120_000 }, async () => {
    await runSpec(postgres.url, spec);
  });
  test(`isolation spec ${spec.name} over the wire on Boreal`, { timeout: 120_000 }, async () => {
    await runSpec(cluster.url(), spec);
  });
}
