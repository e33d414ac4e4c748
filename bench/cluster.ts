// bench/cluster: adding a reader with `create-db-instance` to a small database and to one of
// at least 1 GB, on a real `boreal up` cluster: the time from the request to the first query
// answered by the new instance. A reader copies no data (it attaches to the writer's redo
// stream and reads pages from the shared volume), so the two should be close; the ratio is
// printed. Target (issue 6): <= 2 s on the large database.
//
//   npm run bench:cluster -- [--mb 1100]
//
// The data is loaded with COPY through the cluster endpoint: rows of 2,000 bytes of text.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { BIN, clusterPorts } from '../src/testing/fleet.js';

const run = promisify(execFile);
const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const TARGET_MB = flag('mb', 1100);
const ROW_BYTES = 2000;


/** create-db-instance, then the first query answered on the new instance: ms. */
async function addReader(api: string, id: string, probe: string): Promise<{ totalMs: number; availableMs: number; queryMs: number }> {
  const started = performance.now();
  // The RDS Query API's CreateDBInstance, answered in JSON (what `boreal create-db-instance` sends).
  const request = new URLSearchParams({ Action: 'CreateDBInstance', Version: '2014-10-31', DBClusterIdentifier: 'boreal-cluster', DBInstanceIdentifier: id });
  const response = await fetch(`${api}/`, { method: 'POST', body: request, headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`create-db-instance ${id}: ${await response.text()}`);
  const port = ((await response.json()) as { DBInstance: { Endpoint: { Port: number } } }).DBInstance.Endpoint.Port;
  for (;;) {
    const status = (await (await fetch(`${api}/v1/status`)).json()) as { instances: Array<{ id: string; state: string }> };
    if (status.instances.find((instance) => instance.id === id)?.state === 'available') break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const available = performance.now();
  const client = new pg.Client(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`);
  client.on('error', (error) => console.error(`${id} connection: ${error.message}`));
  await client.connect();
  const { rows } = await client.query(probe);
  if (rows.length === 0) throw new Error(`the probe returned nothing on ${id}`);
  const done = performance.now();
  await client.end();
  return { totalMs: done - started, availableMs: available - started, queryMs: done - available };
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'boreal-bench-cluster-'));
  const { storageBase: base, sqlPort } = await clusterPorts();
  const api = `http://127.0.0.1:${base + 99}`;
  try {
    await run(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(sqlPort), '--storage-port-base', String(base), '--detach'], { timeout: 120000 });
    const client = new pg.Client(`postgres://postgres:postgres@127.0.0.1:${sqlPort}/postgres`);
    client.on('error', (error) => console.error(`writer connection: ${error.message}`));
    await client.connect();
    await client.query('CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL)');
    await client.query('INSERT INTO big SELECT g, $1::text FROM generate_series(1, 100) g', ['s'.repeat(ROW_BYTES)]);
    const small = await addReader(api, 'reader-small', 'SELECT id, length(payload) FROM big WHERE id = 50');
    await fetch(`${api}/v1/instances/reader-small`, { method: 'DELETE' });

    const loader = postgres(`postgres://postgres:postgres@127.0.0.1:${sqlPort}/postgres`, { max: 1, onnotice: () => undefined });
    const loadStarted = performance.now();
    const rowsTarget = Math.ceil((TARGET_MB * 1024 * 1024) / ROW_BYTES);
    let id = 101;
    while (id <= rowsTarget) {
      const batch = Math.min(20000, rowsTarget - id + 1);
      const stream = await loader`COPY big FROM STDIN`.writable();
      await new Promise<void>((resolve, reject) => {
        stream.on('finish', resolve);
        stream.on('error', reject);
        const filler = 'x'.repeat(ROW_BYTES - 12);
        let chunk = '';
        for (let row = 0; row < batch; row++) chunk += `${id + row}\t${String(id + row).padStart(12, '0')}${filler}\n`;
        stream.end(chunk);
      });
      id += batch;
      process.stderr.write(`\rloaded ${(((id - 1) * ROW_BYTES) / 1048576).toFixed(0)} MB`);
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    await loader.end();
    const { rows } = await client.query('SELECT count(*)::int AS n FROM big');
    await client.end();
    const megabytes = (rows[0].n * ROW_BYTES) / 1048576;
    process.stderr.write('\n');
    const large = await addReader(api, 'reader-large', `SELECT id, length(payload) FROM big WHERE id = ${Math.floor(rowsTarget / 2)}`);
    console.log(`bench/cluster: create-db-instance to the first query on the new reader`);
    console.log(`database ${megabytes.toFixed(0)} MB of rows (${rows[0].n} rows of ${ROW_BYTES} bytes, loaded by COPY in ${loadSeconds.toFixed(0)} s)`);
    console.log(`small database (100 rows):  ${small.totalMs.toFixed(0)} ms (available after ${small.availableMs.toFixed(0)} ms, first query ${small.queryMs.toFixed(0)} ms)`);
    console.log(`large database:             ${large.totalMs.toFixed(0)} ms (available after ${large.availableMs.toFixed(0)} ms, first query ${large.queryMs.toFixed(0)} ms)   target <= 2000 ms`);
    console.log(`ratio (large/small): ${(large.totalMs / small.totalMs).toFixed(2)}x`);
  } finally {
    if (process.env.KEEP_LOGS) for (const file of ['control/process.log', 'proxy/process.log', 'instances/reader-small/process.log']) console.error(file, fs.readFileSync(path.join(dataDir, file), 'utf8').slice(-3000));
    await run(process.execPath, [BIN, 'down', '--data-dir', dataDir], { timeout: 120000 }).catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
