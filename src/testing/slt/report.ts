// What a run prints: a line per file as it finishes, failures with --verbose, and at the
// end a table per directory and the score line `slt: X/Y queries passed (Z%)`, where Y
// counts the queries that ran (skipped ones are not in the score).

import * as path from 'node:path';
import type { FileResult } from './runner.js';

export interface Totals {
  files: number;
  statementsOk: number;
  statementsFailed: number;
  statementsSkipped: number;
  queriesPassed: number;
  queriesFailed: number;
  queriesSkipped: number;
  timeouts: number;
  unsupported: Map<string, number>;
  elapsedMs: number;
}

export function totals(results: readonly FileResult[]): Totals {
  const sum: Totals = {
    files: 0,
    statementsOk: 0,
    statementsFailed: 0,
    statementsSkipped: 0,
    queriesPassed: 0,
    queriesFailed: 0,
    queriesSkipped: 0,
    timeouts: 0,
    unsupported: new Map(),
    elapsedMs: 0,
  };
  for (const result of results) {
    sum.files++;
    sum.statementsOk += result.statementsOk;
    sum.statementsFailed += result.statementsFailed;
    sum.statementsSkipped += result.statementsSkipped;
    sum.queriesPassed += result.queriesPassed;
    sum.queriesFailed += result.queriesFailed;
    sum.queriesSkipped += result.queriesSkipped;
    sum.timeouts += result.timeouts;
    sum.elapsedMs += result.elapsedMs;
    for (const [keyword, count] of result.unsupported) sum.unsupported.set(keyword, (sum.unsupported.get(keyword) ?? 0) + count);
  }
  return sum;
}

export function scorePercent(sum: Totals): number {
  const run = sum.queriesPassed + sum.queriesFailed;
  return run === 0 ? 0 : (100 * sum.queriesPassed) / run;
}

/** Truncated, not rounded: 99.996% must not print as 100.00%. */
export function formatPercent(percent: number): string {
  return `${(Math.floor(percent * 100) / 100).toFixed(2)}%`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function printFileLine(result: FileResult): void {
  const notes: string[] = [];
  if (result.queriesSkipped > 0) notes.push(`${result.queriesSkipped} skipped`);
  if (result.timeouts > 0) notes.push(`${result.timeouts} timeouts`);
  if (result.halted) notes.push('halted');
  if (result.connectionLost) notes.push('CONNECTION LOST');
  for (const [keyword, count] of result.unsupported) notes.push(`${count} unsupported '${keyword}'`);
  const queriesRun = result.queriesPassed + result.queriesFailed;
  const statementsRun = result.statementsOk + result.statementsFailed;
  console.log(
    `  ${result.file}: queries ${result.queriesPassed}/${queriesRun}, statements ${result.statementsOk}/${statementsRun}` +
      `${notes.length > 0 ? ` (${notes.join(', ')})` : ''}, ${seconds(result.elapsedMs)}`,
  );
  // Cleanup failures are always kept: they can change the next file's results.
  for (const failure of result.failures) if (failure.kind === 'cleanup') console.log(`    cleanup failed: ${failure.sql}: ${failure.actual}`);
}

export function printFailures(result: FileResult): void {
  for (const failure of result.failures) {
    if (failure.kind === 'cleanup') continue;
    console.log(`--- ${result.file}:${failure.line}: ${failure.reason}`);
    if (failure.sql !== '') console.log(indent(failure.sql));
    console.log('  expected:');
    console.log(indent(failure.expected));
    console.log('  got:');
    console.log(indent(failure.actual));
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

function directoryOf(file: string): string {
  const directory = path.posix.dirname(file);
  return directory === '.' ? '(top)' : directory;
}

export function printSummary(results: readonly FileResult[], elapsedMs: number): void {
  const byDirectory = new Map<string, FileResult[]>();
  for (const result of results) {
    const directory = directoryOf(result.file);
    byDirectory.set(directory, [...(byDirectory.get(directory) ?? []), result]);
  }
  const rows = [...byDirectory.keys()].sort().map((directory) => [directory, totals(byDirectory.get(directory)!)] as const);
  const width = Math.max(9, ...rows.map(([directory]) => directory.length));
  console.log('');
  console.log(`${'directory'.padEnd(width)}  files  queries passed/run    score  skipped  statements ok/run  file time`);
  for (const [directory, sum] of rows) {
    const queriesRun = sum.queriesPassed + sum.queriesFailed;
    const statementsRun = sum.statementsOk + sum.statementsFailed;
    console.log(
      `${directory.padEnd(width)}  ${String(sum.files).padStart(5)}  ${`${sum.queriesPassed}/${queriesRun}`.padStart(18)}  ${formatPercent(scorePercent(sum)).padStart(7)}` +
        `  ${String(sum.queriesSkipped).padStart(7)}  ${`${sum.statementsOk}/${statementsRun}`.padStart(17)}  ${seconds(sum.elapsedMs).padStart(9)}`,
    );
  }
  const all = totals(results);
  if (all.timeouts > 0) console.log(`timeouts: ${all.timeouts}`);
  if (all.unsupported.size > 0) {
    console.log(`unsupported records: ${[...all.unsupported].map(([keyword, count]) => `'${keyword}' x${count}`).join(', ')}`);
  }
  console.log(`slt: ${all.queriesPassed}/${all.queriesPassed + all.queriesFailed} queries passed (${formatPercent(scorePercent(all))}), elapsed ${seconds(elapsedMs)}`);
}
