// PostgreSQL's frontend/backend protocol, version 3.0, as a pure codec: bytes in, messages
// out (FrontendDecoder), and messages in, bytes out (encodeBackend). No sockets here; the
// connection state machine (connection.ts) drives it.
//
// Framing: the first message of a connection has no type byte (u32 length | u32 code |
// body): a StartupMessage (code 196608 = 3.0), SSLRequest (80877103), GSSENCRequest
// (80877104) or CancelRequest (80877102). Every later message is u8 type | u32 length
// (counting itself) | body.
//
// Invariants:
//  W1. Decoding is independent of how the bytes were split: pushing a stream in any
//      pieces yields the same messages as pushing it whole (tested at every split point).
//  W2. A message whose length is below 4, above MESSAGE_BYTES_MAX, or whose body does not
//      parse is a protocol violation (ProtocolError): the connection is closed, no guessing.

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
/** Larger messages are refused (PostgreSQL's own limit for most messages is 1 GB; COPY data comes in chunks). */
export const MESSAGE_BYTES_MAX = 64 * 1024 * 1024;

export class ProtocolError extends Error {
  override name = 'ProtocolError';
  /** SQLSTATE 08P01 protocol_violation. */
  readonly sqlState = '08P01';
}

export type FrontendMessage =
  | { kind: 'startup'; protocol: number; parameters: Map<string, string> }
  | { kind: 'sslRequest' }
  | { kind: 'gssencRequest' }
  | { kind: 'cancelRequest'; processId: number; secretKey: number }
  | { kind: 'password'; data: Uint8Array } // PasswordMessage, SASLInitialResponse, SASLResponse: the body, decoded by the auth step
  | { kind: 'query'; sql: string }
  | { kind: 'parse'; name: string; sql: string; parameterTypes: number[] }
  | { kind: 'bind'; portal: string; statement: string; parameterFormats: number[]; parameters: Array<Uint8Array | null>; resultFormats: number[] }
  | { kind: 'describe'; target: 'statement' | 'portal'; name: string }
  | { kind: 'execute'; portal: string; rowLimit: number }
  | { kind: 'close'; target: 'statement' | 'portal'; name: string }
  | { kind: 'sync' }
  | { kind: 'flush' }
  | { kind: 'terminate' }
  | { kind: 'copyData'; data: Uint8Array }
  | { kind: 'copyDone' }
  | { kind: 'copyFail'; message: string }
  | { kind: 'functionCall' };

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtocolError('invalid UTF-8 in a string');
  }
}

/** A short all-ASCII string without the decoder (most names and queries); undefined otherwise. */
function asciiString(bytes: Uint8Array, start: number, end: number): string | undefined {
  if (end - start > 512) return undefined;
  for (let at = start; at < end; at++) if (bytes[at]! >= 0x80) return undefined;
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}

/** Reads fields of one message body; any overrun is a ProtocolError (W2). */
class BodyReader {
  private at = 0;
  private readonly view: DataView;
  constructor(private readonly body: Uint8Array) {
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  }
  private need(bytes: number): void {
    if (this.at + bytes > this.body.length) throw new ProtocolError('message is shorter than its fields');
  }
  int16(): number {
    this.need(2);
    const value = this.view.getInt16(this.at);
    this.at += 2;
    return value;
  }
  int32(): number {
    this.need(4);
    const value = this.view.getInt32(this.at);
    this.at += 4;
    return value;
  }
  byte(): number {
    this.need(1);
    return this.body[this.at++]!;
  }
  bytes(length: number): Uint8Array {
    this.need(length);
    const value = this.body.slice(this.at, this.at + length);
    this.at += length;
    return value;
  }
  cstring(): string {
    const end = this.body.indexOf(0, this.at);
    if (end < 0) throw new ProtocolError('string is not terminated');
    const value = asciiString(this.body, this.at, end) ?? decodeUtf8(this.body.subarray(this.at, end));
    this.at = end + 1;
    return value;
  }
  rest(): Uint8Array {
    const value = this.body.slice(this.at);
    this.at = this.body.length;
    return value;
  }
  end(): void {
    if (this.at !== this.body.length) throw new ProtocolError('message is longer than its fields');
  }
}

