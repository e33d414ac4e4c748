// Bank transfers over real processes: six storage nodes, a writer, two readers. Writer
// sessions move money between accounts and log each transfer in the same transaction;
// checker sessions on the writer and on every reader sum the balances all along. The
// writer is killed (kill -9) and restarted mid-workload, and two storage nodes (different
// AZs) are killed and later restarted. Every successful read sees the same total, no
// acknowledged transfer is lost, and the balances are exactly what the logged transfers
// imply (no partial transaction).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineCluster, SqlConnection } from '../testing/engine-cluster.js';

const ACCOUNTS = 20;
const INITIAL = 1000;
const TOTAL = ACCOUNTS * INITIAL;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function connectRetrying(port: number, until: number): Promise<SqlConnection | undefined> {
  while (Date.now() < until) {
    try {
      return await SqlConnection.connect(port, 500);
    } catch {
      await sleep(100);
    }
  }
  return undefined;
}

test('bank transfers keep the total on the writer and every reader through kill -9 of the writer and of two storage nodes', { timeout: 240_000 }, async (t) => {
  const cluster = await EngineCluster.start({ readers: 2, cacheMb: 4 });
  try {
    const setup = await SqlConnection.connect(cluster.writer.port);
    await setup.ok('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
    await setup.ok('CREATE TABLE transfers (id int PRIMARY KEY, source int NOT NULL, target int NOT NULL, amount int NOT NULL)');
    const values = Array.from({ length: ACCOUNTS }, (_, index) => `(${index + 1}, ${INITIAL})`).join(', ');
    await setup.ok(`INSERT INTO accounts VALUES ${values}`);
    setup.close();

    const stopAt = Date.now() + 16_000;
    const acknowledged: number[] = [];
    let nextTransfer = 1;
    const badReads: string[] = [];
    const goodReads = new Map<string, number>();
    /** What happened in each phase of the chaos: acknowledged transfers and good reads per process. */
    let phase = 'before';
    const byPhase = new Map<string, number>();
    const count = (what: string): void => void byPhase.set(`${phase}/${what}`, (byPhase.get(`${phase}/${what}`) ?? 0) + 1);

    const transferLoop = async (worker: number): Promise<void> => {
      let connection: SqlConnection | undefined;
      let seed = worker * 7919 + 1;
      const random = (n: number): number => {
        seed = (seed * 48271) % 2147483647;
        return seed % n;
      };
      while (Date.now() < stopAt) {
        connection ??= await connectRetrying(cluster.writer.port, stopAt);
        if (connection === undefined) return;
        const a = 1 + random(ACCOUNTS);
        const b = 1 + ((a + random(ACCOUNTS - 1)) % ACCOUNTS);
        const [low, high] = a < b ? [a, b] : [b, a];
        const amount = 1 + random(50);
        const id = nextTransfer++;
        const steps = [
          'BEGIN',
          // Lower id first, so transfers never deadlock.
          `UPDATE accounts SET balance = balance ${low === a ? '-' : '+'} ${amount} WHERE id = ${low}`,
          `UPDATE accounts SET balance = balance ${high === a ? '-' : '+'} ${amount} WHERE id = ${high}`,
          `INSERT INTO transfers VALUES (${id}, ${a}, ${b}, ${amount})`,
          'COMMIT',
        ];
        let failed = false;
        for (const [index, sql] of steps.entries()) {
          const reply = await connection.query(sql);
          if (reply.error !== undefined) {
            count(`transfer-error-${reply.error}-${(reply.message ?? '').slice(0, 60)}`);
            failed = true;
            if (reply.error === '08006') connection = undefined;
            else await connection.query('ROLLBACK');
            break;
          }
          if (index === steps.length - 1) {
            acknowledged.push(id);
            count('transfers');
          }
        }
        if (failed) await sleep(20);
      }
      connection?.close();
    };

    const checkLoop = async (name: string, port: number): Promise<void> => {
      let connection: SqlConnection | undefined;
      while (Date.now() < stopAt + 1000) {
        connection ??= await connectRetrying(port, stopAt + 1000);
        if (connection === undefined) return;
        const reply = await connection.query('SELECT sum(balance), count(*) FROM accounts');
        if (reply.error !== undefined) count(`${name}-error-${reply.error}-${(reply.message ?? '').slice(0, 60)}`);
        if (reply.error === '08006') connection = undefined;
        else if (reply.error === undefined) {
          if (reply.ok !== `${TOTAL}|${ACCOUNTS}`) badReads.push(`${name}: ${reply.ok}`);
          else {
            goodReads.set(name, (goodReads.get(name) ?? 0) + 1);
            count(name);
          }
        }
        await sleep(5);
      }
      connection?.close();
    };

    const chaos = async (): Promise<void> => {
      await sleep(3000);
      await cluster.kill(cluster.writer);
      phase = 'writer-down';
      await sleep(300);
      await cluster.startWriter();
      phase = 'writer-restarted';
      await sleep(3000);
      await cluster.fleet.kill(1); // az-a
      await cluster.fleet.kill(3); // az-b
      phase = 'two-nodes-down';
      await sleep(4000);
      await cluster.fleet.restart(1);
      await cluster.fleet.restart(3);
      phase = 'healed';
    };

    await Promise.all([
      ...Array.from({ length: 4 }, (_, worker) => transferLoop(worker)),
      checkLoop('writer', cluster.writer.port),
      ...cluster.readers.map((reader, index) => checkLoop(`reader-${index + 1}`, reader.port)),
      chaos(),
    ]);

    t.diagnostic(`acknowledged transfers: ${acknowledged.length}; by phase: ${JSON.stringify(Object.fromEntries(byPhase))}; writer reopen: ${JSON.stringify(cluster.writer.ready)}`);
    assert.deepEqual(badReads, [], 'every read saw the whole total');
    for (const what of ['transfers', 'writer', 'reader-1', 'reader-2']) {
      for (const when of ['before', 'writer-restarted', 'two-nodes-down', 'healed']) assert.ok((byPhase.get(`${when}/${what}`) ?? 0) > 0, `${what} went on in phase ${when}: ${JSON.stringify(Object.fromEntries(byPhase))}`);
    }
    for (const name of ['writer', 'reader-1', 'reader-2']) assert.ok((goodReads.get(name) ?? 0) > 10, `${name} served reads: ${JSON.stringify([...goodReads])}`);
    assert.ok(acknowledged.length > 50, `transfers acknowledged: ${acknowledged.length}`);

    // No acknowledged transfer is lost, and the balances are exactly what the logged transfers say.
    const check = await SqlConnection.connect(cluster.writer.port);
    const logged = (await check.ok('SELECT id, source, target, amount FROM transfers ORDER BY id'))
      .split(' ; ')
      .filter((line) => line !== '(no rows)')
      .map((line) => line.split('|').map(Number) as [number, number, number, number]);
    const loggedIds = new Set(logged.map(([id]) => id));
    const lost = acknowledged.filter((id) => !loggedIds.has(id));
    assert.deepEqual(lost, [], 'acknowledged transfers missing after the crashes');
    const expected = new Map<number, number>(Array.from({ length: ACCOUNTS }, (_, index) => [index + 1, INITIAL]));
    for (const [, source, target, amount] of logged) {
      expected.set(source, expected.get(source)! - amount);
      expected.set(target, expected.get(target)! + amount);
    }
    const balances = await check.ok('SELECT id, balance FROM accounts ORDER BY id');
    assert.equal(balances, [...expected].map(([id, balance]) => `${id}|${balance}`).join(' ; '));
    check.close();

    // A reader refuses writes (25006) and SERIALIZABLE (0A000, as a hot standby), and stays usable.
    const onReader = await SqlConnection.connect(cluster.readers[0]!.port);
    assert.equal((await onReader.query('UPDATE accounts SET balance = 0 WHERE id = 1')).error, '25006');
    assert.equal((await onReader.query('BEGIN ISOLATION LEVEL SERIALIZABLE')).error, '0A000');
    assert.equal(await onReader.ok('SELECT count(*) FROM accounts'), String(ACCOUNTS));
    onReader.close();
  } finally {
    await cluster.destroy();
  }
});
