// PostgreSQL's numeric: an exact decimal with a display scale, plus NaN and ±Infinity
// (PostgreSQL 14+). PostgreSQL stores base-10000 digits; we store the value as a signed
// bigint of decimal digits (`unscaled`) and the display scale (`scale`, PostgreSQL's
// dscale), value = unscaled / 10^scale. Every result is exact or rounded exactly once, so
// the arithmetic equals PostgreSQL's (its long division computes enough digits to round
// correctly). The base-10000 view is recomputed where PostgreSQL's rules depend on it:
// division's result scale (select_div_scale), the storage limits (weight and dscale are
// int16 fields) and the binary wire format.
//
// Rounding is half away from zero everywhere (round_var), as PostgreSQL.

import { SqlError } from '../../pgwire/session.js';

/** dscale is stored in 14 bits (NUMERIC_DSCALE_MAX). */
const displayScaleMax = 0x3fff;
/** The weight (base-10000 exponent of the leading digit) is an int16 (NUMERIC_WEIGHT_MAX). */
const weightMax = 32767;
/** round()/trunc() clamp their scale argument to ±NUMERIC_MAX_RESULT_SCALE. */
const resultScaleMax = 2000;
/** Division result scale bounds (NUMERIC_MIN_DISPLAY_SCALE, NUMERIC_MAX_DISPLAY_SCALE). */
const divisionScaleMin = 0;
const divisionScaleMax = 1000;
/** Division keeps at least this many significant digits (NUMERIC_MIN_SIG_DIGITS). */
const divisionSignificantDigitsMin = 16;
/** Base-10000 digits per PostgreSQL numeric digit (DEC_DIGITS). */
const decimalDigitsPerWord = 4;
/** numeric(p,s) bounds (PostgreSQL 15: the scale may be negative or exceed p). */
export const NUMERIC_PRECISION_MAX = 1000;
export const NUMERIC_SCALE_MIN = -1000;
export const NUMERIC_SCALE_MAX = 1000;
/** Typmods carry a 4-byte offset (VARHDRSZ), as PostgreSQL's. */
const typmodOffset = 4;

const binarySignPositive = 0x0000;
const binarySignNegative = 0x4000;
const binarySignNaN = 0xc000;
const binarySignPositiveInfinity = 0xd000;
const binarySignNegativeInfinity = 0xf000;

export type NumericKind = 'finite' | 'nan' | 'infinity' | '-infinity';

const powersOfTen: bigint[] = [1n];

/** 10^exponent as a bigint (cached: scales are small and reused constantly). */
export function powerOfTen(exponent: number): bigint {
  if (exponent < 0 || !Number.isInteger(exponent)) throw new Error(`powerOfTen(${exponent})`);
  if (exponent > 4096) return 10n ** BigInt(exponent);
  while (powersOfTen.length <= exponent) powersOfTen.push(powersOfTen[powersOfTen.length - 1]! * 10n);
  return powersOfTen[exponent]!;
}

const absolute = (value: bigint): bigint => (value < 0n ? -value : value);

/** Number of decimal digits of a non-negative bigint (1 for zero). */
function decimalDigitCount(value: bigint): number {
  return value.toString().length;
}

/** numerator / denominator rounded half away from zero (denominator ≠ 0). */
function divideRoundHalfAway(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  const remainder = numerator % denominator;
  if (remainder === 0n) return quotient;
  if (absolute(remainder) * 2n < absolute(denominator)) return quotient;
  return (numerator < 0n) === (denominator < 0n) ? quotient + 1n : quotient - 1n;
}

/** C's isspace in the "C" locale. */
export function isCSpace(character: string | undefined): boolean {
  return character === ' ' || character === '\t' || character === '\n' || character === '\v' || character === '\f' || character === '\r';
}

const isDigit = (character: string | undefined): boolean => character !== undefined && character >= '0' && character <= '9';

function invalidNumericSyntax(text: string): SqlError {
  return new SqlError('22P02', `invalid input syntax for type numeric: "${text}"`);
}

function overflowsNumericFormat(): SqlError {
  return new SqlError('22003', 'value overflows numeric format');
}

