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

/** The UTF-8 bytes of `text` in a new array; short ASCII text (most values) without the encoder. */
export function utf8Bytes(text: string): Uint8Array {
  const length = text.length;
  if (length <= 64) {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) {
      const code = text.charCodeAt(index);
      if (code >= 0x80) return encoder.encode(text);
      bytes[index] = code;
    }
    return bytes;
  }
  return encoder.encode(text);
}
