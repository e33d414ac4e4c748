// Errors the engine raises to a session, each with PostgreSQL's SQLSTATE, so the front end
// passes them to clients unchanged. The session stays usable after any of them.

export const SqlState = {
  uniqueViolation: '23505',
  notNullViolation: '23502',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  undefinedTable: '42P01',
  undefinedObject: '42704',
  duplicateTable: '42P07',
  duplicateColumn: '42701',
  invalidTableDefinition: '42P16',
  duplicateObject: '42710',
  duplicateSchema: '42P06',
  invalidSchemaName: '3F000',
  invalidTransactionState: '25000',
  activeSqlTransaction: '25001',
  readOnlySqlTransaction: '25006',
  noActiveSqlTransaction: '25P01',
  invalidSavepoint: '3B001',
  dependentObjectsStillExist: '2BP01',
  sequenceLimit: '2200H',
  objectInUse: '55006',
  invalidParameterValue: '22023',
  programLimitExceeded: '54000',
  featureNotSupported: '0A000',
} as const;

export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];

export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    readonly sqlState: SqlStateCode,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}