function divisionByZero(): SqlError {
  return new SqlError('22012', 'division by zero');
}

/** A numeric typmod's precision and scale, or null when the typmod is -1 (unconstrained). */
export function numericTypmodParts(typmod: number): { precision: number; scale: number } | null {
  if (typmod < typmodOffset) return null;
  const bits = typmod - typmodOffset;
  // The scale is an 11-bit two's-complement field (PostgreSQL 15 allows negative scales).
  return { precision: (bits >> 16) & 0xffff, scale: ((bits & 0x7ff) ^ 1024) - 1024 };
}

/** The typmod of numeric(precision, scale); errors as numerictypmodin. */
export function numericTypmod(precision: number, scale = 0): number {
  if (precision < 1 || precision > NUMERIC_PRECISION_MAX) {
    throw new SqlError('22023', `NUMERIC precision ${precision} must be between 1 and ${NUMERIC_PRECISION_MAX}`);
  }
  if (scale < NUMERIC_SCALE_MIN || scale > NUMERIC_SCALE_MAX) {
    throw new SqlError('22023', `NUMERIC scale ${scale} must be between ${NUMERIC_SCALE_MIN} and ${NUMERIC_SCALE_MAX}`);
  }
  return ((precision << 16) | (scale & 0x7ff)) + typmodOffset;
}

export class Numeric {
  static readonly NaN = new Numeric('nan', 0n, 0);
  static readonly POSITIVE_INFINITY = new Numeric('infinity', 0n, 0);
  static readonly NEGATIVE_INFINITY = new Numeric('-infinity', 0n, 0);
  static readonly ZERO = new Numeric('finite', 0n, 0);

  /**
   * `unscaled` and `scale` are meaningful only for finite values: value = unscaled / 10^scale,
   * scale ≥ 0 is the display scale. Zero is never negative.
   */
  private constructor(
    readonly kind: NumericKind,
    readonly unscaled: bigint,
    readonly scale: number,
  ) {}

  /**
   * A finite value, checked against the storage limits as PostgreSQL's make_result
   * (22003 'value overflows numeric format').
   */
  static finite(unscaled: bigint, scale: number): Numeric {
    if (!Number.isInteger(scale) || scale < 0) throw new Error(`numeric scale ${scale}`);
    if (scale > displayScaleMax) throw overflowsNumericFormat();
    if (unscaled !== 0n) {
      const exponent = decimalDigitCount(absolute(unscaled)) - 1 - scale;
      if (Math.floor(exponent / decimalDigitsPerWord) > weightMax) throw overflowsNumericFormat();
    }
    return new Numeric('finite', unscaled, scale);
  }

  static fromBigInt(value: bigint): Numeric {
    return Numeric.finite(value, 0);
  }

  /** An integral JS number (int2/int4/oid) as numeric. */
  static fromInteger(value: number): Numeric {
    if (!Number.isSafeInteger(value)) throw new Error(`Numeric.fromInteger(${value})`);
    return Numeric.finite(BigInt(value), 0);
  }

  /**
   * A float as numeric, as float8_numeric/float4_numeric: the value printed with
   * `significantDigits` significant digits (%.15g for float8, %.6g for float4), then read back.
   */
  static fromNumber(value: number, significantDigits = 15): Numeric {
    if (Number.isNaN(value)) return Numeric.NaN;
    if (value === Infinity) return Numeric.POSITIVE_INFINITY;
    if (value === -Infinity) return Numeric.NEGATIVE_INFINITY;
    const { digits, exponent } = roundToSignificantDigits(value, significantDigits);
    // digits × 10^exponent with no trailing zeros, as %g prints it.
    const magnitude = BigInt(digits);
    const signed = value < 0 ? -magnitude : magnitude;
    if (exponent >= 0) return Numeric.finite(signed * powerOfTen(exponent), 0);
    return Numeric.finite(signed, -exponent);
  }

