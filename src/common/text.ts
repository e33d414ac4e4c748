// UTF-8 bytes of the few names that frames carry over and over (segments, addresses).

const encoder = new TextEncoder();
const known = new Map<string, Uint8Array>();
const KNOWN_MAX = 4096;

/** The UTF-8 bytes of `text`, kept for the next call (up to 4,096 names). Do not modify them. */
export function nameBytes(text: string): Uint8Array {
  let bytes = known.get(text);
  if (bytes === undefined) {
    bytes = encoder.encode(text);
    if (known.size < KNOWN_MAX) known.set(text, bytes);
  }
  return bytes;
}
