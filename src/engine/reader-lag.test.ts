// A reader that falls behind (its process stopped with SIGSTOP while the writer streams
// megabytes of redo) is dropped by the writer once its unsent backlog passes the bound,
// re-attaches by itself when it runs again, forgets its cache, and serves the newest
// committed state (R2).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineCluster, SqlConnection } from '../testing/engine-cluster.js';

test('a stopped reader is dropped when too far behind, re-attaches by itself and serves the newest data', { timeout: 180_000 }, async () => {
  const cluster = await EngineCluster.start({ readers: 1, cacheMb: 4, writerArgs: ['--reader-unsent-max', String(256 * 1024)] });
  try {
    const writer = await SqlConnection.connect(cluster.writer.port);
    await writer.ok('CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL)');
    await writer.ok("INSERT INTO docs VALUES (0, 'first')");
    const reader = await SqlConnection.connect(cluster.readers[0]!.port);
    const deadline = Date.now() + 10_000;
    while ((await reader.ok('SELECT count(*) FROM docs')) !== '1') {
      assert.ok(Date.now() < deadline, 'the reader never saw the first row');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const pid = cluster.readers[0]!.process!.pid!;
    process.kill(pid, 'SIGSTOP');
    const body = 'x'.repeat(1800);
    let rows = 1;
    // About 12 MB of redo while the reader sleeps.
    for (let batch = 0; batch < 60; batch++) {
      const values = Array.from({ length: 100 }, () => `(${rows++}, '${body}')`).join(', ');
      await writer.ok(`INSERT INTO docs VALUES ${values}`);
    }
    assert.ok(cluster.writer.log.join('').includes('reader_dropped'), `the writer dropped the reader: ${cluster.writer.log.join('').slice(-300)}`);
    process.kill(pid, 'SIGCONT');
    const until = Date.now() + 20_000;
    let seen = '';
    while ((seen = (await reader.query('SELECT count(*) FROM docs')).ok ?? '') !== String(rows)) {
      assert.ok(Date.now() < until, `the reader still sees ${seen} rows of ${rows}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(cluster.readers[0]!.log.join('').includes('reader_reattached'), 'the reader re-attached');
    assert.equal(await reader.ok('SELECT id, body FROM docs WHERE id = 5999'), `5999|${body}`);
    writer.close();
    reader.close();
  } finally {
    await cluster.destroy();
  }
});