  /** numeric_in: PostgreSQL's input syntax, then the typmod (-1 for none). */
  static parse(text: string, typmod = -1): Numeric {
    let position = 0;
    while (isCSpace(text[position])) position++;
    let special: Numeric | null = null;
    let decimal: DecimalParts | null = null;
    const spelled = matchSpecialNumeric(text, position);
    if (spelled !== null) {
      special = spelled.value;
      position = spelled.end;
    } else {
      decimal = parseDecimal(text, position);
      position = decimal.end;
    }
    // Trailing junk is a syntax error, reported before any typmod error.
    while (position < text.length) {
      if (!isCSpace(text[position])) throw invalidNumericSyntax(text);
      position++;
    }
    if (special !== null) return special.applyTypmod(typmod);
    return Numeric.fromDecimalParts(decimal!, typmod);
  }

  /**
   * The parsed digits checked against the storage limits (PostgreSQL 15 refuses a display
   * scale above 16383 or a weight above 32767 before it looks at the typmod), then the
   * typmod applied. The limits are checked before the digits are materialized, so
   * '1e999999999' costs nothing.
   */
  private static fromDecimalParts(parts: DecimalParts, typmod: number): Numeric {
    const significant = parts.digits.replace(/^0+/, '');
    const scale = Math.max(0, parts.fractionDigits - parts.exponent);
    if (scale > displayScaleMax) throw overflowsNumericFormat();
    if (significant === '') return Numeric.finite(0n, scale).applyTypmod(typmod);
    // The power of ten of the leading digit.
    const leadingExponent = significant.length - 1 - parts.fractionDigits + parts.exponent;
    if (Math.floor(leadingExponent / decimalDigitsPerWord) > weightMax) throw overflowsNumericFormat();
    const magnitude = BigInt(significant) * powerOfTen(scale + parts.exponent - parts.fractionDigits);
    return Numeric.finite(parts.negative ? -magnitude : magnitude, scale).applyTypmod(typmod);
  }

  isNaN(): boolean {
    return this.kind === 'nan';
  }

  isFinite(): boolean {
    return this.kind === 'finite';
  }

  isInfinite(): boolean {
    return this.kind === 'infinity' || this.kind === '-infinity';
  }

  /** -1, 0 or 1; NaN has sign NaN (numeric_sign returns NaN). */
  sign(): number {
    switch (this.kind) {
      case 'nan':
        return NaN;
      case 'infinity':
        return 1;
      case '-infinity':
        return -1;
      case 'finite':
        return this.unscaled === 0n ? 0 : this.unscaled < 0n ? -1 : 1;
    }
  }

  /** numeric_out: every digit up to the display scale ('1.50' stays '1.50'). */
  toString(): string {
    switch (this.kind) {
      case 'nan':
        return 'NaN';
      case 'infinity':
        return 'Infinity';
      case '-infinity':
        return '-Infinity';
      case 'finite':
        break;
    }
    const sign = this.unscaled < 0n ? '-' : '';
    const digits = absolute(this.unscaled).toString();
    if (this.scale === 0) return sign + digits;
    const padded = digits.padStart(this.scale + 1, '0');
    const point = padded.length - this.scale;
    return `${sign}${padded.slice(0, point)}.${padded.slice(point)}`;
  }

  /** A string equal for equal values whatever their scales (1.0 and 1.00): for hashing. */
  normalizedKey(): string {
    if (this.kind !== 'finite') return this.toString();
    let unscaled = this.unscaled;
    let scale = this.scale;
    while (scale > 0 && unscaled % 10n === 0n) {
      unscaled /= 10n;
      scale--;
    }
    return Numeric.finite(unscaled, scale).toString();
  }

  /** numeric_float8 without the range errors: the nearest double (±Infinity/0 beyond range). */
  toNumber(): number {
    switch (this.kind) {
      case 'nan':
        return NaN;
      case 'infinity':
        return Infinity;
      case '-infinity':
        return -Infinity;
      case 'finite':
        return Number(this.toString());
    }
  }

