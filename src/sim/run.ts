// `npm run sim -- --seeds N [--seed S] [--bug NAME] [--workers W] [--verbose] [--keep-going]`
// Runs seeds S, S+1, ... S+N-1 (S defaults to 1), spread over W worker processes. A
// failure prints the seed and the exact command that replays it; the exit code is non-zero.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runSimulation, type InjectedBug } from './simulator.js';

export const DEFAULT_FAULT_PHASE_MS = 2000;

interface Arguments {
  seeds: number;
  seed: number;
  bug: InjectedBug;
  verbose: boolean;
  faultPhaseMs: number;
  stopAtFirstFailure: boolean;
  workers: number;
  /** Internal: this process is a worker and reports as JSON. */
  worker: boolean;
}

function parse(argv: string[]): Arguments {
  const result: Arguments = { seeds: 1, seed: 1, bug: 'none', verbose: false, faultPhaseMs: DEFAULT_FAULT_PHASE_MS, stopAtFirstFailure: true, workers: 1, worker: false };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    const value = argv[index + 1];
    const numeric = (): number => {
      index++;
      const parsed = Number(value);
      if (!Number.isInteger(parsed)) throw new Error(`${flag} needs an integer`);
      return parsed;
    };
    switch (flag) {
      case '--seeds':
        result.seeds = numeric();
        break;
      case '--seed':
        result.seed = numeric();
        break;
      case '--fault-ms':
        result.faultPhaseMs = numeric();
        break;
      case '--workers':
        result.workers = numeric();
        break;
      case '--bug':
        if (value !== 'none' && value !== 'ack-before-fsync' && value !== 'write-quorum-3') throw new Error(`unknown bug ${value}`);
        result.bug = value;
        index++;
        break;
      case '--verbose':
        result.verbose = true;
        break;
      case '--keep-going':
        result.stopAtFirstFailure = false;
        break;
      case '--worker':
        result.worker = true;
        break;
      default:
        throw new Error(`unknown argument ${flag}`);
    }
  }
  if (result.seeds < 1) throw new Error('--seeds must be positive');
  if (result.workers < 1) throw new Error('--workers must be positive');
  return result;
}

interface RangeResult {
  ran: number;
  failures: Array<{ seed: number; failure: string }>;
  totals: Record<string, number>;
}

function runRange(args: Arguments, from: number, count: number, progress: boolean): RangeResult {
  const result: RangeResult = { ran: 0, failures: [], totals: {} };
  const started = Date.now();
  for (let seed = from; seed < from + count; seed++) {
    const outcome = runSimulation({ seed, bug: args.bug, faultPhaseMs: args.faultPhaseMs, healPhaseMs: 1500, verbose: args.verbose });
    result.ran++;
    for (const [key, value] of Object.entries(outcome.stats)) result.totals[key] = (result.totals[key] ?? 0) + value;
    if (!outcome.ok) {
      result.failures.push({ seed, failure: outcome.failure ?? 'unknown' });
      if (args.stopAtFirstFailure) break;
    }
    if (progress && result.ran % 100 === 0) console.log(`... ${result.ran} seeds, ${result.failures.length} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return result;
}

function replayCommand(args: Arguments, seed: number): string {
  const bug = args.bug === 'none' ? '' : ` --bug ${args.bug}`;
  const faults = args.faultPhaseMs === DEFAULT_FAULT_PHASE_MS ? '' : ` --fault-ms ${args.faultPhaseMs}`;
  return `npm run sim -- --seed ${seed} --seeds 1${bug}${faults} --verbose`;
}

async function runWorkers(args: Arguments): Promise<RangeResult> {
  const per = Math.ceil(args.seeds / args.workers);
  const self = fileURLToPath(import.meta.url);
  const parts = await Promise.all(
    Array.from({ length: args.workers }, (_, worker) => {
      const from = args.seed + worker * per;
      const count = Math.min(per, args.seed + args.seeds - from);
      if (count <= 0) return Promise.resolve<RangeResult>({ ran: 0, failures: [], totals: {} });
      const workerArgs = ['--worker', '--seed', String(from), '--seeds', String(count), '--bug', args.bug, '--fault-ms', String(args.faultPhaseMs)];
      if (!args.stopAtFirstFailure) workerArgs.push('--keep-going');
      return new Promise<RangeResult>((resolve, reject) => {
        const child = fork(self, workerArgs, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
        let output = '';
        child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.on('exit', (code) => {
          try {
            resolve(JSON.parse(output.trim().split('\n').pop() ?? '') as RangeResult);
          } catch {
            reject(new Error(`simulation worker exited with ${code} and no result`));
          }
        });
      });
    }),
  );
  const merged: RangeResult = { ran: 0, failures: [], totals: {} };
  for (const part of parts) {
    merged.ran += part.ran;
    merged.failures.push(...part.failures);
    for (const [key, value] of Object.entries(part.totals)) merged.totals[key] = (merged.totals[key] ?? 0) + value;
  }
  merged.failures.sort((a, b) => a.seed - b.seed);
  return merged;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.worker) {
    console.log(JSON.stringify(runRange(args, args.seed, args.seeds, false)));
    return;
  }
  const started = Date.now();
  const result = args.workers > 1 ? await runWorkers(args) : runRange(args, args.seed, args.seeds, true);
  for (const { seed, failure } of result.failures) {
    console.log(`seed ${seed} FAILED: ${failure}`);
    console.log(`replay: ${replayCommand(args, seed)}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`simulated ${result.ran} seeds from ${args.seed} (bug: ${args.bug}, ${args.workers} workers) in ${seconds} s: ${JSON.stringify(result.totals)}`);
  console.log(`${result.ran - result.failures.length} passed, ${result.failures.length} failed`);
  process.exitCode = result.failures.length > 0 ? 1 : 0;
}

main().catch((error: Error) => {
  console.error(`sim: ${error.message}`);
  process.exitCode = 2;
});