function decodeStartup(body: Uint8Array): FrontendMessage {
  const reader = new BodyReader(body);
  const code = reader.int32();
  if (code === SSL_REQUEST_CODE) {
    reader.end();
    return { kind: 'sslRequest' };
  }
  if (code === GSSENC_REQUEST_CODE) {
    reader.end();
    return { kind: 'gssencRequest' };
  }
  if (code === CANCEL_REQUEST_CODE) {
    const processId = reader.int32();
    const secretKey = reader.int32();
    reader.end();
    return { kind: 'cancelRequest', processId, secretKey };
  }
  const parameters = new Map<string, string>();
  for (;;) {
    const name = reader.cstring();
    if (name === '') break;
    parameters.set(name, reader.cstring());
  }
  reader.end();
  return { kind: 'startup', protocol: code, parameters };
}

function decodeTyped(type: number, body: Uint8Array): FrontendMessage {
  const reader = new BodyReader(body);
  let message: FrontendMessage;
  switch (String.fromCharCode(type)) {
    case 'Q':
      message = { kind: 'query', sql: reader.cstring() };
      break;
    case 'P': {
      const name = reader.cstring();
      const sql = reader.cstring();
      const count = reader.int16();
      if (count < 0) throw new ProtocolError('negative parameter count');
      const parameterTypes: number[] = [];
      for (let index = 0; index < count; index++) parameterTypes.push(reader.int32() >>> 0);
      message = { kind: 'parse', name, sql, parameterTypes };
      break;
    }
    case 'B': {
      const portal = reader.cstring();
      const statement = reader.cstring();
      const formatCount = reader.int16();
      if (formatCount < 0) throw new ProtocolError('negative format count');
      const parameterFormats: number[] = [];
      for (let index = 0; index < formatCount; index++) parameterFormats.push(reader.int16());
      const parameterCount = reader.int16();
      if (parameterCount < 0) throw new ProtocolError('negative parameter count');
      const parameters: Array<Uint8Array | null> = [];
      for (let index = 0; index < parameterCount; index++) {
        const length = reader.int32();
        if (length < -1) throw new ProtocolError('invalid parameter length');
        parameters.push(length === -1 ? null : reader.bytes(length));
      }
      const resultCount = reader.int16();
      if (resultCount < 0) throw new ProtocolError('negative result format count');
      const resultFormats: number[] = [];
      for (let index = 0; index < resultCount; index++) resultFormats.push(reader.int16());
      for (const format of [...parameterFormats, ...resultFormats]) if (format !== 0 && format !== 1) throw new ProtocolError(`invalid format code ${format}`);
      message = { kind: 'bind', portal, statement, parameterFormats, parameters, resultFormats };
      break;
    }
    case 'D':
    case 'C': {
      const which = reader.byte();
      if (which !== 0x53 && which !== 0x50) throw new ProtocolError(`invalid ${type === 0x44 ? 'Describe' : 'Close'} target`);
      message = { kind: type === 0x44 ? 'describe' : 'close', target: which === 0x53 ? 'statement' : 'portal', name: reader.cstring() };
      break;
    }
    case 'E':
      message = { kind: 'execute', portal: reader.cstring(), rowLimit: reader.int32() };
      break;
    case 'S':
      message = { kind: 'sync' };
      break;
    case 'H':
      message = { kind: 'flush' };
      break;
    case 'X':
      message = { kind: 'terminate' };
      break;
    case 'p':
      message = { kind: 'password', data: reader.rest() };
      break;
    case 'd':
      message = { kind: 'copyData', data: reader.rest() };
      break;
    case 'c':
      message = { kind: 'copyDone' };
      break;
    case 'f':
      message = { kind: 'copyFail', message: reader.cstring() };
      break;
    case 'F':
      reader.rest();
      message = { kind: 'functionCall' };
      break;
    default:
      throw new ProtocolError(`invalid frontend message type ${type}`);
  }
  reader.end();
  return message;
}