  /**
   * The value rounded half away from zero to an integer, as numeric_int4/int8 do before their
   * range checks; NaN and infinities are 0A000 errors naming `typeWord` ('integer', ...).
   */
  toBigInt(typeWord = 'bigint'): bigint {
    if (this.kind === 'nan') throw new SqlError('0A000', `cannot convert NaN to ${typeWord}`);
    if (this.kind !== 'finite') throw new SqlError('0A000', `cannot convert infinity to ${typeWord}`);
    return divideRoundHalfAway(this.unscaled, powerOfTen(this.scale));
  }

  neg(): Numeric {
    switch (this.kind) {
      case 'nan':
        return this;
      case 'infinity':
        return Numeric.NEGATIVE_INFINITY;
      case '-infinity':
        return Numeric.POSITIVE_INFINITY;
      case 'finite':
        return this.unscaled === 0n ? this : new Numeric('finite', -this.unscaled, this.scale);
    }
  }

  abs(): Numeric {
    if (this.kind === '-infinity') return Numeric.POSITIVE_INFINITY;
    if (this.kind === 'finite' && this.unscaled < 0n) return new Numeric('finite', -this.unscaled, this.scale);
    return this;
  }

  add(other: Numeric): Numeric {
    if (this.kind !== 'finite' || other.kind !== 'finite') return addSpecial(this, other);
    const scale = Math.max(this.scale, other.scale);
    return Numeric.finite(this.scaledTo(scale) + other.scaledTo(scale), scale);
  }

  sub(other: Numeric): Numeric {
    return this.add(other.neg());
  }

  /** Exact product (scale s1 + s2), rounded only past the storable display scale. */
  mul(other: Numeric): Numeric {
    if (this.kind !== 'finite' || other.kind !== 'finite') return multiplySpecial(this, other);
    const product = Numeric.unchecked(this.unscaled * other.unscaled, this.scale + other.scale);
    return product.scale > displayScaleMax ? product.round(displayScaleMax) : product.checked();
  }

  /** numeric_div: correctly rounded to select_div_scale's result scale. */
  div(other: Numeric): Numeric {
    if (this.kind !== 'finite' || other.kind !== 'finite') return divideSpecial(this, other);
    if (other.unscaled === 0n) throw divisionByZero();
    const resultScale = selectDivisionScale(this, other);
    // quotient × 10^resultScale = (u1 / 10^s1) / (u2 / 10^s2) × 10^resultScale; the result
    // scale is capped at 1000, so the power can be negative when the dividend's scale is larger.
    const shift = resultScale + other.scale - this.scale;
    const numerator = shift >= 0 ? this.unscaled * powerOfTen(shift) : this.unscaled;
    const denominator = shift >= 0 ? other.unscaled : other.unscaled * powerOfTen(-shift);
    return Numeric.finite(divideRoundHalfAway(numerator, denominator), resultScale);
  }

  /** numeric_mod: x - trunc(x/y)*y, sign of the dividend, scale max(s1, s2). */
  mod(other: Numeric): Numeric {
    if (this.kind !== 'finite' || other.kind !== 'finite') return moduloSpecial(this, other);
    if (other.unscaled === 0n) throw divisionByZero();
    const scale = Math.max(this.scale, other.scale);
    return Numeric.finite(this.scaledTo(scale) % other.scaledTo(scale), scale);
  }

  /** Integer division truncated toward zero (numeric div()), scale 0. */
  divTrunc(other: Numeric): Numeric {
    if (this.kind !== 'finite' || other.kind !== 'finite') return divideSpecial(this, other).trunc(0);
    if (other.unscaled === 0n) throw divisionByZero();
    const scale = Math.max(this.scale, other.scale);
    return Numeric.finite(this.scaledTo(scale) / other.scaledTo(scale), 0);
  }

