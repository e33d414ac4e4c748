// What a session's statement writes to: the Output of session.ts over a connection, and the
// translation of whatever a session throws into ErrorResponse fields.

import { assert } from '../common/index.js';
import type { BackendMessage, ErrorFields, FieldDescription } from './codec.js';
import { SqlError, type Output } from './session.js';

/**
 * The ErrorResponse fields for anything a session throws: a SqlError, anything with an
 * ErrorFields-shaped `fields`, anything with a SQLSTATE `code` and a `message`, else XX000.
 */
export function errorFieldsOf(error: unknown): ErrorFields {
  if (error instanceof SqlError) return error.fields;
  if (typeof error === 'object' && error !== null) {
    const { fields, code, message } = error as { fields?: unknown; code?: unknown; message?: unknown };
    if (typeof fields === 'object' && fields !== null) {
      const candidate = fields as Partial<ErrorFields>;
      if (typeof candidate.severity === 'string' && typeof candidate.code === 'string' && typeof candidate.message === 'string') return candidate as ErrorFields;
    }
    // No SQLSTATE class starts with E; Node's system errors (EPIPE, EPERM) do.
    if (typeof code === 'string' && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) && typeof message === 'string') return { severity: 'ERROR', code, message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { severity: 'ERROR', code: 'XX000', message };
}

/** What a StatementOutput needs from its connection. */
export interface OutputPort {
  send(message: BackendMessage): void;
  drain(): Promise<void>;
  /** Sends what is queued now (the client waits for CopyInResponse before it sends data). */
  flush(): void;
  copyInData(): AsyncIterable<Uint8Array>;
}

/**
 * The Output handed to one session call (a simple Query or one Execute). It is retired when
 * the call returns: a session that writes after that has a bug, and is told so.
 */
export class StatementOutput implements Output {
  private open = true;
  /** CommandComplete or EmptyQueryResponse was sent. */
  completed = false;

  constructor(
    private readonly port: OutputPort,
    private readonly mode: 'simple' | 'extended',
  ) {}

  retire(): void {
    this.open = false;
  }

  private check(method: string): void {
    assert(this.open, `Output.${method} called after the statement returned`);
  }

  rowDescription(fields: FieldDescription[]): void {
    this.check('rowDescription');
    assert(this.mode === 'simple', 'Output.rowDescription in extended mode (Describe answers it there)');
    this.port.send({ kind: 'rowDescription', fields });
  }

  dataRow(values: Array<Uint8Array | null>): void {
    this.check('dataRow');
    this.port.send({ kind: 'dataRow', values });
  }

  commandComplete(tag: string): void {
    this.check('commandComplete');
    this.completed = true;
    this.port.send({ kind: 'commandComplete', tag });
  }

  emptyQuery(): void {
    this.check('emptyQuery');
    this.completed = true;
    this.port.send({ kind: 'emptyQueryResponse' });
  }

  notice(fields: ErrorFields): void {
    this.check('notice');
    this.port.send({ kind: 'noticeResponse', fields });
  }

  parameterStatus(name: string, value: string): void {
    this.check('parameterStatus');
    this.port.send({ kind: 'parameterStatus', name, value });
  }

  drain(): Promise<void> {
    this.check('drain');
    return this.port.drain();
  }

  copyIn(format: 'text' | 'binary', columnFormats: number[]): AsyncIterable<Uint8Array> {
    this.check('copyIn');
    this.port.send({ kind: 'copyInResponse', format: format === 'text' ? 0 : 1, columnFormats });
    this.port.flush();
    return this.port.copyInData();
  }

  copyOutStart(format: 'text' | 'binary', columnFormats: number[]): void {
    this.check('copyOutStart');
    this.port.send({ kind: 'copyOutResponse', format: format === 'text' ? 0 : 1, columnFormats });
  }

  copyData(bytes: Uint8Array): void {
    this.check('copyData');
    this.port.send({ kind: 'copyData', data: bytes });
  }

  copyDone(): void {
    this.check('copyDone');
    this.port.send({ kind: 'copyDone' });
  }
}