/** Turns a connection's incoming bytes into frontend messages (W1, W2). */
export class FrontendDecoder {
  private buffered: Uint8Array = new Uint8Array(0);
  /** Until the startup exchange is done, messages have no type byte. */
  private startupPhase = true;

  /** After the startup message (or an SSLRequest refused with 'N', the client sends a startup message next). */
  startupDone(): void {
    this.startupPhase = false;
  }

  push(chunk: Uint8Array): FrontendMessage[] {
    const messages: FrontendMessage[] = [];
    this.pushInto(chunk, messages);
    return messages;
  }

  /**
   * As push, appending to `messages`: when a ProtocolError is thrown, the messages that came
   * before the bad one are already there, so the connection can answer them first.
   */
  pushInto(chunk: Uint8Array, messages: FrontendMessage[]): void {
    if (this.buffered.length === 0) this.buffered = chunk;
    else {
      const joined = new Uint8Array(this.buffered.length + chunk.length);
      joined.set(this.buffered);
      joined.set(chunk, this.buffered.length);
      this.buffered = joined;
    }
    for (;;) {
      const header = this.startupPhase ? 4 : 5;
      if (this.buffered.length < header) break;
      const view = new DataView(this.buffered.buffer, this.buffered.byteOffset, this.buffered.byteLength);
      const length = view.getInt32(header - 4);
      if (length < 4 || length > MESSAGE_BYTES_MAX) throw new ProtocolError(`invalid message length ${length}`);
      const total = header - 4 + length;
      if (this.buffered.length < total) break;
      const body = this.buffered.subarray(header, total);
      if (this.startupPhase) {
        const message = decodeStartup(body);
        messages.push(message);
        // After SSLRequest/GSSENCRequest the client sends another untyped startup packet.
        if (message.kind === 'startup') this.startupPhase = false;
      } else messages.push(decodeTyped(this.buffered[0]!, body));
      this.buffered = this.buffered.subarray(total);
    }
    if (this.buffered.length === 0) this.buffered = new Uint8Array(0);
  }

  /** Bytes received but not yet a whole message. */
  get pendingBytes(): number {
    return this.buffered.length;
  }
}

// ---------------------------------------------------------------- backend messages

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnNumber: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: 0 | 1;
}

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  code: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
  position?: number | undefined;
}

export type BackendMessage =
  | { kind: 'authenticationOk' }
  | { kind: 'authenticationCleartextPassword' }
  | { kind: 'authenticationMD5Password'; salt: Uint8Array }
  | { kind: 'authenticationSASL'; mechanisms: string[] }
  | { kind: 'authenticationSASLContinue'; data: Uint8Array }
  | { kind: 'authenticationSASLFinal'; data: Uint8Array }
  | { kind: 'parameterStatus'; name: string; value: string }
  | { kind: 'backendKeyData'; processId: number; secretKey: number }
  | { kind: 'readyForQuery'; status: 'I' | 'T' | 'E' }
  | { kind: 'rowDescription'; fields: FieldDescription[] }
  | { kind: 'dataRow'; values: Array<Uint8Array | null> }
  | { kind: 'commandComplete'; tag: string }
  | { kind: 'emptyQueryResponse' }
  | { kind: 'errorResponse'; fields: ErrorFields }
  | { kind: 'noticeResponse'; fields: ErrorFields }
  | { kind: 'parseComplete' }
  | { kind: 'bindComplete' }
  | { kind: 'closeComplete' }
  | { kind: 'noData' }
  | { kind: 'portalSuspended' }
  | { kind: 'parameterDescription'; typeOids: number[] }
  | { kind: 'copyInResponse'; format: 0 | 1; columnFormats: number[] }
  | { kind: 'copyOutResponse'; format: 0 | 1; columnFormats: number[] }
  | { kind: 'copyData'; data: Uint8Array }
  | { kind: 'copyDone' }
  | { kind: 'sslRefused' };

