// Programmer errors and broken invariants crash loudly: a storage system that keeps
// running after one of its invariants failed may serve wrong data.

export class AssertionFailure extends Error {
  override name = 'AssertionFailure';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

export function unreachable(value: never, what: string): never {
  throw new AssertionFailure(`unreachable ${what}: ${JSON.stringify(value)}`);
}
