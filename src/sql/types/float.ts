// float4 and float8: text input (float4in/float8in), output (PostgreSQL 12+'s shortest
// round-trip digits, extra_float_digits = 1), exact conversions to float32, and the
// arithmetic with PostgreSQL's overflow/underflow checks.
//
// A float4 is held in a JS number whose value is exactly representable as a float32.
// Output is PostgreSQL's Ryu (d2s.c, f2s.c) built with STRICTLY_SHORTEST 0: the shortest
// digits strictly inside the interval of reals that round to the value (a bound is never
// printed, even when round-half-even would read it back correctly), closest to the value,
// ties to even. For float8, Number.prototype.toString gives the same digits except when its
// answer is a bound, which needs |x| ≥ 2^52; there, and for every float4 (JS has no float32
// printer), shortestDigits searches the interval exactly with bigints. float4 input rounds
// the decimal exactly when rounding through a double could be wrong.

import { SqlError } from '../../pgwire/session.js';

const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);

/** rint(): round half to even. */
export function roundHalfEven(value: number): number {
  if (!Number.isFinite(value)) return value;
  const rounded = Math.round(value);
  if (Math.abs(value % 1) !== 0.5) return rounded;
  return 2 * Math.round(value / 2);
}

const isCSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

// --- Output ---------------------------------------------------------------------------

/** float8out: 'NaN', 'Infinity', '-0', '0.1', '1e+21', '1.5e-07', '123456789012345'. */
export function formatFloat8(value: number): string {
  const special = formatSpecial(value);
  if (special !== null) return special;
  const magnitude = Math.abs(value);
  // JS's shortest digits may sit exactly on the rounding interval's bound, which PostgreSQL
  // never prints; that can only happen from 2^52 up, where the exact search takes over.
  const { digits, exponent } = magnitude < 2 ** 51 ? parseJsDigits(String(magnitude)) : shortestFloat64Digits(magnitude);
  return (value < 0 ? '-' : '') + layoutDigits(digits, exponent, 15);
}

/** float4out: the shortest digits that read back as the same float32. */
export function formatFloat4(value: number): string {
  const special = formatSpecial(value);
  if (special !== null) return special;
  const { digits, exponent } = shortestFloat32Digits(Math.abs(value));
  return (value < 0 ? '-' : '') + layoutDigits(digits, exponent, 6);
}

function formatSpecial(value: number): string | null {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  return null;
}

/** Digits and the power of ten of the first digit, from JS's shortest form ('1.5e-7', '123.4'). */
function parseJsDigits(text: string): { digits: string; exponent: number } {
  const [mantissa, exponentText] = text.split('e') as [string, string | undefined];
  const point = mantissa.indexOf('.');
  const integerPart = point < 0 ? mantissa : mantissa.slice(0, point);
  const allDigits = mantissa.replace('.', '');
  const leadingZeros = allDigits.length - allDigits.replace(/^0+/, '').length;
  const digits = allDigits.slice(leadingZeros).replace(/0+$/, '');
  const exponent = integerPart.length - 1 - leadingZeros + (exponentText === undefined ? 0 : Number(exponentText));
  return { digits, exponent };
}

/**
 * Ryu's to_chars as PostgreSQL modified it: fixed notation when -4 ≤ exponent < limit
 * (15 for float8, 6 for float4, matching %g), else d.ddde±XX with at least two exponent digits.
 */