  /** cmp_numerics: -Infinity < finite < Infinity < NaN, NaN = NaN, scale ignored. */
  compare(other: Numeric): number {
    const rankThis = specialRank(this.kind);
    const rankOther = specialRank(other.kind);
    if (rankThis !== rankOther) return rankThis < rankOther ? -1 : 1;
    if (this.kind !== 'finite') return 0;
    const scale = Math.max(this.scale, other.scale);
    const a = this.scaledTo(scale);
    const b = other.scaledTo(scale);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  equals(other: Numeric): boolean {
    return this.compare(other) === 0;
  }

  /** round(x, scale): half away from zero; a scale above the display scale pads with zeros. */
  round(scale = 0): Numeric {
    return this.rescale(scale, true);
  }

  /** trunc(x, scale): toward zero. */
  trunc(scale = 0): Numeric {
    return this.rescale(scale, false);
  }

  /**
   * apply_typmod / apply_typmod_special: round to the typmod's scale, then 22003 'numeric
   * field overflow' if the integer part needs more than precision - scale digits. NaN
   * passes; infinities do not fit any numeric(p,s).
   */
  applyTypmod(typmod: number): Numeric {
    const parts = numericTypmodParts(typmod);
    if (parts === null) return this;
    const { precision, scale } = parts;
    if (this.kind === 'nan') return this;
    if (this.kind !== 'finite') {
      throw new SqlError('22003', 'numeric field overflow', {
        detail: `A field with precision ${precision}, scale ${scale} cannot hold an infinite value.`,
      });
    }
    const rounded = this.round(scale);
    const integerDigitsMax = precision - scale;
    if (rounded.unscaled !== 0n) {
      // The decimal position of the leading digit, counted as PostgreSQL's ddigits.
      const leadingPosition = decimalDigitCount(absolute(rounded.unscaled)) - rounded.scale;
      if (leadingPosition > integerDigitsMax) throw numericFieldOverflow(precision, scale);
    }
    return rounded;
  }

  /** numeric_send: ndigits, weight, sign, dscale (int16 each), then base-10000 digits. */
  toBinary(): Uint8Array {
    const words = this.baseTenThousand();
    const bytes = new Uint8Array(8 + 2 * words.digits.length);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, words.digits.length);
    view.setInt16(2, words.weight);
    view.setUint16(4, words.sign);
    view.setUint16(6, this.kind === 'finite' ? this.scale : specialBinaryScale(this.kind));
    words.digits.forEach((digit, index) => view.setUint16(8 + 2 * index, digit));
    return bytes;
  }

  /** numeric_recv: validates as PostgreSQL (22P03), truncates digits hidden by dscale, applies the typmod. */
  static fromBinary(bytes: Uint8Array, typmod = -1): Numeric {
    if (bytes.length < 8) throw insufficientData();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const digitCount = view.getUint16(0);
    const weight = view.getInt16(2);
    const sign = view.getUint16(4);
    const displayScale = view.getUint16(6);
    if (bytes.length < 8 + 2 * digitCount) throw insufficientData();
    if (bytes.length > 8 + 2 * digitCount) throw incorrectBinaryFormat();
    if (![binarySignPositive, binarySignNegative, binarySignNaN, binarySignPositiveInfinity, binarySignNegativeInfinity].includes(sign)) {
      throw new SqlError('22P03', 'invalid sign in external "numeric" value');
    }
    if ((displayScale & displayScaleMax) !== displayScale) throw new SqlError('22P03', 'invalid scale in external "numeric" value');
    let magnitude = 0n;
    for (let index = 0; index < digitCount; index++) {
      const digit = view.getUint16(8 + 2 * index);
      if (digit >= 10000) throw new SqlError('22P03', 'invalid digit in external "numeric" value');
      magnitude = magnitude * 10000n + BigInt(digit);
    }
    if (sign === binarySignNaN) return Numeric.NaN.applyTypmod(typmod);
    if (sign === binarySignPositiveInfinity) return Numeric.POSITIVE_INFINITY.applyTypmod(typmod);
    if (sign === binarySignNegativeInfinity) return Numeric.NEGATIVE_INFINITY.applyTypmod(typmod);
    // magnitude × 10^(4 × (weight - ndigits + 1)), expressed at the display scale.
    const exponent = decimalDigitsPerWord * (weight - digitCount + 1) + displayScale;
    const unscaled = exponent >= 0 ? magnitude * powerOfTen(exponent) : magnitude / powerOfTen(-exponent);
    return Numeric.finite(sign === binarySignNegative ? -unscaled : unscaled, displayScale).applyTypmod(typmod);
  }

