// SCRAM-SHA-256 against RFC 7677's worked example (user "user", password "pencil"), and
// the ways an exchange must fail.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScramError, ScramServer, scramVerifier } from './scram.js';

const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const clientFirst = 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO';
const serverNonce = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
const clientFinal = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';

test("RFC 7677's SCRAM-SHA-256 example: the server's messages match byte for byte", () => {
  const server = new ScramServer(scramVerifier('pencil', salt, 4096), serverNonce);
  assert.equal(server.clientFirst(clientFirst), 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
  assert.equal(server.clientFinal(clientFinal), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
});

test('a wrong password, a changed nonce, channel binding and out-of-order messages are refused', () => {
  const wrong = new ScramServer(scramVerifier('not pencil', salt, 4096), serverNonce);
  wrong.clientFirst(clientFirst);
  assert.throws(() => wrong.clientFinal(clientFinal), /password authentication failed/);
  const nonce = new ScramServer(scramVerifier('pencil', salt, 4096), 'another');
  nonce.clientFirst(clientFirst);
  assert.throws(() => nonce.clientFinal(clientFinal), /nonce mismatch/);
  assert.throws(() => new ScramServer(scramVerifier('pencil')).clientFirst('p=tls-server-end-point,,n=,r=abc'), /channel binding/);
  assert.throws(() => new ScramServer(scramVerifier('pencil')).clientFinal(clientFinal), ScramError);
  assert.throws(() => new ScramServer(scramVerifier('pencil')).clientFirst('n,,garbage'), ScramError);
});
