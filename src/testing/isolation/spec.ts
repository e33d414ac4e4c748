// Isolation specs: PostgreSQL's isolation-tester idea in our own format. A spec has a setup
// (SQL run before each permutation on a fresh database), sessions with optional setup and
// named steps (SQL), and permutations (step orders), each followed by the outcome it must
// give, one line per step outcome in the order outcomes happen:
//
//   permutation s1r s2w s1c
//   > s1r: 1|100
//   > s2w: waiting          (the step blocked on a lock; the runner went on)
//   > s1c: ok
//   > s2w: ok               (the blocked step finished)
//
// A step's outcome is `ok` (a command), its rows (values joined by |, rows by " ; ",
// "(no rows)" when empty), `ERROR <SQLSTATE>`, or `waiting`. Steps are SQL statements so
// that any runner (the engine's, the wire protocol's against Boreal or PostgreSQL 15) can
// run them and be held to the same outcomes.

export interface Step {
  name: string;
  session: string;
  sql: string;
}

export interface Session {
  name: string;
  setup: string | undefined;
  steps: Step[];
}

export interface Permutation {
  steps: string[];
  expect: string[];
}

export interface Spec {
  name: string;
  setup: string;
  sessions: Session[];
  permutations: Permutation[];
}

/** Parses a spec; throws with the line number on anything it does not understand. */
export function parseSpec(name: string, text: string): Spec {
  const spec: Spec = { name, setup: '', sessions: [], permutations: [] };
  const lines = text.split('\n');
  let at = 0;
  const fail = (message: string): never => {
    throw new Error(`${name}:${at + 1}: ${message}`);
  };
  /** A { ... } block starting on line `at` (after `prefix`), possibly spanning lines. */
  const block = (rest: string): string => {
    let text = rest.trim();
    if (!text.startsWith('{')) fail('expected {');
    text = text.slice(1);
    const parts: string[] = [];
    for (;;) {
      const close = text.lastIndexOf('}');
      if (close >= 0 && text.slice(close + 1).trim() === '') {
        parts.push(text.slice(0, close));
        return parts.join('\n').trim();
      }
      parts.push(text);
      at++;
      if (at >= lines.length) fail('unterminated {');
      text = lines[at]!;
    }
  };
  let session: Session | undefined;
  for (; at < lines.length; at++) {
    const line = lines[at]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [word, ...restWords] = line.split(/\s+/);
    const rest = line.slice(word!.length);
    if (word === 'setup') {
      if (session === undefined) spec.setup = block(rest);
      else session.setup = block(rest);
    } else if (word === 'session') {
      session = { name: restWords[0] ?? fail('session needs a name'), setup: undefined, steps: [] };
      spec.sessions.push(session);
    } else if (word === 'step') {
      if (session === undefined) fail('step outside a session');
      const stepName = restWords[0] ?? fail('step needs a name');
      session!.steps.push({ name: stepName, session: session!.name, sql: block(rest.trim().slice(stepName.length)) });
    } else if (word === 'permutation') {
      spec.permutations.push({ steps: restWords, expect: [] });
      session = undefined;
    } else if (word === '>') {
      const permutation = spec.permutations[spec.permutations.length - 1] ?? fail('expectation before any permutation');
      permutation.expect.push(line.slice(1).trim());
    } else fail(`unexpected "${word}"`);
  }
  const steps = new Set(spec.sessions.flatMap((each) => each.steps.map((step) => step.name)));
  for (const permutation of spec.permutations) {
    for (const step of permutation.steps) if (!steps.has(step)) throw new Error(`${name}: permutation names unknown step ${step}`);
    if (permutation.expect.length === 0) throw new Error(`${name}: permutation ${permutation.steps.join(' ')} has no expected outcome`);
  }
  return spec;
}