  /** The unscaled value at a scale ≥ this.scale. */
  private scaledTo(scale: number): bigint {
    return this.unscaled * powerOfTen(scale - this.scale);
  }

  /** An intermediate value not (yet) checked against the storage limits. */
  private static unchecked(unscaled: bigint, scale: number): Numeric {
    return new Numeric('finite', unscaled, scale);
  }

  private checked(): Numeric {
    return Numeric.finite(this.unscaled, this.scale);
  }

  private rescale(scale: number, roundHalfAway: boolean): Numeric {
    if (this.kind !== 'finite') return this;
    const target = Math.min(Math.max(scale, -resultScaleMax), resultScaleMax);
    if (target >= this.scale) return Numeric.finite(this.scaledTo(target), target);
    const dropped = this.scale - target;
    // Fewer digits than are dropped: below half a unit, so 0 (skips a huge 10^dropped).
    if (decimalDigitCount(absolute(this.unscaled)) < dropped) return Numeric.finite(0n, Math.max(target, 0));
    const divisor = powerOfTen(dropped);
    const quotient = roundHalfAway ? divideRoundHalfAway(this.unscaled, divisor) : this.unscaled / divisor;
    // A negative scale rounds to tens, hundreds...; the display scale never goes below 0.
    if (target < 0) return Numeric.finite(quotient * powerOfTen(-target), 0);
    return Numeric.finite(quotient, target);
  }

  /** PostgreSQL's view of the value: base-10000 digits (no leading/trailing zero words), weight, sign word. */
  private baseTenThousand(): { digits: number[]; weight: number; sign: number } {
    switch (this.kind) {
      case 'nan':
        return { digits: [], weight: 0, sign: binarySignNaN };
      case 'infinity':
        return { digits: [], weight: 0, sign: binarySignPositiveInfinity };
      case '-infinity':
        return { digits: [], weight: 0, sign: binarySignNegativeInfinity };
      case 'finite':
        break;
    }
    const sign = this.unscaled < 0n ? binarySignNegative : binarySignPositive;
    if (this.unscaled === 0n) return { digits: [], weight: 0, sign: binarySignPositive };
    const fractionWords = Math.ceil(this.scale / decimalDigitsPerWord);
    let aligned = absolute(this.unscaled) * powerOfTen(fractionWords * decimalDigitsPerWord - this.scale);
    const littleEndian: number[] = [];
    while (aligned > 0n) {
      littleEndian.push(Number(aligned % 10000n));
      aligned /= 10000n;
    }
    const weight = littleEndian.length - 1 - fractionWords;
    let low = 0;
    while (littleEndian[low] === 0) low++;
    return { digits: littleEndian.slice(low).reverse(), weight, sign };
  }

  /** The weight and leading base-10000 digit (both 0 for zero), as select_div_scale reads them. */
  leadingWord(): { weight: number; firstDigit: number } {
    if (this.kind !== 'finite' || this.unscaled === 0n) return { weight: 0, firstDigit: 0 };
    const magnitude = absolute(this.unscaled);
    const exponent = decimalDigitCount(magnitude) - 1 - this.scale;
    const weight = Math.floor(exponent / decimalDigitsPerWord);
    const shift = this.scale + decimalDigitsPerWord * weight;
    const firstDigit = shift >= 0 ? magnitude / powerOfTen(shift) : magnitude * powerOfTen(-shift);
    return { weight, firstDigit: Number(firstDigit) };
  }
}

/**
 * numeric_send reads the display scale of a special value out of its header as if it were a
 * short-format numeric: the infinities' header bits give 32, NaN's 0. Clients ignore it,
 * but the bytes are PostgreSQL's.
 */
function specialBinaryScale(kind: NumericKind): number {
  return kind === 'infinity' || kind === '-infinity' ? 32 : 0;
}

function numericFieldOverflow(precision: number, scale: number): SqlError {
  const integerDigitsMax = precision - scale;
  const limit = integerDigitsMax === 0 ? '1' : `10^${integerDigitsMax}`;
  return new SqlError('22003', 'numeric field overflow', {
    detail: `A field with precision ${precision}, scale ${scale} must round to an absolute value less than ${limit}.`,
  });
}

