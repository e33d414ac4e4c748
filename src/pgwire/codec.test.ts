// The wire codec on fixtures: a stream of frontend messages built by hand (as a client
// sends them) decodes to the same messages however it is split (W1), malformed input is
// a ProtocolError (W2), and backend messages encode to PostgreSQL's exact bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBackend, FrontendDecoder, ProtocolError, type FrontendMessage } from './codec.js';

const enc = new TextEncoder();

function int32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}
function int16(value: number): number[] {
  return [(value >>> 8) & 0xff, value & 0xff];
}
function cstring(text: string): number[] {
  return [...enc.encode(text), 0];
}
function typed(type: string, body: number[]): number[] {
  return [type.charCodeAt(0), ...int32(body.length + 4), ...body];
}
function untyped(body: number[]): number[] {
  return [...int32(body.length + 4), ...body];
}

/** What a client sends: SSLRequest, startup, then a little of everything. */
const stream = Uint8Array.from([
  ...untyped(int32(80877103)),
  ...untyped([...int32(196608), ...cstring('user'), ...cstring('postgres'), ...cstring('database'), ...cstring('bench'), 0]),
  ...typed('p', [...cstring('SCRAM-SHA-256'), ...int32(3), 0x6e, 0x2c, 0x2c]),
  ...typed('Q', cstring('SELECT 1; SELECT \u00e9t\u00e9')),
  ...typed('P', [...cstring('s1'), ...cstring('SELECT $1::int'), ...int16(1), ...int32(23)]),
  ...typed('B', [...cstring(''), ...cstring('s1'), ...int16(1), ...int16(1), ...int16(2), ...int32(4), 0, 0, 0, 42, ...int32(-1), ...int16(1), ...int16(0)]),
  ...typed('D', [0x50, ...cstring('')]),
  ...typed('E', [...cstring(''), ...int32(100)]),
  ...typed('H', []),
  ...typed('C', [0x53, ...cstring('s1')]),
  ...typed('S', []),
  ...typed('d', [1, 2, 3]),
  ...typed('c', []),
  ...typed('f', cstring('no more')),
  ...typed('X', []),
]);

const expected: FrontendMessage[] = [
  { kind: 'sslRequest' },
  { kind: 'startup', protocol: 196608, parameters: new Map([['user', 'postgres'], ['database', 'bench']]) },
  { kind: 'password', data: Uint8Array.from([...cstring('SCRAM-SHA-256'), ...int32(3), 0x6e, 0x2c, 0x2c]) },
  { kind: 'query', sql: 'SELECT 1; SELECT \u00e9t\u00e9' },
  { kind: 'parse', name: 's1', sql: 'SELECT $1::int', parameterTypes: [23] },
  { kind: 'bind', portal: '', statement: 's1', parameterFormats: [1], parameters: [Uint8Array.of(0, 0, 0, 42), null], resultFormats: [0] },
  { kind: 'describe', target: 'portal', name: '' },
  { kind: 'execute', portal: '', rowLimit: 100 },
  { kind: 'flush' },
  { kind: 'close', target: 'statement', name: 's1' },
  { kind: 'sync' },
  { kind: 'copyData', data: Uint8Array.of(1, 2, 3) },
  { kind: 'copyDone' },
  { kind: 'copyFail', message: 'no more' },
  { kind: 'terminate' },
];

test('a client stream decodes to the same messages split at every byte offset, and in single bytes (W1)', () => {
  const whole = new FrontendDecoder().push(stream);
  assert.deepEqual(whole, expected);
  for (let split = 1; split < stream.length; split++) {
    const decoder = new FrontendDecoder();
    const messages = [...decoder.push(stream.slice(0, split)), ...decoder.push(stream.slice(split))];
    assert.deepEqual(messages, expected, `split at ${split}`);
    assert.equal(decoder.pendingBytes, 0);
  }
  const decoder = new FrontendDecoder();
  const bytewise: FrontendMessage[] = [];
  for (const byte of stream) bytewise.push(...decoder.push(Uint8Array.of(byte)));
  assert.deepEqual(bytewise, expected);
});

test('malformed messages are protocol violations (W2)', () => {
  const afterStartup = (bytes: number[]): FrontendMessage[] => {
    const decoder = new FrontendDecoder();
    decoder.startupDone();
    return decoder.push(Uint8Array.from(bytes));
  };
  assert.throws(() => afterStartup([0x51, ...int32(3)]), ProtocolError, 'length below 4');
  assert.throws(() => afterStartup([0x51, ...int32(0x7fffffff)]), ProtocolError, 'length over the limit');
  assert.throws(() => afterStartup(typed('Q', [0x41, 0x42])), ProtocolError, 'unterminated string');
  assert.throws(() => afterStartup(typed('Q', [0xff, 0xfe, 0])), ProtocolError, 'invalid UTF-8');
  assert.throws(() => afterStartup(typed('Z', [])), ProtocolError, 'a backend message type');
  assert.throws(() => afterStartup(typed('E', [...cstring(''), ...int32(1), 9])), ProtocolError, 'trailing bytes');
  assert.throws(() => afterStartup(typed('D', [0x58, 0])), ProtocolError, 'bad describe target');
  assert.throws(() => afterStartup(typed('B', [...cstring(''), ...cstring(''), ...int16(1), ...int16(7), ...int16(0), ...int16(0)])), ProtocolError, 'bad format code');
  assert.throws(() => new FrontendDecoder().push(Uint8Array.from(untyped([...int32(196608), ...cstring('user')]))), ProtocolError, 'startup without a value');
  // pushInto keeps the messages before the bad one, so they can be answered first.
  const decoder = new FrontendDecoder();
  decoder.startupDone();
  const before: FrontendMessage[] = [];
  assert.throws(() => decoder.pushInto(Uint8Array.from([...typed('S', []), ...typed('H', []), 0x51, ...int32(2)]), before), ProtocolError);
  assert.deepEqual(before, [{ kind: 'sync' }, { kind: 'flush' }]);
  // A partial message is not an error: it waits for more bytes.
  assert.deepEqual(afterStartup([0x51, ...int32(10), 0x41]), []);
});

