// `npm run sim -- --seeds N [--seed S] [--bug NAME] [--verbose]`
// Runs seeds S, S+1, ... S+N-1 (S defaults to 1). A failure prints the seed and the exact
// command that replays it, and the process exits non-zero.

import { runSimulation, type InjectedBug } from './simulator.js';

interface Arguments {
  seeds: number;
  seed: number;
  bug: InjectedBug;
  verbose: boolean;
  faultPhaseMs: number;
  stopAtFirstFailure: boolean;
}

function parse(argv: string[]): Arguments {
  const result: Arguments = { seeds: 1, seed: 1, bug: 'none', verbose: false, faultPhaseMs: 2000, stopAtFirstFailure: true };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    const value = argv[index + 1];
    switch (flag) {
      case '--seeds':
        result.seeds = Number(value);
        index++;
        break;
      case '--seed':
        result.seed = Number(value);
        index++;
        break;
      case '--bug':
        if (value !== 'none' && value !== 'ack-before-fsync' && value !== 'write-quorum-3') throw new Error(`unknown bug ${value}`);
        result.bug = value;
        index++;
        break;
      case '--fault-ms':
        result.faultPhaseMs = Number(value);
        index++;
        break;
      case '--verbose':
        result.verbose = true;
        break;
      case '--keep-going':
        result.stopAtFirstFailure = false;
        break;
      default:
        throw new Error(`unknown argument ${flag}`);
    }
  }
  if (!Number.isInteger(result.seeds) || result.seeds < 1) throw new Error('--seeds must be a positive integer');
  if (!Number.isInteger(result.seed)) throw new Error('--seed must be an integer');
  return result;
}

function main(): void {
  const args = parse(process.argv.slice(2));
  const started = Date.now();
  const totals: Record<string, number> = {};
  let failures = 0;
  let firstFailure: number | undefined;
  for (let seed = args.seed; seed < args.seed + args.seeds; seed++) {
    const result = runSimulation({ seed, bug: args.bug, faultPhaseMs: args.faultPhaseMs, healPhaseMs: 1500, verbose: args.verbose });
    for (const [key, value] of Object.entries(result.stats)) totals[key] = (totals[key] ?? 0) + value;
    if (!result.ok) {
      failures++;
      firstFailure ??= seed;
      const bugFlag = args.bug === 'none' ? '' : ` --bug ${args.bug}`;
      console.log(`seed ${seed} FAILED: ${result.failure}`);
      console.log(`replay: npm run sim -- --seed ${seed} --seeds 1${bugFlag}${args.faultPhaseMs === 2000 ? '' : ` --fault-ms ${args.faultPhaseMs}`} --verbose`);
      if (args.stopAtFirstFailure) break;
    }
    if ((seed - args.seed + 1) % 100 === 0) console.log(`... ${seed - args.seed + 1} seeds, ${failures} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const ran = firstFailure !== undefined && args.stopAtFirstFailure ? firstFailure - args.seed + 1 : args.seeds;
  console.log(`simulated ${ran} seeds from ${args.seed} (bug: ${args.bug}) in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(totals)}`);
  console.log(`${ran - failures} passed, ${failures} failed`);
  process.exitCode = failures > 0 ? 1 : 0;
}

main();