/** Builds one message: type byte, length, body, in one growing buffer. */
class MessageWriter {
  private buffer = new Uint8Array(64);
  private size = 5; // the type byte and length come last, in finish()
  private ensure(extra: number): void {
    if (this.size + extra <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.size + extra));
    grown.set(this.buffer.subarray(0, this.size));
    this.buffer = grown;
  }
  int8(value: number): this {
    this.ensure(1);
    this.buffer[this.size++] = value;
    return this;
  }
  int16(value: number): this {
    this.ensure(2);
    this.buffer[this.size++] = value >> 8;
    this.buffer[this.size++] = value;
    return this;
  }
  int32(value: number): this {
    this.ensure(4);
    writeInt32(this.buffer, this.size, value);
    this.size += 4;
    return this;
  }
  cstring(value: string): this {
    const length = value.length;
    this.ensure(length * 3 + 1);
    const buffer = this.buffer;
    let at = this.size;
    // ASCII (tags, names, most text) byte by byte; the first other character hands the rest to the encoder.
    let index = 0;
    for (; index < length; index++) {
      const code = value.charCodeAt(index);
      if (code >= 0x80) break;
      buffer[at++] = code;
    }
    if (index < length) at += encoder.encodeInto(value.slice(index), buffer.subarray(at)).written;
    buffer[at++] = 0;
    this.size = at;
    return this;
  }
  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.size);
    this.size += bytes.length;
    return this;
  }
  finish(type: string): Uint8Array {
    this.buffer[0] = type.charCodeAt(0);
    writeInt32(this.buffer, 1, this.size - 1);
    return this.buffer.subarray(0, this.size);
  }
}

function writeInt32(buffer: Uint8Array, at: number, value: number): void {
  buffer[at] = value >>> 24;
  buffer[at + 1] = value >>> 16;
  buffer[at + 2] = value >>> 8;
  buffer[at + 3] = value;
}

function errorBody(writer: MessageWriter, fields: ErrorFields): MessageWriter {
  writer.int8(0x53).cstring(fields.severity); // S
  writer.int8(0x56).cstring(fields.severity); // V (not localized)
  writer.int8(0x43).cstring(fields.code); // C
  writer.int8(0x4d).cstring(fields.message); // M
  if (fields.detail !== undefined) writer.int8(0x44).cstring(fields.detail); // D
  if (fields.hint !== undefined) writer.int8(0x48).cstring(fields.hint); // H
  if (fields.position !== undefined) writer.int8(0x50).cstring(String(fields.position)); // P
  return writer.int8(0);
}

/**
 * DataRow is the message sent most by far: sized first, then written into one buffer taken
 * from Node's pool (allocUnsafe: every byte is written below), which is several times
 * cheaper than a fresh ArrayBuffer per row.
 */
function encodeDataRow(values: Array<Uint8Array | null>): Uint8Array {
  let length = 4 + 2;
  for (const value of values) length += 4 + (value === null ? 0 : value.length);
  const out = Buffer.allocUnsafe(1 + length);
  out[0] = 0x44; // D
  out.writeInt32BE(length, 1);
  out.writeInt16BE(values.length, 5);
  let at = 7;
  for (const value of values) {
    if (value === null) at = out.writeInt32BE(-1, at);
    else {
      at = out.writeInt32BE(value.length, at);
      out.set(value, at);
      at += value.length;
    }
  }
  return out;
}

/** The bytes of one backend message. */
/**
 * Messages that repeat byte for byte, encoded once: a plan's RowDescription (its fields
 * array is kept with the plan), command tags, ReadyForQuery. Encoded messages are never
 * changed after encoding (the connection only copies them out), so sharing them is safe.
 */