test('backend messages encode to PostgreSQL bytes', () => {
  const bytes = (message: Parameters<typeof encodeBackend>[0]): number[] => [...encodeBackend(message)];
  assert.deepEqual(bytes({ kind: 'readyForQuery', status: 'I' }), [0x5a, 0, 0, 0, 5, 0x49]);
  assert.deepEqual(bytes({ kind: 'authenticationOk' }), [0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
  assert.deepEqual(bytes({ kind: 'sslRefused' }), [0x4e]);
  assert.deepEqual(bytes({ kind: 'commandComplete', tag: 'SELECT 1' }), [0x43, ...int32(13), ...cstring('SELECT 1')]);
  assert.deepEqual(bytes({ kind: 'dataRow', values: [enc.encode('42'), null] }), [0x44, ...int32(4 + 2 + 4 + 2 + 4), ...int16(2), ...int32(2), 0x34, 0x32, ...int32(-1)]);
  assert.deepEqual(bytes({ kind: 'rowDescription', fields: [{ name: 'a', tableOid: 0, columnNumber: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }] }), [
    0x54,
    ...int32(4 + 2 + 2 + 18),
    ...int16(1),
    ...cstring('a'),
    ...int32(0),
    ...int16(0),
    ...int32(23),
    ...int16(4),
    ...int32(-1),
    ...int16(0),
  ]);
  assert.deepEqual(bytes({ kind: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256'] }), [0x52, ...int32(4 + 4 + 14 + 1), ...int32(10), ...cstring('SCRAM-SHA-256'), 0]);
  assert.deepEqual(bytes({ kind: 'errorResponse', fields: { severity: 'ERROR', code: '42P01', message: 'relation "t" does not exist' } }), [
    0x45,
    ...int32(4 + 7 + 7 + 7 + 29 + 1),
    0x53,
    ...cstring('ERROR'),
    0x56,
    ...cstring('ERROR'),
    0x43,
    ...cstring('42P01'),
    0x4d,
    ...cstring('relation "t" does not exist'),
    0,
  ]);
});

test('extended-query, COPY and notice backend messages encode to PostgreSQL bytes', () => {
  const bytes = (message: Parameters<typeof encodeBackend>[0]): number[] => [...encodeBackend(message)];
  assert.deepEqual(bytes({ kind: 'parseComplete' }), [0x31, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'bindComplete' }), [0x32, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'closeComplete' }), [0x33, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'noData' }), [0x6e, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'portalSuspended' }), [0x73, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'emptyQueryResponse' }), [0x49, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'parameterDescription', typeOids: [23, 25] }), [0x74, ...int32(4 + 2 + 8), ...int16(2), ...int32(23), ...int32(25)]);
  assert.deepEqual(bytes({ kind: 'parameterDescription', typeOids: [] }), [0x74, ...int32(6), ...int16(0)]);
  // An OID above 2^31 is written as its unsigned 32 bits.
  assert.deepEqual(bytes({ kind: 'parameterDescription', typeOids: [0xfffffffe] }).slice(7), [0xff, 0xff, 0xff, 0xfe]);
  assert.deepEqual(bytes({ kind: 'copyInResponse', format: 0, columnFormats: [0, 0] }), [0x47, ...int32(4 + 1 + 2 + 4), 0, ...int16(2), ...int16(0), ...int16(0)]);
  assert.deepEqual(bytes({ kind: 'copyOutResponse', format: 1, columnFormats: [1] }), [0x48, ...int32(4 + 1 + 2 + 2), 1, ...int16(1), ...int16(1)]);
  assert.deepEqual(bytes({ kind: 'copyData', data: enc.encode('a\tb\n') }), [0x64, ...int32(8), 0x61, 0x09, 0x62, 0x0a]);
  assert.deepEqual(bytes({ kind: 'copyDone' }), [0x63, ...int32(4)]);
  assert.deepEqual(bytes({ kind: 'noticeResponse', fields: { severity: 'NOTICE', code: '00000', message: 'hi', detail: 'd', hint: 'h', position: 7 } }), [
    0x4e,
    ...int32(4 + 8 + 8 + 7 + 4 + 3 + 3 + 3 + 1),
    0x53,
    ...cstring('NOTICE'),
    0x56,
    ...cstring('NOTICE'),
    0x43,
    ...cstring('00000'),
    0x4d,
    ...cstring('hi'),
    0x44,
    ...cstring('d'),
    0x48,
    ...cstring('h'),
    0x50,
    ...cstring('7'),
    0,
  ]);
});

test('strings with characters past ASCII encode as UTF-8, whatever precedes them', () => {
  for (const text of ['\u00e9t\u00e9', 'relation "caf\u00e9" does not exist', 'a\u{1F600}b', 'plain']) {
    const bytes = encodeBackend({ kind: 'commandComplete', tag: text });
    const body = [...new TextEncoder().encode(text), 0];
    assert.deepEqual([...bytes], [0x43, ...int32(body.length + 4), ...body], text);
  }
});