/** A binary value with bytes left over (the caller adds "in bind parameter n"). */
export function incorrectBinaryFormat(): SqlError {
  return new SqlError('22P03', 'incorrect binary data format');
}

/** A binary value cut short (pq_getmsg* reading past the end). */
export function insufficientData(): SqlError {
  return new SqlError('08P01', 'insufficient data left in message');
}

function specialRank(kind: NumericKind): number {
  switch (kind) {
    case '-infinity':
      return 0;
    case 'finite':
      return 1;
    case 'infinity':
      return 2;
    case 'nan':
      return 3;
  }
}

/**
 * select_div_scale: enough scale for 16 significant digits given the estimated weight of
 * the quotient, at least either input's display scale, at most 1000.
 */
function selectDivisionScale(dividend: Numeric, divisor: Numeric): number {
  const a = dividend.leadingWord();
  const b = divisor.leadingWord();
  let quotientWeight = a.weight - b.weight;
  if (a.firstDigit <= b.firstDigit) quotientWeight--;
  let scale = divisionSignificantDigitsMin - quotientWeight * decimalDigitsPerWord;
  scale = Math.max(scale, dividend.scale, divisor.scale, divisionScaleMin);
  return Math.min(scale, divisionScaleMax);
}

function addSpecial(a: Numeric, b: Numeric): Numeric {
  if (a.kind === 'nan' || b.kind === 'nan') return Numeric.NaN;
  if (a.kind === 'infinity') return b.kind === '-infinity' ? Numeric.NaN : a;
  if (a.kind === '-infinity') return b.kind === 'infinity' ? Numeric.NaN : a;
  return b;
}

function multiplySpecial(a: Numeric, b: Numeric): Numeric {
  if (a.kind === 'nan' || b.kind === 'nan') return Numeric.NaN;
  const sign = a.sign() * b.sign();
  if (sign === 0) return Numeric.NaN; // infinity × 0
  return sign > 0 ? Numeric.POSITIVE_INFINITY : Numeric.NEGATIVE_INFINITY;
}

function divideSpecial(a: Numeric, b: Numeric): Numeric {
  if (a.kind === 'nan' || b.kind === 'nan') return Numeric.NaN;
  if (a.isInfinite()) {
    if (b.isInfinite()) return Numeric.NaN;
    const sign = a.sign() * b.sign();
    if (sign === 0) throw divisionByZero();
    return sign > 0 ? Numeric.POSITIVE_INFINITY : Numeric.NEGATIVE_INFINITY;
  }
  // Finite / ±Infinity: PostgreSQL returns zero rather than an underflow.
  return Numeric.ZERO;
}

function moduloSpecial(a: Numeric, b: Numeric): Numeric {
  if (a.kind === 'nan' || b.kind === 'nan') return Numeric.NaN;
  if (a.isInfinite()) {
    if (b.sign() === 0) throw divisionByZero();
    return Numeric.NaN;
  }
  return a; // finite % ±Infinity = the dividend
}

const specialSpellings: ReadonlyArray<readonly [string, Numeric]> = [
  // The order matters: the longer spelling of each is tried first, as numeric_in does.
  ['nan', Numeric.NaN],
  ['infinity', Numeric.POSITIVE_INFINITY],
  ['+infinity', Numeric.POSITIVE_INFINITY],
  ['-infinity', Numeric.NEGATIVE_INFINITY],
  ['inf', Numeric.POSITIVE_INFINITY],
  ['+inf', Numeric.POSITIVE_INFINITY],
  ['-inf', Numeric.NEGATIVE_INFINITY],
];

function matchSpecialNumeric(text: string, position: number): { value: Numeric; end: number } | null {
  for (const [spelling, value] of specialSpellings) {
    if (text.slice(position, position + spelling.length).toLowerCase() === spelling) {
      return { value, end: position + spelling.length };
    }
  }
  return null;
}

interface DecimalParts {
  negative: boolean;
  /** Every digit written, integer and fraction parts together. */
  digits: string;
  fractionDigits: number;
  exponent: number;
  end: number;
}

