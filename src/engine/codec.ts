// Values as bytes: a key encoding whose byte order (memcmp) is the values' order, so B+tree
// keys compare correctly, and a compact row encoding for the values a tuple carries.
//
// Invariants:
//  K1. For tuples a, b of the same column kinds: compare(encodeKey(a), encodeKey(b)) has the
//      sign of comparing a and b column by column (NULL after every other value, as
//      PostgreSQL's ascending default).
//  K2. A key encoding is prefix-free per column: no encoded tuple is a prefix of a different
//      one unless it has fewer columns, so a key followed by a suffix (a version's xid)
//      still sorts by the key first.
//  K3. decodeRow(encodeRow(values)) equals values.

import { assert } from '../common/index.js';

/** What a column can hold: int2/4/8 as bigint or number, float8, text, bool, bytea, NULL. */
export type Value = null | boolean | number | bigint | string | Uint8Array;

const enum Tag {
  False = 0x10,
  True = 0x11,
  Int = 0x20,
  Float = 0x30,
  Text = 0x40,
  Bytes = 0x50,
  Null = 0xf0, // after every other value
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const INT64_BIAS = 1n << 63n;

class Writer {
  bytes = new Uint8Array(64);
  length = 0;
  ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
  byte(value: number): void {
    this.ensure(1);
    this.bytes[this.length++] = value;
  }
  raw(data: Uint8Array): void {
    this.ensure(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }
  done(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

function intOf(value: number | bigint): bigint {
  const big = typeof value === 'bigint' ? value : BigInt(value);
  assert(big >= -INT64_BIAS && big < INT64_BIAS, `integer ${big} is outside int8`);
  return big;
}

/** Bytes with 0x00 escaped as 00 FF and ended by 00 01: order-preserving and prefix-free (K1, K2). */
function escaped(out: Writer, data: Uint8Array): void {
  out.ensure(2 * data.length + 2);
  const bytes = out.bytes;
  let at = out.length;
  for (let index = 0; index < data.length; index++) {
    const byte = data[index]!;
    bytes[at++] = byte;
    if (byte === 0) bytes[at++] = 0xff;
  }
  bytes[at++] = 0;
  bytes[at++] = 1;
  out.length = at;
}

/** Eight bytes, big endian, for a number's or a bigint's key. */
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

function keyPart(out: Writer, value: Value): void {
  if (value === null) return out.byte(Tag.Null);
  if (typeof value === 'boolean') return out.byte(value ? Tag.True : Tag.False);
  if (typeof value === 'bigint') {
    scratch.setBigUint64(0, intOf(value) + INT64_BIAS);
    out.ensure(9);
    out.bytes[out.length] = Tag.Int;
    out.bytes.set(scratchBytes, out.length + 1);
    out.length += 9;
    return;
  }
  if (typeof value === 'number') {
    scratch.setFloat64(0, Number.isNaN(value) ? Number.NaN : value === 0 ? 0 : value);
    // Positive: flip the sign bit; negative: flip every bit. NaN sorts above +Infinity, as in PostgreSQL.
    const negative = (scratchBytes[0]! & 0x80) !== 0;
    out.ensure(9);
    const bytes = out.bytes;
    let at = out.length;
    bytes[at++] = Tag.Float;
    for (let index = 0; index < 8; index++) {
      const byte = scratchBytes[index]!;
      bytes[at++] = negative ? ~byte & 0xff : index === 0 ? byte ^ 0x80 : byte;
    }
    out.length = at;
    return;
  }
  if (typeof value === 'string') {
    out.byte(Tag.Text);
    return escaped(out, encoder.encode(value));
  }
  out.byte(Tag.Bytes);
  escaped(out, value);
}

/**
 * Key bytes for a tuple of values (K1, K2). Each JavaScript kind has its own tag: a
 * `number` (int2, int4, float4, float8 columns) is always ordered as a double, a `bigint`
 * (int8) as a 64-bit integer, so a column must hold one kind (the SQL layer sees to it).
 */
export function encodeKey(values: readonly Value[]): Uint8Array {
  const out = new Writer();
  for (const value of values) keyPart(out, value);
  return out.done();
}

/** The smallest key above every key that starts with `prefix` (an exclusive scan bound), or undefined if none. */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let last = prefix.length - 1;
  while (last >= 0 && prefix[last] === 0xff) last--;
  if (last < 0) return undefined;
  // A new array, never a view of the argument (a Buffer's slice() would be one).
  const end = new Uint8Array(last + 1);
  for (let index = 0; index < last; index++) end[index] = prefix[index]!;
  end[last] = prefix[last]! + 1;
  return end;
}

// ---------------------------------------------------------------- rows

const enum RowTag {
  Null = 0,
  False = 1,
  True = 2,
  Int32 = 3,
  Int64 = 4,
  Float = 5,
  Text = 6,
  Bytes = 7,
  Number = 8, // an integral JavaScript number beyond int32 (kept as a number)
}

function varint(out: Writer, value: number): void {
  while (value >= 0x80) {
    out.byte((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.byte(value);
}

/** A row: its column count, then per value a tag and its bytes (K3). */
export function encodeRow(values: readonly Value[]): Uint8Array {
  const out = new Writer();
  varint(out, values.length);
  const scratch = new DataView(new ArrayBuffer(8));
  const fixed = (bytes: number): void => out.raw(new Uint8Array(scratch.buffer, 0, bytes));
  for (const value of values) {
    if (value === null) out.byte(RowTag.Null);
    else if (typeof value === 'boolean') out.byte(value ? RowTag.True : RowTag.False);
    else if (typeof value === 'bigint') {
      out.byte(RowTag.Int64);
      scratch.setBigInt64(0, intOf(value), true);
      fixed(8);
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && value >= -0x8000_0000 && value <= 0x7fff_ffff && !Object.is(value, -0)) {
        out.byte(RowTag.Int32);
        scratch.setInt32(0, value, true);
        fixed(4);
      } else {
        out.byte(Number.isInteger(value) && !Object.is(value, -0) ? RowTag.Number : RowTag.Float);
        scratch.setFloat64(0, value, true);
        fixed(8);
      }
    } else if (typeof value === 'string') {
      out.byte(RowTag.Text);
      const bytes = encoder.encode(value);
      varint(out, bytes.length);
      out.raw(bytes);
    } else {
      out.byte(RowTag.Bytes);
      varint(out, value.length);
      out.raw(value);
    }
  }
  return out.done();
}

export function decodeRow(bytes: Uint8Array): Value[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const readVarint = (): number => {
    let result = 0;
    let scale = 1;
    for (;;) {
      const byte = bytes[at++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
    }
  };
  const count = readVarint();
  const values: Value[] = [];
  for (let column = 0; column < count; column++) {
    const tag = bytes[at++] as RowTag;
    switch (tag) {
      case RowTag.Null:
        values.push(null);
        break;
      case RowTag.False:
      case RowTag.True:
        values.push(tag === RowTag.True);
        break;
      case RowTag.Int32:
        values.push(view.getInt32(at, true));
        at += 4;
        break;
      case RowTag.Int64:
        values.push(view.getBigInt64(at, true));
        at += 8;
        break;
      case RowTag.Float:
      case RowTag.Number:
        values.push(view.getFloat64(at, true));
        at += 8;
        break;
      case RowTag.Text:
      case RowTag.Bytes: {
        const length = readVarint();
        const data = bytes.subarray(at, at + length);
        at += length;
        values.push(tag === RowTag.Text ? decoder.decode(data) : data.slice());
        break;
      }
      default:
        throw new Error(`corrupt row: tag ${tag} at byte ${at - 1}`);
    }
  }
  assert(at === bytes.length, `corrupt row: ${bytes.length - at} trailing bytes`);
  return values;
}

/** The length of the first `count` encoded values of a key (to split a composite key). */
export function keyPartsLength(key: Uint8Array, count: number): number {
  let at = 0;
  for (let part = 0; part < count; part++) {
    const tag = key[at++];
    switch (tag) {
      case Tag.Null:
      case Tag.False:
      case Tag.True:
        break;
      case Tag.Int:
      case Tag.Float:
        at += 8;
        break;
      case Tag.Text:
      case Tag.Bytes:
        for (;;) {
          const byte = key[at++];
          if (byte === undefined) throw new Error('corrupt key: unterminated text');
          if (byte === 0) {
            if (key[at++] === 1) break;
          }
        }
        break;
      default:
        throw new Error(`corrupt key: tag ${tag} at byte ${at - 1}`);
    }
  }
  return at;
}

/** The values of an encoded key (for messages such as "Key (id)=(1) already exists"). */
export function decodeKey(key: Uint8Array, count: number): Value[] {
  const values: Value[] = [];
  let at = 0;
  for (let part = 0; part < count; part++) {
    const start = at;
    at = start + keyPartsLength(key.subarray(start), 1);
    const tag = key[start];
    if (tag === Tag.Null) values.push(null);
    else if (tag === Tag.False || tag === Tag.True) values.push(tag === Tag.True);
    else if (tag === Tag.Int) {
      let biased = 0n;
      for (let index = 1; index <= 8; index++) biased = (biased << 8n) | BigInt(key[start + index]!);
      values.push(biased - INT64_BIAS);
    } else if (tag === Tag.Float) {
      const bits = new DataView(new ArrayBuffer(8));
      const negative = (key[start + 1]! & 0x80) === 0;
      for (let index = 0; index < 8; index++) {
        const byte = key[start + 1 + index]!;
        bits.setUint8(index, negative ? ~byte & 0xff : index === 0 ? byte ^ 0x80 : byte);
      }
      values.push(bits.getFloat64(0));
    } else {
      const raw: number[] = [];
      for (let index = start + 1; index < at - 2; index++) {
        raw.push(key[index]!);
        if (key[index] === 0) index++; // skip the 0xFF escape
      }
      const bytes = Uint8Array.from(raw);
      values.push(tag === Tag.Text ? decoder.decode(bytes) : bytes);
    }
  }
  return values;
}
