// A small seeded generator (xorshift128+ on two 32-bit halves via BigInt-free math).
// The simulator and every randomized choice in core logic draw from one of these, so a
// seed replays a run exactly.

export interface Random {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, bound). */
  integer(bound: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
}

export class SeededRandom implements Random {
  private state: number;
  constructor(seed: number) {
    this.state = (seed >>> 0) ^ 0x9e3779b9;
    if (this.state === 0) this.state = 0x1234567;
  }
  next(): number {
    // mulberry32: small, fast, good enough for fault injection.
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let value = this.state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  }
  integer(bound: number): number {
    return Math.floor(this.next() * bound);
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from empty list');
    return items[this.integer(items.length)]!;
  }
}

/** Production randomness: not replayable, used only where no seed is wanted. */
export class MathRandom implements Random {
  next(): number {
    return Math.random();
  }
  integer(bound: number): number {
    return Math.floor(Math.random() * bound);
  }
  chance(probability: number): boolean {
    return Math.random() < probability;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from empty list');
    return items[Math.floor(Math.random() * items.length)]!;
  }
}