/**
 * set_var_from_str: [sign] digits [. digits] [e exponent]. The display scale is the number
 * of fraction digits minus the exponent (never below 0), so every digit written is kept.
 */
function parseDecimal(text: string, start: number): DecimalParts {
  let position = start;
  let negative = false;
  if (text[position] === '+' || text[position] === '-') {
    negative = text[position] === '-';
    position++;
  }
  let sawPoint = false;
  if (text[position] === '.') {
    sawPoint = true;
    position++;
  }
  if (!isDigit(text[position])) throw invalidNumericSyntax(text);
  const digitsStart = position;
  let fractionDigits = 0;
  for (; position < text.length; position++) {
    const character = text[position]!;
    if (isDigit(character)) {
      if (sawPoint) fractionDigits++;
    } else if (character === '.') {
      if (sawPoint) throw invalidNumericSyntax(text);
      sawPoint = true;
    } else {
      break;
    }
  }
  const digits = text.slice(digitsStart, position).replace('.', '');
  let exponent = 0;
  if (text[position] === 'e' || text[position] === 'E') {
    const parsed = parseCExponent(text, position + 1);
    if (parsed === null) throw invalidNumericSyntax(text);
    // |exponent| ≥ INT_MAX/2 overflows before make_result could say so.
    if (parsed.magnitudeTooLarge || Math.abs(parsed.value) >= 1073741823) throw overflowsNumericFormat();
    exponent = parsed.value;
    position = parsed.end;
  }
  return { negative, digits, fractionDigits, exponent, end: position };
}

/** strtol(…, 10) as set_var_from_str uses it: leading spaces, a sign, at least one digit. */
function parseCExponent(text: string, start: number): { value: number; end: number; magnitudeTooLarge: boolean } | null {
  let position = start;
  while (isCSpace(text[position])) position++;
  let negative = false;
  if (text[position] === '+' || text[position] === '-') {
    negative = text[position] === '-';
    position++;
  }
  const digitsStart = position;
  while (isDigit(text[position])) position++;
  if (position === digitsStart) return null;
  const digits = text.slice(digitsStart, position).replace(/^0+(?=\d)/, '');
  const magnitudeTooLarge = digits.length > 12;
  const value = magnitudeTooLarge ? 0 : Number(digits);
  return { value: negative ? -value : value, end: position, magnitudeTooLarge };
}

/**
 * A finite double rounded to `significantDigits` significant digits, half to even on its
 * exact binary value (as glibc's printf): the digits without trailing zeros, and the power
 * of ten of the last one.
 */
export function roundToSignificantDigits(value: number, significantDigits: number): { digits: string; exponent: number } {
  if (!Number.isFinite(value)) throw new Error(`roundToSignificantDigits(${value})`);
  if (value === 0) return { digits: '0', exponent: 0 };
  const exact = exactDecimal(Math.abs(value));
  let digits = exact.digits.toString();
  let exponent = exact.exponent;
  if (digits.length > significantDigits) {
    const drop = digits.length - significantDigits;
    const divisor = powerOfTen(drop);
    let kept = exact.digits / divisor;
    const remainder = exact.digits % divisor;
    const twice = remainder * 2n;
    if (twice > divisor || (twice === divisor && kept % 2n === 1n)) kept += 1n;
    digits = kept.toString();
    exponent += drop;
  }
  const trimmed = digits.replace(/0+$/, '');
  return { digits: trimmed, exponent: exponent + (digits.length - trimmed.length) };
}

/** The exact decimal value of a positive finite double: digits × 10^exponent. */
export function exactDecimal(value: number): { digits: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biasedExponent === 0 ? fraction : fraction | (1n << 52n);
  const binaryExponent = (biasedExponent === 0 ? 1 : biasedExponent) - 1075;
  if (binaryExponent >= 0) return { digits: mantissa << BigInt(binaryExponent), exponent: 0 };
  // m / 2^k = m × 5^k / 10^k
  return { digits: mantissa * 5n ** BigInt(-binaryExponent), exponent: binaryExponent };
}
