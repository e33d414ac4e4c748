// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL's server does it: the server keeps a
// verifier (salt, iterations, StoredKey, ServerKey), never the password; the client proves
// it knows the password and the server proves it knows the verifier. No channel binding
// (no TLS yet): a client that insists on it ("p=") is refused.
//
// Exchange: client-first "n,,n=,r=<client nonce>" -> server-first "r=<nonce>,s=<salt>,i=<n>"
// -> client-final "c=biws,r=<nonce>,p=<proof>" -> server-final "v=<server signature>".

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ScramVerifier {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/** The verifier for a password (what a server stores; PostgreSQL's rolpassword "SCRAM-SHA-256$..."). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): ScramVerifier {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  return { salt, iterations, storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

export class ScramError extends Error {
  override name = 'ScramError';
}

function attributes(message: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of message.split(',')) {
    const at = part.indexOf('=');
    if (at !== 1) throw new ScramError(`malformed SCRAM attribute "${part}"`);
    map.set(part[0]!, part.slice(2));
  }
  return map;
}

/** The server's side of one exchange. */
export class ScramServer {
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private state: 'start' | 'sentFirst' | 'done' = 'start';

  constructor(
    private readonly verifier: ScramVerifier,
    private readonly serverNonce: string = randomBytes(18).toString('base64'),
  ) {}

  /** Takes the client-first message, returns the server-first message. */
  clientFirst(message: string): string {
    if (this.state !== 'start') throw new ScramError('unexpected client-first message');
    const comma = message.indexOf(',');
    const gs2 = message.slice(0, comma);
    if (gs2.startsWith('p=')) throw new ScramError('channel binding is not supported (no TLS)');
    if (gs2 !== 'n' && gs2 !== 'y') throw new ScramError('malformed SCRAM GS2 header');
    const second = message.indexOf(',', comma + 1);
    if (second < 0) throw new ScramError('malformed SCRAM client-first message');
    this.clientFirstBare = message.slice(second + 1);
    const clientNonce = attributes(this.clientFirstBare).get('r');
    if (clientNonce === undefined || clientNonce === '') throw new ScramError('SCRAM client nonce missing');
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    this.state = 'sentFirst';
    return this.serverFirst;
  }

  /** Takes the client-final message; returns the server-final message, or throws if the proof is wrong. */
  clientFinal(message: string): string {
    if (this.state !== 'sentFirst') throw new ScramError('unexpected client-final message');
    this.state = 'done';
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('SCRAM proof missing');
    const withoutProof = message.slice(0, proofAt);
    const fields = attributes(withoutProof);
    if (fields.get('r') !== this.nonce) throw new ScramError('SCRAM nonce mismatch');
    const binding = fields.get('c');
    if (binding !== 'biws' && binding !== 'eSws') throw new ScramError('unexpected SCRAM channel binding');
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(this.verifier.storedKey, authMessage);
    if (proof.length !== signature.length) throw new ScramError('password authentication failed');
    const clientKey = Buffer.alloc(proof.length);
    for (let index = 0; index < proof.length; index++) clientKey[index] = proof[index]! ^ signature[index]!;
    if (!timingSafeEqual(sha256(clientKey), this.verifier.storedKey)) throw new ScramError('password authentication failed');
    return `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}`;
  }
}