/** What a runner needs from a session: run one step's SQL, and say whether it is blocked on a lock. */
export interface SpecSession {
  run(sql: string): Promise<string>;
  isWaiting(): boolean;
  close(): Promise<void>;
}

/**
 * Runs one permutation and returns the outcome lines. `open` gives a fresh session on the
 * database the setup ran on. A step runs until it finishes or its session waits for a lock;
 * a waiting step's outcome is reported when it finishes, and the runner waits for some
 * pending step to finish when the next step belongs to a blocked session.
 */
export async function runPermutation(spec: Spec, permutation: Permutation, open: () => Promise<SpecSession>, options: { stepTimeoutMs?: number } = {}): Promise<string[]> {
  const timeout = options.stepTimeoutMs ?? 10_000;
  const out: string[] = [];
  const sessions = new Map<string, SpecSession>();
  for (const each of spec.sessions) {
    const session = await open();
    sessions.set(each.name, session);
    if (each.setup !== undefined) await session.run(each.setup);
  }
  const stepByName = new Map(spec.sessions.flatMap((each) => each.steps.map((step) => [step.name, step] as const)));
  const pending = new Map<string, { step: Step; promise: Promise<string>; done: boolean; result: string }>();

  const settle = async (): Promise<void> => {
    // Run until quiet: every pending step has finished or waits for a lock again.
    const deadline = Date.now() + timeout;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const busy = [...pending.values()].some((entry) => !entry.done && !sessions.get(entry.step.session)!.isWaiting());
      if (!busy) break;
      if (Date.now() > deadline) throw new Error(`${spec.name}: pending steps neither finish nor wait`);
    }
    for (const [session, entry] of [...pending]) {
      if (entry.done) {
        out.push(`${entry.step.name}: ${entry.result}`);
        pending.delete(session);
      }
    }
  };

  const start = (step: Step): { step: Step; promise: Promise<string>; done: boolean; result: string } => {
    const entry = { step, promise: undefined as unknown as Promise<string>, done: false, result: '' };
    entry.promise = sessions
      .get(step.session)!
      .run(step.sql)
      .then(
        (result) => result,
        (error: unknown) => `ERROR ${(error as { sqlState?: string; code?: string }).sqlState ?? (error as { code?: string }).code ?? String(error)}`,
      )
      .then((result) => {
        entry.result = result;
        entry.done = true;
        return result;
      });
    return entry;
  };

  for (const name of permutation.steps) {
    const step = stepByName.get(name)!;
    // The session is still blocked: wait for one of the pending steps to finish first.
    const deadline = Date.now() + timeout;
    while (pending.has(step.session)) {
      if (Date.now() > deadline) throw new Error(`${spec.name}: step ${name} cannot start: session ${step.session} stays blocked`);
      await Promise.race([...pending.values()].map((entry) => entry.promise).concat(new Promise<string>((resolve) => setTimeout(() => resolve(''), 50))));
      await settle();
    }
    const entry = start(step);
    const session = sessions.get(step.session)!;
    // Run until it finishes or blocks on a lock.
    const stepDeadline = Date.now() + timeout;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (entry.done) break;
      if (session.isWaiting()) break;
      if (Date.now() > stepDeadline) throw new Error(`${spec.name}: step ${name} neither finished nor waited for a lock`);
    }
    if (entry.done) {
      // Steps blocked earlier may have finished because of this one: report this one first, as it returned first.
      out.push(`${name}: ${entry.result}`);
      await settle();
    } else {
      out.push(`${name}: waiting`);
      pending.set(step.session, entry);
      await settle();
    }
  }
  const deadline = Date.now() + timeout;
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`${spec.name}: steps never finished: ${[...pending.values()].map((entry) => entry.step.name).join(', ')}`);
    await Promise.race([...pending.values()].map((entry) => entry.promise).concat(new Promise<string>((resolve) => setTimeout(() => resolve(''), 50))));
    await settle();
  }
  for (const session of sessions.values()) await session.close();
  return out;
}
