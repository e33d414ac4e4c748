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
  if (slabUsed + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const copy = new Uint8Array(slab, slabUsed, length);
  slabUsed += (length + 7) & ~7;
  copy.set(bytes.subarray(start, end));
  return copy;
}
