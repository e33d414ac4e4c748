// The sqllogictest runner's command line: start (or reach) the server under test, run the
// selected scripts on a few connections, print a score per directory and overall.
//
//   npm run slt -- [--target boreal|postgres15 | --url URL] [--files GLOB]... [--jobs N]
//                  [--dir DIR] [--timeout-ms MS] [--verbose] [--min-score PERCENT]
//
// Exit code: 0 whatever the score, unless --min-score is given and the score is below it
// (1); 2 when the runner itself fails.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startPostgres15 } from '../postgres15.js';
import { PgSession } from './connection.js';
import { DEFAULT_FILE_GLOBS, listScriptFiles, selectFiles } from './files.js';
import { parseScript } from './parser.js';
import { runScript, type FileResult } from './runner.js';
import { formatPercent, printFileLine, printFailures, printSummary, scorePercent, totals } from './report.js';

/** dist/src/testing/slt/main.js → the repository root. */
const repositoryRoot = fileURLToPath(new URL('../../../../', import.meta.url));
/** Another engineer's module; until it is built, the default target is PostgreSQL 15. */
const borealTargetPath = fileURLToPath(new URL('../boreal-target.js', import.meta.url));

const statementTimeoutMsDefault = 10_000;
const jobsDefault = 2;
const jobsMax = 16;

interface Options {
  directory: string;
  files: string[];
  target: 'boreal' | 'postgres15' | undefined;
  url: string | undefined;
  jobs: number;
  statementTimeoutMs: number;
  verbose: boolean;
  minScorePercent: number | undefined;
}

interface Target {
  description: string;
  url: string;
  stop(): Promise<void>;
}

const usage = `usage: slt [--target boreal|postgres15 | --url URL] [--files GLOB]... [--jobs N] [--dir DIR]
           [--timeout-ms MS] [--verbose] [--min-score PERCENT]
  --target      server to start: boreal (default once dist/src/testing/boreal-target.js exists) or postgres15
  --url         run against a running server instead (postgres://user@host:port/db)
  --files       glob over paths relative to the corpus, repeatable or comma-separated
                (default: ${DEFAULT_FILE_GLOBS.join(', ')})
  --dir         the corpus directory (default: $SLT_DIR, else ../shared/slt from the repository root)
  --jobs        files run in parallel, one connection each (default ${jobsDefault})
  --timeout-ms  per-statement timeout (default ${statementTimeoutMsDefault})
  --verbose     print every failure: SQL, expected, got
  --min-score   exit 1 when the percentage of passed queries is below this`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      files: { type: 'string', multiple: true },
      target: { type: 'string' },
      url: { type: 'string' },
      jobs: { type: 'string' },
      'timeout-ms': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'min-score': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  const target = values.target;
  if (target !== undefined && target !== 'boreal' && target !== 'postgres15') throw new Error(`--target must be boreal or postgres15, not '${target}'`);
  if (target !== undefined && values.url !== undefined) throw new Error('give --target or --url, not both');
  const files = (values.files ?? []).flatMap((value) => value.split(',')).filter((glob) => glob !== '');
  return {
    directory: path.resolve(values.dir ?? process.env['SLT_DIR'] ?? path.join(repositoryRoot, '..', 'shared', 'slt')),
    files: files.length > 0 ? files : DEFAULT_FILE_GLOBS,
    target,
    url: values.url,
    jobs: positiveInteger('--jobs', values.jobs, jobsDefault, jobsMax),
    statementTimeoutMs: positiveInteger('--timeout-ms', values['timeout-ms'], statementTimeoutMsDefault, 3_600_000),
    verbose: values.verbose === true,
    minScorePercent: values['min-score'] === undefined ? undefined : Number(values['min-score']),
  };
}