function layoutDigits(digits: string, exponent: number, fixedExponentLimit: number): string {
  if (exponent >= -4 && exponent < fixedExponentLimit) {
    if (exponent < 0) return `0.${'0'.repeat(-exponent - 1)}${digits}`;
    if (digits.length <= exponent + 1) return digits + '0'.repeat(exponent + 1 - digits.length);
    return `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  }
  const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  const sign = exponent < 0 ? '-' : '+';
  return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

/** The shortest round-trip digits of a positive finite float32. */
export function shortestFloat32Digits(value: number): { digits: string; exponent: number } {
  float32[0] = value;
  const bits = float32Bits[0]!;
  const biasedExponent = (bits >>> 23) & 0xff;
  const fraction = bits & 0x7fffff;
  const mantissa = biasedExponent === 0 ? fraction : fraction | 0x800000;
  const binaryExponent = (biasedExponent === 0 ? 1 : biasedExponent) - 150;
  // The gap below is half as wide at a power of two (except at the smallest normal).
  const narrowBelow = fraction === 0 && biasedExponent > 1;
  return shortestDigits(BigInt(mantissa), binaryExponent, narrowBelow);
}

/** The same search for a positive finite double (used to cross-check against JS). */
export function shortestFloat64Digits(value: number): { digits: string; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biasedExponent === 0 ? fraction : fraction | (1n << 52n);
  const binaryExponent = (biasedExponent === 0 ? 1 : biasedExponent) - 1075;
  return shortestDigits(mantissa, binaryExponent, fraction === 0n && biasedExponent > 1);
}

/**
 * The shortest decimal n × 10^t strictly inside the interval of reals that round to m × 2^e,
 * and of those the closest to it (ties to an even n). The bounds are excluded whatever the
 * parity of m, as PostgreSQL's Ryu (acceptBounds = false).
 */
function shortestDigits(mantissa: bigint, binaryExponent: number, narrowBelow: boolean): { digits: string; exponent: number } {
  // Work in units of 2^(e-2): value 4m, upper bound 4m+2, lower bound 4m-2 (or 4m-1).
  const shift = binaryExponent - 2;
  const scaleUp = shift >= 0 ? 1n << BigInt(shift) : 1n;
  const denominator = shift >= 0 ? 1n : 1n << BigInt(-shift);
  const center = 4n * mantissa * scaleUp;
  const upper = (4n * mantissa + 2n) * scaleUp;
  const lower = (4n * mantissa - (narrowBelow ? 1n : 2n)) * scaleUp;
  const approximate = Number(mantissa) * 2 ** binaryExponent;
  let unitExponent = Math.ceil(Math.log10(approximate)) + 1;
  for (;;) {
    let numeratorScale = 1n;
    let unitDenominator = denominator;
    if (unitExponent >= 0) unitDenominator *= 10n ** BigInt(unitExponent);
    else numeratorScale = 10n ** BigInt(-unitExponent);
    const low = lower * numeratorScale;
    const high = upper * numeratorScale;
    // The smallest n above the lower bound and the largest below the upper bound.
    const first = low / unitDenominator + 1n;
    const last = (high - 1n) / unitDenominator;
    if (first <= last) {
      const nearest = divideRoundHalfEven(center * numeratorScale, unitDenominator);
      const chosen = nearest < first ? first : nearest > last ? last : nearest;
      const text = chosen.toString();
      const digits = text.replace(/0+$/, '');
      return { digits, exponent: unitExponent + text.length - 1 };
    }
    unitExponent--;
  }
}

function divideRoundHalfEven(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  const twice = (numerator % denominator) * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) return quotient + 1n;
  return quotient;
}

// --- Input ----------------------------------------------------------------------------

interface FloatSyntax {
  /** The number as written (after leading whitespace), for error messages. */
  matched: string;
  special: number | null;
  negative: boolean;
  /** Digits (integer and fraction), and the power of ten of the last one. */
  digits: string;
  exponent: number;
  /** A hexadecimal float: mantissa × 2^binaryExponent (digits is then '0' or '1'). */
  hex: { mantissa: bigint; binaryExponent: number } | null;
  end: number;
}

const numberPattern = /^[+-]?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?/;
const hexPattern = /^[+-]?0[xX](?:([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?|\.([0-9a-fA-F]+))(?:[pP]([+-]?\d+))?/;
const specialPattern = /^([+-]?)(infinity|inf|nan(?:\([0-9A-Za-z_]*\))?)/i;

/**
 * strtod's syntax (glibc, which PostgreSQL 15 on Linux uses): a decimal with an optional
 * exponent, a hexadecimal float (0x1.8p3), inf/infinity/nan/nan(chars) with a sign.
 */
function scanFloat(text: string, start: number): FloatSyntax | null {
  const rest = text.slice(start);
  const special = specialPattern.exec(rest);
  if (special !== null) {
    const negative = special[1] === '-';
    const value = special[2]!.toLowerCase().startsWith('nan') ? NaN : negative ? -Infinity : Infinity;
    return { matched: special[0], special: value, negative, digits: '', exponent: 0, hex: null, end: start + special[0].length };
  }
  const hex = hexPattern.exec(rest);
  if (hex !== null) {
    const fraction = hex[2] ?? hex[3] ?? '';
    const mantissa = BigInt(`0x${(hex[1] ?? '') + fraction || '0'}`);
    const binaryExponent = clampExponent(hex[4]) - 4 * fraction.length;
    return { matched: hex[0], special: null, negative: hex[0].startsWith('-'), digits: mantissa === 0n ? '0' : '1', exponent: 0, hex: { mantissa, binaryExponent }, end: start + hex[0].length };
  }
  const match = numberPattern.exec(rest);
  if (match === null) return null;
  const integerDigits = match[1] ?? '';
  const fractionDigits = match[2] ?? match[3] ?? '';
  return {
    matched: match[0],
    special: null,
    negative: match[0].startsWith('-'),
    digits: integerDigits + fractionDigits,
    exponent: clampExponent(match[4]) - fractionDigits.length,
    hex: null,
    end: start + match[0].length,
  };
}

/** An exponent beyond any float's range stays finite: the value is 0 or ∞ either way. */
function clampExponent(text: string | undefined): number {
  return text === undefined ? 0 : Math.max(-1e6, Math.min(1e6, Number(text)));
}

/**
 * mantissa × 2^exponent rounded once (half to even) to a float of `precisionBits` bits whose
 * least significant bit is at least 2^lsbExponentMin (subnormals), as strtod/strtof do.
 */
function roundBinary(mantissa: bigint, exponent: number, precisionBits: number, lsbExponentMin: number): number {
  if (mantissa === 0n) return 0;
  const bitLength = mantissa.toString(2).length;
  const shift = Math.max(bitLength - precisionBits, lsbExponentMin - exponent);
  let kept: bigint;
  if (shift <= 0) {
    kept = mantissa << BigInt(-shift);
  } else {
    kept = mantissa >> BigInt(shift);
    const remainder = mantissa - (kept << BigInt(shift));
    const half = 1n << BigInt(shift - 1);
    if (remainder > half || (remainder === half && (kept & 1n) === 1n)) kept += 1n;
  }
  return Number(kept) * 2 ** (exponent + shift);
}

type FloatTypeWord = 'double precision' | 'real';

function invalidFloatSyntax(typeWord: FloatTypeWord, text: string): SqlError {
  return new SqlError('22P02', `invalid input syntax for type ${typeWord}: "${text}"`);
}

function readFloat(text: string, typeWord: FloatTypeWord): { syntax: FloatSyntax; value: number } {
  let position = 0;
  while (isCSpace(text[position])) position++;
  if (position === text.length) throw invalidFloatSyntax(typeWord, text);
  const syntax = scanFloat(text, position);
  if (syntax === null) throw invalidFloatSyntax(typeWord, text);
  let value: number;
  if (syntax.special !== null) {
    value = syntax.special;
  } else {
    value = syntax.hex !== null
      ? roundBinary(syntax.hex.mantissa, syntax.hex.binaryExponent, typeWord === 'real' ? 24 : 53, typeWord === 'real' ? -149 : -1074)
      : typeWord === 'real' ? decimalToFloat32(syntax) : Number(syntax.matched);
    if (syntax.hex !== null && syntax.negative) value = -value;
    if (typeWord === 'real') value = Math.fround(value);
    // strtod/strtof report ERANGE; PostgreSQL errors only when the result is 0 or ∞.
    const nonzero = /[1-9]/.test(syntax.digits);
    if (!Number.isFinite(value) || (value === 0 && nonzero)) {
      const shown = typeWord === 'real' ? text : syntax.matched;
      throw new SqlError('22003', `"${shown}" is out of range for type ${typeWord}`);
    }
  }
  position = syntax.end;
  while (isCSpace(text[position])) position++;
  if (position !== text.length) throw invalidFloatSyntax(typeWord, text);
  return { syntax, value };
}

/** float8in. */
export function parseFloat8(text: string): number {
  return readFloat(text, 'double precision').value;
}

/** float4in (strtof: the decimal rounded once, straight to float32). */
export function parseFloat4(text: string): number {
  return readFloat(text, 'real').value;
}

/**
 * A decimal rounded to the nearest float32. Rounding to double first and then to float32
 * is right unless the double lands exactly halfway between two float32s; only then is the
 * decimal compared exactly with that midpoint.
 */
function decimalToFloat32(syntax: FloatSyntax): number {
  const double = Number(syntax.matched);
  const single = Math.fround(double);
  if (single === double || !Number.isFinite(double)) return single;
  const magnitude = Math.abs(double);
  const below = Math.fround(magnitude) <= magnitude ? Math.fround(magnitude) : previousFloat32(Math.fround(magnitude));
  const above = nextFloat32(below);
  const midpoint = (below + above) / 2;
  if (magnitude !== midpoint) return single;
  const comparison = compareDecimalWithDouble(syntax.digits, syntax.exponent, midpoint);
  const chosen = comparison > 0 ? above : comparison < 0 ? below : Math.fround(midpoint);
  return syntax.negative ? -chosen : chosen;
}

/** The next float32 above a non-negative float32 (2^128 past the largest, as a double). */
function nextFloat32(value: number): number {
  float32[0] = value;
  if (float32Bits[0] === 0x7f7fffff) return 2 ** 128;
  float32Bits[0] = float32Bits[0]! + 1;
  return float32[0]!;
}

function previousFloat32(value: number): number {
  if (value === Infinity) return 3.4028234663852886e38;
  float32[0] = value;
  float32Bits[0] = float32Bits[0]! - 1;
  return float32[0]!;
}

/** Sign of digits × 10^exponent − value, exactly (value a positive finite double). */
function compareDecimalWithDouble(digits: string, exponent: number, value: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biasedExponent === 0 ? fraction : fraction | (1n << 52n);
  const binaryExponent = (biasedExponent === 0 ? 1 : biasedExponent) - 1075;
  let left = BigInt(digits === '' ? '0' : digits);
  let right = mantissa;
  if (exponent >= 0) left *= 10n ** BigInt(exponent);
  else right *= 10n ** BigInt(-exponent);
  if (binaryExponent >= 0) right <<= BigInt(binaryExponent);
  else left <<= BigInt(-binaryExponent);
  return left > right ? 1 : left < right ? -1 : 0;
}

/** An int8 rounded once to the nearest float32 ((float4) int64). */
export function bigIntToFloat32(value: bigint): number {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString();
  const syntax: FloatSyntax = { matched: value.toString(), special: null, negative, digits, exponent: 0, hex: null, end: 0 };
  return decimalToFloat32(syntax);
}

// --- Arithmetic -----------------------------------------------------------------------

export type FloatOperator = '+' | '-' | '*' | '/';

function floatOverflow(): SqlError {
  return new SqlError('22003', 'value out of range: overflow');
}

function floatUnderflow(): SqlError {
  return new SqlError('22003', 'value out of range: underflow');
}

/**
 * float8pl/mi/mul/div (and float4's with `single`): an infinite result from finite inputs
 * overflows, a zero product or quotient from nonzero inputs underflows, x / 0 is 22012.
 * float4 operations computed in double and rounded once are correctly rounded.
 */
export function floatArithmetic(operator: FloatOperator, a: number, b: number, single: boolean): number {
  let result: number;
  switch (operator) {
    case '+':
      result = a + b;
      break;
    case '-':
      result = a - b;
      break;
    case '*':
      result = a * b;
      break;
    case '/':
      if (b === 0 && !Number.isNaN(a)) throw new SqlError('22012', 'division by zero');
      result = a / b;
      break;
  }
  if (single) result = Math.fround(result);
  if (!Number.isFinite(result) && !Number.isNaN(result) && Number.isFinite(a) && Number.isFinite(b)) throw floatOverflow();
  if (result === 0 && (operator === '*' || operator === '/') && a !== 0 && (operator === '/' ? Number.isFinite(b) : b !== 0)) {
    throw floatUnderflow();
  }
  return result;
}

/** float8 → float4 (dtof): overflow and underflow are errors. */
export function float8ToFloat4(value: number): number {
  const result = Math.fround(value);
  if (!Number.isFinite(result) && Number.isFinite(value)) throw floatOverflow();
  if (result === 0 && value !== 0) throw floatUnderflow();
  return result;
}
