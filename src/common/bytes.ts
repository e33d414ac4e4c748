// Copies of short byte ranges. A Uint8Array longer than V8's on-heap limit (64 bytes) gets
// its own off-heap backing store, whose allocation and later collection cost several times
// the copy (about 1 us for a 100-byte slice() here, against 0.25 us from a slab). Copies
// between that limit and SLAB_COPY_MAX are views into a shared slab instead; a slab lives
// while any of its views does, so it is kept small.

const ON_HEAP_MAX = 64;
const SLAB_BYTES = 16 * 1024;
const SLAB_COPY_MAX = 1024;

let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** A copy of bytes[start, end): never a view of `bytes`, never changed by anyone else. */
export function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const length = end - start;
  if (length <= ON_HEAP_MAX || length > SLAB_COPY_MAX) return bytes.slice(start, end);
  const copy = allocBytes(length);
  copy.set(bytes.subarray(start, end));
  return copy;
}

/** A new zeroed array of `length` bytes, from a slab when that is cheaper (see above). */
export function allocBytes(length: number): Uint8Array {
  if (length <= ON_HEAP_MAX || length > SLAB_COPY_MAX) return new Uint8Array(length);
  if (slabUsed + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const bytes = new Uint8Array(slab, slabUsed, length);
  // Views start 8-byte aligned, so a DataView or a word-wise compare over one stays aligned.
  slabUsed += (length + 7) & ~7;
  return bytes;
}

/** The parts back to back in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const joined = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