const rowDescriptions = new WeakMap<readonly FieldDescription[], Uint8Array>();
const commandTags = new Map<string, Uint8Array>();
const COMMAND_TAGS_MAX = 1024;
const readyForQuery = new Map<string, Uint8Array>();

export function encodeBackend(message: BackendMessage): Uint8Array {
  switch (message.kind) {
    case 'rowDescription': {
      let bytes = rowDescriptions.get(message.fields);
      if (bytes === undefined) rowDescriptions.set(message.fields, (bytes = encodeMessage(message)));
      return bytes;
    }
    case 'commandComplete': {
      let bytes = commandTags.get(message.tag);
      if (bytes === undefined) {
        bytes = encodeMessage(message);
        if (commandTags.size < COMMAND_TAGS_MAX) commandTags.set(message.tag, bytes);
      }
      return bytes;
    }
    case 'readyForQuery': {
      let bytes = readyForQuery.get(message.status);
      if (bytes === undefined) readyForQuery.set(message.status, (bytes = encodeMessage(message)));
      return bytes;
    }
    default:
      return encodeMessage(message);
  }
}

function encodeMessage(message: BackendMessage): Uint8Array {
  const writer = new MessageWriter();
  switch (message.kind) {
    case 'sslRefused':
      return Uint8Array.of(0x4e); // 'N', no framing
    case 'authenticationOk':
      return writer.int32(0).finish('R');
    case 'authenticationCleartextPassword':
      return writer.int32(3).finish('R');
    case 'authenticationMD5Password':
      return writer.int32(5).raw(message.salt).finish('R');
    case 'authenticationSASL':
      writer.int32(10);
      for (const mechanism of message.mechanisms) writer.cstring(mechanism);
      return writer.int8(0).finish('R');
    case 'authenticationSASLContinue':
      return writer.int32(11).raw(message.data).finish('R');
    case 'authenticationSASLFinal':
      return writer.int32(12).raw(message.data).finish('R');
    case 'parameterStatus':
      return writer.cstring(message.name).cstring(message.value).finish('S');
    case 'backendKeyData':
      return writer.int32(message.processId).int32(message.secretKey).finish('K');
    case 'readyForQuery':
      return writer.int8(message.status.charCodeAt(0)).finish('Z');
    case 'rowDescription':
      writer.int16(message.fields.length);
      for (const field of message.fields) {
        writer.cstring(field.name).int32(field.tableOid).int16(field.columnNumber).int32(field.typeOid).int16(field.typeSize).int32(field.typeModifier).int16(field.format);
      }
      return writer.finish('T');
    case 'dataRow':
      return encodeDataRow(message.values);
    case 'commandComplete':
      return writer.cstring(message.tag).finish('C');
    case 'emptyQueryResponse':
      return writer.finish('I');
    case 'errorResponse':
      return errorBody(writer, message.fields).finish('E');
    case 'noticeResponse':
      return errorBody(writer, message.fields).finish('N');
    case 'parseComplete':
      return writer.finish('1');
    case 'bindComplete':
      return writer.finish('2');
    case 'closeComplete':
      return writer.finish('3');
    case 'noData':
      return writer.finish('n');
    case 'portalSuspended':
      return writer.finish('s');
    case 'parameterDescription':
      writer.int16(message.typeOids.length);
      for (const oid of message.typeOids) writer.int32(oid);
      return writer.finish('t');
    case 'copyInResponse':
    case 'copyOutResponse':
      writer.int8(message.format).int16(message.columnFormats.length);
      for (const format of message.columnFormats) writer.int16(format);
      return writer.finish(message.kind === 'copyInResponse' ? 'G' : 'H');
    case 'copyData':
      return writer.raw(message.data).finish('d');
    case 'copyDone':
      return writer.finish('c');
  }
}