function positiveInteger(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be an integer from 1 to ${max}`);
  return value;
}

async function startTarget(options: Options): Promise<Target> {
  if (options.url !== undefined) return { description: withoutPassword(options.url), url: options.url, stop: async () => undefined };
  const borealBuilt = fs.existsSync(borealTargetPath);
  const target = options.target ?? (borealBuilt ? 'boreal' : 'postgres15');
  if (target === 'boreal') {
    if (!borealBuilt) throw new Error(`--target boreal needs ${borealTargetPath} (src/testing/boreal-target.ts, not written yet)`);
    // BOREAL HOOK: src/testing/boreal-target.ts exports startBoreal(): Promise<{ url, stop() }>.
    const module = (await import(pathToFileURL(borealTargetPath).href)) as { startBoreal?: () => Promise<{ url: string; stop(): Promise<void> }> };
    if (typeof module.startBoreal !== 'function') throw new Error(`${borealTargetPath} does not export startBoreal()`);
    const boreal = await module.startBoreal();
    return { description: `boreal at ${withoutPassword(boreal.url)}`, url: boreal.url, stop: () => boreal.stop() };
  }
  if (options.target === undefined) console.log('slt: no Boreal target built yet (src/testing/boreal-target.ts); running against PostgreSQL 15');
  const server = await startPostgres15({ maxConnections: 20 });
  return { description: `postgresql 15 at ${server.url}`, url: server.url, stop: () => server.stop() };
}

function withoutPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

/**
 * One database per worker, so parallel files never see each other's t1. A server without
 * CREATE DATABASE (Boreal, for now) gets one worker on the URL's database.
 */
async function prepareWorkerDatabases(url: string, jobs: number): Promise<{ urls: string[]; drop(): Promise<void> }> {
  const names = Array.from({ length: jobs }, (_, index) => `slt_${process.pid}_${index + 1}`);
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    for (const name of names) await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    for (const name of names) await admin.query(`DROP DATABASE IF EXISTS ${name}`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    if (jobs > 1) console.log(`slt: CREATE DATABASE failed (${(error as Error).message}); running 1 job on the URL's database`);
    return { urls: [url], drop: async () => undefined };
  }
  await admin.end();
  const urls = names.map((name) => {
    const workerUrl = new URL(url);
    workerUrl.pathname = `/${name}`;
    return workerUrl.toString();
  });
  const drop = async (): Promise<void> => {
    const cleaner = new pg.Client({ connectionString: url });
    cleaner.on('error', () => undefined);
    await cleaner.connect();
    for (const name of names) await cleaner.query(`DROP DATABASE IF EXISTS ${name}`).catch(() => undefined);
    await cleaner.end();
  };
  return { urls, drop };
}

/** Each worker takes the next file from a shared queue; the biggest files go first so the tail is short. */
async function runFiles(options: Options, files: string[], workerUrls: string[]): Promise<FileResult[]> {
  const bytes = new Map(files.map((file) => [file, fs.statSync(path.join(options.directory, file)).size]));
  const queue = [...files].sort((left, right) => bytes.get(right)! - bytes.get(left)!);
  const results: FileResult[] = [];
  const worker = async (url: string): Promise<void> => {
    const session = new PgSession(url, options.statementTimeoutMs);
    try {
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
        const records = parseScript(fs.readFileSync(path.join(options.directory, file), 'utf8'));
        const result = await runScript(file, records, session, { keepFailures: options.verbose });
        results.push(result);
        printFileLine(result);
        if (options.verbose) printFailures(result);
      }
    } finally {
      await session.close();
    }
  };
  await Promise.all(workerUrls.map(worker));
  return results;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(options.directory)) throw new Error(`no sqllogictest corpus at ${options.directory} (give --dir or SLT_DIR)`);
  const files = selectFiles(listScriptFiles(options.directory), options.files);
  if (files.length === 0) throw new Error(`no .test files in ${options.directory} match ${options.files.join(', ')}`);
  const started = performance.now();
  const target = await startTarget(options);
  const stopOnInterrupt = (): void => void target.stop().finally(() => process.exit(130));
  process.once('SIGINT', stopOnInterrupt);
  let results: FileResult[];
  try {
    const databases = await prepareWorkerDatabases(target.url, Math.min(options.jobs, files.length));
    console.log(`slt: ${files.length} files from ${options.directory} on ${target.description}, ${databases.urls.length} job(s)`);
    try {
      results = await runFiles(options, files, databases.urls);
    } finally {
      await databases.drop();
    }
  } finally {
    process.removeListener('SIGINT', stopOnInterrupt);
    await target.stop();
  }
  const elapsedMs = performance.now() - started;
  printSummary(results, elapsedMs);
  const score = scorePercent(totals(results));
  if (options.minScorePercent !== undefined && score < options.minScorePercent) {
    console.log(`slt: score ${formatPercent(score)} is below --min-score ${options.minScorePercent}%`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`slt: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
