// The isolation specs (spec/isolation/*.spec) run on the engine through the engine test
// driver: each permutation on a fresh database over the model page store, its outcome
// lines compared with the spec's. The front end (issue 5) runs the same specs over the
// wire on Boreal and on PostgreSQL 15.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ModelStore } from '../testing/model-page-store.js';
import { EngineSession } from '../testing/isolation/engine-session.js';
import { parseSpec, runPermutation } from '../testing/isolation/spec.js';
import { BufferCache } from './buffer-cache.js';
import { Database } from './database.js';

const directory = new URL('../../../spec/isolation/', import.meta.url);
const files = readdirSync(directory).filter((name) => name.endsWith('.spec')).sort();

test('there are isolation specs to run', () => {
  assert.ok(files.length >= 8, `found ${files.length} specs`);
});

for (const file of files) {
  const spec = parseSpec(file, readFileSync(new URL(file, directory), 'utf8'));
  test(`isolation spec ${file}`, { timeout: 120_000 }, async () => {
    for (const permutation of spec.permutations) {
      const cache = new BufferCache(new ModelStore(1 << 14, 100_000n), { bytesMax: 256 * 8192 });
      const db = await Database.create(cache);
      await new EngineSession(db).run(spec.setup);
      const outcome = await runPermutation(spec, permutation, async () => new EngineSession(db));
      assert.deepEqual(outcome, permutation.expect, `permutation ${permutation.steps.join(' ')}`);
      assert.equal(db.runningCount, 0, 'every transaction ended');
    }
  });
}
