// The simulator in CI: at least 200 seeds with every fault, exact replay of a seed, and
// proof that it catches deliberately injected bugs (acknowledging before the fsync,
// counting 3/6 as a write quorum).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runSimulation } from './simulator.js';

const RUN = fileURLToPath(new URL('./run.js', import.meta.url));
const run = promisify(execFile);
const CI_SEEDS = Number(process.env['BOREAL_SIM_SEEDS'] ?? 200);

async function sweep(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [RUN, ...args], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, output: failed.stdout };
  }
}

test(`${CI_SEEDS} seeds with every fault violate no invariant`, { timeout: 900000 }, async () => {
  const { code, output } = await sweep(['--seeds', String(CI_SEEDS), '--workers', '2', '--keep-going']);
  const summary = output.trim().split('\n').slice(-2).join('\n');
  console.log(summary);
  assert.equal(code, 0, output.slice(0, 4000));
  assert.match(output, new RegExp(`^${CI_SEEDS} passed, 0 failed$`, 'm'));
  // The sweep must actually have exercised the faults it claims to.
  const totals = JSON.parse(/: (\{.*\})$/m.exec(output)![1]!) as Record<string, number>;
  for (const key of ['recoveries', 'nodeCrashes', 'zoneOutages', 'diskFlips', 'storeFlips', 'wireFlips', 'zombies', 'membershipChanges', 'commitsAcked', 'pageReads']) {
    assert.ok((totals[key] ?? 0) > 0, `no ${key} in ${CI_SEEDS} seeds`);
  }
});

test('a seed replays exactly', () => {
  const first = runSimulation({ seed: 4242, bug: 'none', faultPhaseMs: 800, healPhaseMs: 1500, verbose: false });
  const second = runSimulation({ seed: 4242, bug: 'none', faultPhaseMs: 800, healPhaseMs: 1500, verbose: false });
  assert.equal(first.ok, true, first.failure);
  assert.deepStrictEqual(second.stats, first.stats);
});

for (const bug of ['write-quorum-3', 'ack-before-fsync'] as const) {
  test(`the sweep catches the injected bug ${bug}`, { timeout: 900000 }, async () => {
    const { code, output } = await sweep(['--seeds', '150', '--bug', bug]);
    assert.notEqual(code, 0, `bug ${bug} went unnoticed in 150 seeds`);
    const failure = /^seed (\d+) FAILED: (invariant \d): /m.exec(output);
    assert.ok(failure, output.slice(-2000));
    assert.match(output, new RegExp(`replay: npm run sim -- --seed ${failure[1]} --seeds 1 --bug ${bug}`));
    console.log(`bug ${bug}: caught at seed ${failure[1]} (${failure[2]})`);
  });
}
