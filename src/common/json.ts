// JSON with bigints written as "<digits>n", for control state and message headers.

const bigintPattern = /^-?\d+n$/;

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${item}n` : item));
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text, (_key, item: unknown) => (typeof item === 'string' && bigintPattern.test(item) ? BigInt(item.slice(0, -1)) : item)) as T;
}
