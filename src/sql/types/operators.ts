// Arithmetic operators of the numeric types, one type at a time (operator resolution has
// already cast both operands to it): PostgreSQL's int2/int4/int8, float4/float8 and numeric
// operators with their overflow, underflow and division-by-zero errors.

import { SqlError } from '../../pgwire/session.js';
import { floatArithmetic } from './float.js';
import { int2Arithmetic, int4Arithmetic, int8Arithmetic, integerOperation, type IntegerOperator } from './integer.js';
import { Numeric } from './numeric.js';
import { typeDisplayName } from './type-names.js';
import { baseTypeName, type TypeOid, type Value } from './types.js';

export type ArithmeticOperator = IntegerOperator;

function operatorDoesNotExist(operator: string, type: TypeOid): SqlError {
  const name = typeDisplayName(type);
  return new SqlError('42883', `operator does not exist: ${name} ${operator} ${name}`);
}

/** a op b for two non-null values of `type`. */
export function arithmetic(operator: ArithmeticOperator, type: TypeOid, a: Value, b: Value): Value {
  if (a === null || b === null) return null;
  const name = baseTypeName(type);
  switch (name) {
    case 'int2':
    case 'int4':
      return integerOperation(operator, name, a as number, b as number);
    case 'int8':
      return integerOperation(operator, name, a as bigint, b as bigint);
    case 'float4':
    case 'float8':
      if (operator === '%') throw operatorDoesNotExist(operator, type);
      return floatArithmetic(operator, a as number, b as number, name === 'float4');
    case 'numeric':
      return numericOperation(operator, a as Numeric, b as Numeric);
    default:
      throw operatorDoesNotExist(operator, type);
  }
}

function numericOperation(operator: ArithmeticOperator, a: Numeric, b: Numeric): Numeric {
  switch (operator) {
    case '+':
      return a.add(b);
    case '-':
      return a.sub(b);
    case '*':
      return a.mul(b);
    case '/':
      return a.div(b);
    case '%':
      return a.mod(b);
  }
}

/** Unary minus (int4um and friends: -MIN overflows). */
export function negate(type: TypeOid, value: Value): Value {
  if (value === null) return null;
  const name = baseTypeName(type);
  switch (name) {
    case 'int2':
      return int2Arithmetic.neg(value as number);
    case 'int4':
      return int4Arithmetic.neg(value as number);
    case 'int8':
      return int8Arithmetic.neg(value as bigint);
    case 'float4':
    case 'float8':
      return -(value as number);
    case 'numeric':
      return (value as Numeric).neg();
    default:
      throw new SqlError('42883', `operator does not exist: - ${typeDisplayName(type)}`);
  }
}
