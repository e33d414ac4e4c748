// text, varchar(n), char(n) (bpchar), name and bytea: length coercion, comparison in the
// "C" collation, and bytea's text formats.
//
// Lengths are counted in characters (Unicode code points), as PostgreSQL counts them in a
// UTF8 database; JS strings are UTF-16, so counting and clipping walk code points. The "C"
// collation orders by UTF-8 bytes, which is code point order (not UTF-16 unit order).

import { SqlError } from '../../pgwire/session.js';

/** NAMEDATALEN - 1: a name keeps at most 63 bytes. */
export const NAME_BYTES_MAX = 63;
/** varchar(n)/char(n): n ≤ 10485760 (MaxAttrSize). */
export const CHARACTER_LENGTH_MAX = 10485760;
const typmodOffset = 4;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8Encode(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Code points in a string. */
export function characterLength(text: string): number {
  let count = 0;
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit >= 0xd800 && unit <= 0xdbff && index + 1 < text.length) {
      const next = text.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) index++;
    }
    count++;
  }
  return count;
}

/** The UTF-16 offset just past the first `characters` code points. */
function offsetOfCharacter(text: string, characters: number): number {
  let index = 0;
  for (let count = 0; count < characters && index < text.length; count++) {
    const unit = text.charCodeAt(index);
    const paired = unit >= 0xd800 && unit <= 0xdbff && index + 1 < text.length && (text.charCodeAt(index + 1) & 0xfc00) === 0xdc00;
    index += paired ? 2 : 1;
  }
  return index;
}

const lengthOf = (typmod: number): number => typmod - typmodOffset;

/** The typmod of varchar(n)/char(n); errors as anychar_typmodin ('varchar' or 'char'). */
export function characterTypmod(length: number, typeWord: 'varchar' | 'char'): number {
  if (length < 1) throw new SqlError('22023', `length for type ${typeWord} must be at least 1`);
  if (length > CHARACTER_LENGTH_MAX) throw new SqlError('22023', `length for type ${typeWord} cannot exceed ${CHARACTER_LENGTH_MAX}`);
  return length + typmodOffset;
}

/**
 * varchar(n) length coercion (varchar()) and input (varchar_input, with explicit = false):
 * a longer value is clipped; unless the cast is explicit, only spaces may be clipped.
 */
export function coerceVarchar(text: string, typmod: number, explicit: boolean): string {
  const length = lengthOf(typmod);
  if (typmod < typmodOffset || text.length <= length) return text;
  const clipAt = offsetOfCharacter(text, length);
  if (clipAt === text.length) return text;
  if (!explicit && !onlySpaces(text, clipAt)) {
    throw new SqlError('22001', `value too long for type character varying(${length})`);
  }
  return text.slice(0, clipAt);
}

/** char(n) length coercion (bpchar()) and input (bpchar_input): clip as varchar, pad with spaces. */
export function coerceBpchar(text: string, typmod: number, explicit: boolean): string {
  if (typmod < typmodOffset) return text;
  const length = lengthOf(typmod);
  const characters = characterLength(text);
  if (characters === length) return text;
  if (characters < length) return text + ' '.repeat(length - characters);
  const clipAt = offsetOfCharacter(text, length);
  if (!explicit && !onlySpaces(text, clipAt)) {
    throw new SqlError('22001', `value too long for type character(${length})`);
  }
  return text.slice(0, clipAt);
}

function onlySpaces(text: string, from: number): boolean {
  for (let index = from; index < text.length; index++) if (text.charCodeAt(index) !== 0x20) return false;
  return true;
}

/** char(n) without its padding, as bpchar → text/varchar casts (rtrim1) and comparisons see it. */
export function trimBpchar(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x20) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** namein: at most 63 bytes, clipped at a character boundary without error. */
export function toName(text: string): string {
  const bytes = utf8Encode(text);
  if (bytes.length <= NAME_BYTES_MAX) return text;
  let end = NAME_BYTES_MAX;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** Code point order (UTF-8 byte order), as PostgreSQL's "C" collation compares text. */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    let x = a.charCodeAt(index);
    let y = b.charCodeAt(index);
    if (x === y) continue;
    // Surrogates (U+10000 and up) sort above U+E000..U+FFFF in code point order.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** bpcharcmp: trailing spaces do not count. */
export function compareBpchar(a: string, b: string): number {
  return compareCodePoints(trimBpchar(a), trimBpchar(b));
}

/** memcmp, then the shorter first (byteacmp). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    if (a[index] !== b[index]) return a[index]! < b[index]! ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * Wire text (textrecv and friends): UTF-8 that PostgreSQL's verifier accepts — no NUL,
 * no surrogates, no overlong forms — else 22021 naming the offending bytes.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  const invalidAt = invalidUtf8Offset(bytes);
  if (invalidAt !== -1) {
    const lead = bytes[invalidAt]!;
    const expected = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    const shown = Array.from(bytes.subarray(invalidAt, Math.min(bytes.length, invalidAt + expected)), (byte) => `0x${byte.toString(16).padStart(2, '0')}`);
    throw new SqlError('22021', `invalid byte sequence for encoding "UTF8": ${shown.join(' ')}`);
  }
  return utf8Decoder.decode(bytes);
}

function invalidUtf8Offset(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index]!;
    if (lead === 0) return index;
    if (lead < 0x80) {
      index++;
      continue;
    }
    const length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length === 0 || index + length > bytes.length) return index;
    const second = bytes[index + 1]!;
    // The second byte's range excludes overlong forms, surrogates and code points > U+10FFFF.
    const secondMin = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const secondMax = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (second < secondMin || second > secondMax) return index;
    for (let continuation = 2; continuation < length; continuation++) {
      if ((bytes[index + continuation]! & 0xc0) !== 0x80) return index;
    }
    index += length;
  }
  return -1;
}

/** Text that PostgreSQL can store: no NUL characters (22021, as a NUL byte would be). */
export function checkTextValue(text: string): string {
  if (text.includes('\u0000')) throw new SqlError('22021', 'invalid byte sequence for encoding "UTF8": 0x00');
  return text;
}

// --- bytea ----------------------------------------------------------------------------

const hexDigits = '0123456789abcdef';

/** byteaout with bytea_output = hex. */
export function formatBytea(bytes: Uint8Array): string {
  let text = '\\x';
  for (const byte of bytes) text += hexDigits[byte >> 4]! + hexDigits[byte & 15]!;
  return text;
}

/** byteain: '\x' followed by hex pairs (whitespace between pairs), or the escape format. */
export function parseBytea(text: string): Uint8Array {
  if (text.startsWith('\\x')) return parseHexBytea(text.slice(2));
  return parseEscapeBytea(text);
}

function hexValue(character: string): number {
  const code = character.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

function parseHexBytea(hex: string): Uint8Array {
  const out: number[] = [];
  const characters = Array.from(hex);
  for (let index = 0; index < characters.length; ) {
    const character = characters[index]!;
    if (character === ' ' || character === '\n' || character === '\t' || character === '\r') {
      index++;
      continue;
    }
    const high = hexValue(character);
    if (high < 0) throw new SqlError('22023', `invalid hexadecimal digit: "${character}"`);
    const lowCharacter = characters[index + 1];
    if (lowCharacter === undefined) throw new SqlError('22023', 'invalid hexadecimal data: odd number of digits');
    const low = hexValue(lowCharacter);
    if (low < 0) throw new SqlError('22023', `invalid hexadecimal digit: "${lowCharacter}"`);
    out.push((high << 4) | low);
    index += 2;
  }
  return Uint8Array.from(out);
}

const isOctal = (byte: number | undefined, max = 0x37): boolean => byte !== undefined && byte >= 0x30 && byte <= max;

/** The escape format: bytes as written, '\\' for a backslash, '\ooo' (000-377) for any byte. */
function parseEscapeBytea(text: string): Uint8Array {
  const input = utf8Encode(text);
  const out = new Uint8Array(input.length);
  let length = 0;
  for (let index = 0; index < input.length; ) {
    const byte = input[index]!;
    if (byte !== 0x5c) {
      out[length++] = byte;
      index++;
    } else if (isOctal(input[index + 1], 0x33) && isOctal(input[index + 2]) && isOctal(input[index + 3])) {
      out[length++] = ((input[index + 1]! - 0x30) << 6) | ((input[index + 2]! - 0x30) << 3) | (input[index + 3]! - 0x30);
      index += 4;
    } else if (input[index + 1] === 0x5c) {
      out[length++] = 0x5c;
      index += 2;
    } else {
      throw new SqlError('22P02', 'invalid input syntax for type bytea');
    }
  }
  return out.slice(0, length);
}
