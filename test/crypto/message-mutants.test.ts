/**
 * Edges of room messages (src/crypto/message*.ts) that the mutation run of issue 18 showed
 * untested: the exact length limits of a record, of names and of plaintext, what each refusal
 * reports, and misuse. Real keys and real crypto throughout.
 */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import {
  MAX_LINE_PAYLOAD,
  MessageStatus,
  decryptRoomMessage,
  encryptRoomMessage,
  generateRoomKey,
  maxPlaintextBytes,
  peekRoomMessage,
  signingPublicKeyOf,
  splitPlaintext,
  type SigningPublicKey,
} from '../../src/crypto/index.js';
import { fixtures, type Fixtures } from './fixtures.js';

const HEADER = 10;
const NONCE = 12;
const TAG = 16;

/** A record of `length` bytes: version, algorithm code, epoch, seq, then filler. */
function record(length: number, o: { version?: number; alg?: number; epoch?: number; seq?: number } = {}): Uint8Array {
  const r = new Uint8Array(length).fill(0x5a);
  const view = new DataView(r.buffer);
  if (length > 0) r[0] = o.version ?? 1;
  if (length > 1) r[1] = o.alg ?? 1;
  if (length >= HEADER) {
    view.setUint32(2, o.epoch ?? 7);
    view.setUint32(6, o.seq ?? 9);
  }
  return r;
}

const peek = (data: Uint8Array) => peekRoomMessage({ data });

describe('src/crypto/message*.ts: the limits of a record', function () {
  let f: Fixtures;
  const roomKey = generateRoomKey();
  const base = { room: '#ops', epoch: 3, sender: 'alice', seq: 1 };

  before(async function () {
    this.timeout(60_000);
    f = await fixtures();
  });

  describe('reading a header', function () {
    it('calls nine bytes malformed even with an unknown version, and ten bytes of an unknown version unsupported', function () {
      expect(peek(record(9, { version: 2 })).status).to.equal(MessageStatus.MALFORMED);
      expect(peek(record(10, { version: 2 })).status).to.equal(MessageStatus.UNSUPPORTED_VERSION);
      expect(peek(new Uint8Array(0)).status).to.equal(MessageStatus.MALFORMED);
    });

    it('knows only the algorithm codes 1 (Ed25519) and 2 (RSA-PSS)', function () {
      for (const alg of [0, 3, 255]) {
        // 200 bytes is short for any RSA record; 400 would be a fine RSA length.
        expect(peek(record(200, { alg })).status, String(alg)).to.equal(MessageStatus.MALFORMED);
        expect(peek(record(400, { alg })).status, String(alg)).to.equal(MessageStatus.MALFORMED);
      }
      expect(peek(record(200, { alg: 1 })).sigAlg).to.equal('ed25519');
      expect(peek(record(400, { alg: 2 })).sigAlg).to.equal('rsa-pss');
    });

    it('takes an Ed25519 record from an empty text to the largest text, and nothing shorter or longer', function () {
      const smallest = HEADER + NONCE + TAG + 64;
      const largest = smallest + maxPlaintextBytes('ed25519');
      expect(peek(record(smallest - 1)).status).to.equal(MessageStatus.MALFORMED);
      expect(peek(record(smallest)).status).to.equal(MessageStatus.OK);
      expect(peek(record(largest)).status).to.equal(MessageStatus.OK);
      expect(peek(record(largest + 1)).status).to.equal(MessageStatus.MALFORMED);
    });

    it('takes an RSA record from a 2048-bit signature to a 4096-bit one with the largest text, and nothing shorter or longer', function () {
      const smallest = HEADER + NONCE + TAG + 256;
      const largest = HEADER + NONCE + TAG + 512 + maxPlaintextBytes('rsa-pss');
      expect(peek(record(smallest - 1, { alg: 2 })).status).to.equal(MessageStatus.MALFORMED);
      expect(peek(record(smallest, { alg: 2 })).status).to.equal(MessageStatus.OK);
      expect(peek(record(largest, { alg: 2 })).status).to.equal(MessageStatus.OK);
      expect(peek(record(largest + 1, { alg: 2 })).status).to.equal(MessageStatus.MALFORMED);
    });

    it('reads the epoch and the sequence number as big-endian 32-bit numbers, also from a view into a larger buffer', function () {
      const r = record(150, { epoch: 0xfffffffe, seq: 0x01020304 });
      expect(peek(r)).to.deep.equal({ status: MessageStatus.OK, version: 1, sigAlg: 'ed25519', epoch: 0xfffffffe, seq: 0x01020304 });
      const big = new Uint8Array(300);
      big.set(r, 7);
      expect(peek(big.subarray(7, 157))).to.deep.equal({ status: MessageStatus.OK, version: 1, sigAlg: 'ed25519', epoch: 0xfffffffe, seq: 0x01020304 });
    });

    it('reads a payload only with the SC1M prefix, and only as canonical base64', function () {
      const b64 = Buffer.from(record(150)).toString('base64');
      expect(peekRoomMessage({ payload: 'SC1M ' + b64 }).status).to.equal(MessageStatus.OK);
      expect(peekRoomMessage({ payload: 'SC1P ' + b64 }).status).to.equal(MessageStatus.MALFORMED);
      expect(peekRoomMessage({ payload: b64 }).status).to.equal(MessageStatus.MALFORMED);
      expect(peekRoomMessage({ payload: 'SC1M ' + b64.replace(/=*$/, '') + '=' }).status).to.equal(MessageStatus.MALFORMED);
    });

    it('throws on misuse: no options, both payload and data, data that is not bytes, a payload that is not a string', function () {
      expect(() => peekRoomMessage(null as never)).to.throw(TypeError, /one options object/);
      expect(() => peekRoomMessage('SC1M x' as never)).to.throw(TypeError, /one options object/);
      expect(() => peekRoomMessage({ payload: 'SC1M x', data: record(150) })).to.throw(TypeError, /^peekRoomMessage: give options\.payload or options\.data, not both$/);
      expect(() => peekRoomMessage({ data: [1, 2, 3] as never })).to.throw(TypeError, /^peekRoomMessage: options\.data must be a Uint8Array$/);
      expect(() => peekRoomMessage({ payload: 42 as never })).to.throw(TypeError, /^peekRoomMessage: options\.payload must be a string/);
      expect(() => peekRoomMessage({})).to.throw(TypeError, /^peekRoomMessage: options\.payload must be a string/);
    });
  });

  describe('decrypting', function () {
    let payload: string;
    let senderKey: SigningPublicKey;
    const open = (over: Partial<Parameters<typeof decryptRoomMessage>[0]> = {}) =>
      decryptRoomMessage({ payload, roomKey, room: '#ops', sender: 'alice', senderKey, ...over });

    before(function () {
      senderKey = signingPublicKeyOf({ key: f.ecc.pub });
      payload = encryptRoomMessage({ ...base, seq: 41, roomKey, plaintext: 'hello', signer: f.ecc.priv }).payload;
    });

    it('opens a message whose epoch is the one asked for, and names epoch and seq when it is another', function () {
      expect(open({ epoch: 3 })).to.deep.equal({ status: MessageStatus.OK, plaintext: 'hello', seq: 41, epoch: 3 });
      expect(open({ epoch: 2 })).to.deep.equal({ status: MessageStatus.WRONG_EPOCH, epoch: 3, seq: 41 });
      expect(open({ epoch: 0 })).to.deep.equal({ status: MessageStatus.WRONG_EPOCH, epoch: 3, seq: 41 });
    });

    it('names epoch and seq when the room key or the signature is wrong, and nothing else', function () {
      expect(open({ roomKey: generateRoomKey() })).to.deep.equal({ status: MessageStatus.DECRYPT_FAILED, epoch: 3, seq: 41 });
      const forged = encryptRoomMessage({ ...base, seq: 41, roomKey, plaintext: 'hello', signer: f.mallory.priv }).payload;
      expect(open({ payload: forged })).to.deep.equal({ status: MessageStatus.BAD_SIGNATURE, epoch: 3, seq: 41 });
      expect(open({ senderKey: { alg: 'ed25519', key: 'AAAA' } })).to.deep.equal({ status: MessageStatus.BAD_SENDER_KEY });
      expect(open({ senderKey: signingPublicKeyOf({ key: f.rsa.pub }) })).to.deep.equal({ status: MessageStatus.BAD_SIGNATURE });
      expect(open({ payload: 'SC1M AAAA' })).to.deep.equal({ status: MessageStatus.MALFORMED });
    });

    it("calls a record too short for the sender key's signature and a GCM tag malformed, and one byte more a decryption failure", function () {
      // A 3072-bit RSA sender signs with 384 bytes: the record must hold header, nonce, a tag and those.
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
      const rsaKey: SigningPublicKey = { alg: 'rsa-pss', key: publicKey.export({ type: 'spki', format: 'der' }).toString('base64') };
      const tight = HEADER + NONCE + TAG + 384;
      const d = (data: Uint8Array) => decryptRoomMessage({ data, roomKey, room: '#ops', sender: 'alice', senderKey: rsaKey });
      expect(d(record(tight - 1, { alg: 2 })).status).to.equal(MessageStatus.MALFORMED);
      expect(d(record(HEADER + NONCE + TAG + 256, { alg: 2 })).status).to.equal(MessageStatus.MALFORMED);
      expect(d(record(tight, { alg: 2 }))).to.deep.equal({ status: MessageStatus.DECRYPT_FAILED, epoch: 7, seq: 9 });
    });

    it('checks its options before anything else', function () {
      expect(() => decryptRoomMessage(null as never)).to.throw(TypeError, /^decryptRoomMessage: expected one options object$/);
      expect(() => decryptRoomMessage('SC1M x' as never)).to.throw(TypeError, /^decryptRoomMessage: expected one options object$/);
      expect(() => open({ payload: 7 as never })).to.throw(TypeError, /^decryptRoomMessage: options\.payload must be a string/);
      expect(() => open({ roomKey: new Uint8Array(33) })).to.throw(TypeError, /^decryptRoomMessage: options\.roomKey must be a 32-byte Uint8Array$/);
      expect(() => open({ roomKey: Array.from(roomKey) as never })).to.throw(TypeError, /roomKey/);
      expect(() => open({ room: '' })).to.throw(TypeError, /options\.room must be a non-empty string/);
      expect(() => open({ sender: 7 as never })).to.throw(TypeError, /options\.sender must be a non-empty string/);
      expect(() => open({ epoch: -1 })).to.throw(TypeError, /options\.epoch must be an integer from 0 to 4294967295/);
      expect(() => open({ epoch: 1.5 })).to.throw(TypeError, /epoch/);
      expect(() => open({ senderKey: undefined as never })).to.throw(TypeError, /senderKey must be a SigningPublicKey/);
      expect(() => open({ senderKey: 'ed25519' as never })).to.throw(TypeError, /senderKey must be a SigningPublicKey/);
    });
  });

  describe('encrypting', function () {
    const enc = (over: Partial<Parameters<typeof encryptRoomMessage>[0]> = {}) =>
      encryptRoomMessage({ ...base, roomKey, plaintext: 'x', signer: f.ecc.priv, ...over });

    it('takes the largest Ed25519 text in one line, and refuses one byte more with nothing to send', function () {
      const max = maxPlaintextBytes('ed25519');
      const r = enc({ plaintext: 'y'.repeat(max) });
      expect(r.status).to.equal(MessageStatus.OK);
      expect(r.lines).to.deep.equal([r.payload]);
      expect(r.payload.length).to.be.at.most(MAX_LINE_PAYLOAD);
      expect(enc({ plaintext: 'y'.repeat(max + 1) })).to.deep.equal({ status: MessageStatus.TOO_LARGE, payload: '', lines: [] });
      // Counted in UTF-8 bytes, not characters.
      expect(enc({ plaintext: 'é'.repeat(Math.floor(max / 2) + 1) }).status).to.equal(MessageStatus.TOO_LARGE);
    });

    it('sends an RSA signer’s message as SC1P parts, and takes 256 bytes of text but not 257', function () {
      const r = enc({ plaintext: 'z'.repeat(256), signer: f.rsa.priv });
      expect(r.status).to.equal(MessageStatus.OK);
      expect(r.payload.length).to.be.greaterThan(MAX_LINE_PAYLOAD);
      expect(r.lines.length).to.be.greaterThan(1);
      for (const line of r.lines) {
        expect(line.startsWith('SC1P ')).to.equal(true);
        expect(Buffer.byteLength(line)).to.be.at.most(MAX_LINE_PAYLOAD);
      }
      expect(enc({ plaintext: 'z'.repeat(257), signer: f.rsa.priv }).status).to.equal(MessageStatus.TOO_LARGE);
    });

    it('uses a given 12-byte nonce (test vectors), and refuses any other', function () {
      const nonce = new Uint8Array(12).fill(3);
      const a = enc({ nonce });
      const b = enc({ nonce });
      expect(a.payload).to.equal(b.payload); // Ed25519 signatures are deterministic
      expect(Buffer.from(a.payload.slice(5), 'base64').subarray(HEADER, HEADER + NONCE)).to.deep.equal(Buffer.from(nonce));
      expect(() => enc({ nonce: new Uint8Array(11) })).to.throw(TypeError, /options\.nonce must be 12 bytes/);
      expect(() => enc({ nonce: new Uint8Array(13) })).to.throw(TypeError, /nonce/);
      expect(() => enc({ nonce: Array(12).fill(0) as never })).to.throw(TypeError, /nonce/);
    });

    it('takes epochs and sequence numbers from 0 to 2^32-1 and names up to 255 UTF-8 bytes', function () {
      expect(enc({ epoch: 0, seq: 0 }).status).to.equal(MessageStatus.OK);
      const top = enc({ epoch: 0xffffffff, seq: 0xffffffff });
      expect(peekRoomMessage({ payload: top.payload })).to.include({ epoch: 0xffffffff, seq: 0xffffffff });
      expect(() => enc({ epoch: 2 ** 32 })).to.throw(TypeError, /options\.epoch must be an integer from 0 to 4294967295/);
      expect(() => enc({ seq: 2 ** 32 })).to.throw(TypeError, /options\.seq/);
      expect(() => enc({ seq: 0.5 })).to.throw(TypeError, /options\.seq/);
      expect(() => enc({ seq: '1' as never })).to.throw(TypeError, /options\.seq/);
      const room255 = '#' + 'r'.repeat(254);
      const sent = enc({ room: room255 });
      expect(sent.status).to.equal(MessageStatus.OK);
      expect(decryptRoomMessage({ payload: sent.payload, roomKey, room: room255, sender: 'alice', senderKey: signingPublicKeyOf({ key: f.ecc.pub }) }).status).to.equal(MessageStatus.OK);
      expect(() => enc({ room: room255 + 'r' })).to.throw(TypeError, /options\.room is longer than 255 bytes/);
      expect(() => enc({ sender: 'é'.repeat(128) })).to.throw(TypeError, /options\.sender is longer than 255 bytes/);
      expect(() => enc({ sender: '' })).to.throw(TypeError, /options\.sender must be a non-empty string/);
    });

    it('throws on misuse: no options, text that is not a string, a public key as signer', function () {
      expect(() => encryptRoomMessage(undefined as never)).to.throw(TypeError, /^encryptRoomMessage: expected one options object$/);
      expect(() => encryptRoomMessage('hello' as never)).to.throw(TypeError, /^encryptRoomMessage: expected one options object$/);
      expect(() => enc({ roomKey: new Uint8Array(31) })).to.throw(TypeError, /^encryptRoomMessage: options\.roomKey must be a 32-byte Uint8Array$/);
      expect(() => enc({ plaintext: 5 as never })).to.throw(TypeError, /options\.plaintext must be a string/);
      expect(() => enc({ room: undefined as never })).to.throw(TypeError, /options\.room/);
      expect(() => maxPlaintextBytes('dsa' as never)).to.throw(TypeError, /unknown signature algorithm dsa/);
      expect(maxPlaintextBytes('rsa-pss')).to.equal(256);
      expect(maxPlaintextBytes('ed25519')).to.equal(Math.floor((MAX_LINE_PAYLOAD - 5) / 4) * 3 - HEADER - NONCE - TAG - 64);
    });
  });

  describe('splitting text', function () {
    const max = () => maxPlaintextBytes('ed25519');

    it('throws on misuse', function () {
      expect(() => splitPlaintext(null as never)).to.throw(TypeError, /^splitPlaintext: expected one options object$/);
      expect(() => splitPlaintext('some text' as never)).to.throw(TypeError, /^splitPlaintext: expected one options object$/);
      expect(() => splitPlaintext({ text: 3 as never, sigAlg: 'ed25519' })).to.throw(TypeError, /options\.text must be a string/);
    });

    it('breaks after a tab as after a space, and after wide spaces in non-ASCII text', function () {
      const words = Array.from({ length: 60 }, (_, i) => `w${i}x`);
      for (const sep of ['\t', ' ']) {
        const chunks = splitPlaintext({ text: words.join(sep), sigAlg: 'ed25519' });
        expect(chunks.length).to.be.greaterThan(1);
        for (const c of chunks.slice(0, -1)) expect(c.endsWith(sep), JSON.stringify(c)).to.equal(true);
      }
      const cjk = Array.from({ length: 40 }, () => '漢字かな').join('\u3000');
      const chunks = splitPlaintext({ text: cjk, sigAlg: 'ed25519' });
      expect(chunks.join('')).to.equal(cjk);
      for (const c of chunks.slice(0, -1)) expect(c.endsWith('\u3000'), c).to.equal(true);
    });

    it('does not break at a space in the first two thirds of a chunk: the chunk is filled instead', function () {
      const text = 'ab ' + 'x'.repeat(300);
      const chunks = splitPlaintext({ text, sigAlg: 'ed25519' });
      expect(chunks[0]).to.have.length(max());
      expect(chunks.join('')).to.equal(text);
      // A space that ends the first two thirds is used; one byte earlier it is not.
      const twoThirds = Math.ceil((max() * 2) / 3);
      const at = 'a'.repeat(twoThirds - 1) + ' ';
      expect(splitPlaintext({ text: at + 'b'.repeat(300), sigAlg: 'ed25519' })[0]).to.equal(at);
      const before = 'a'.repeat(twoThirds - 2) + ' ';
      expect(splitPlaintext({ text: before + 'b'.repeat(300), sigAlg: 'ed25519' })[0]).to.have.length(max());
    });

    it('carries the words after the last space into the next chunk and keeps counting them', function () {
      const text = ('a'.repeat(100) + ' ' + 'b'.repeat(20) + ' ').repeat(6);
      const chunks = splitPlaintext({ text, sigAlg: 'ed25519' });
      expect(chunks.join('')).to.equal(text);
      for (const c of chunks) expect(Buffer.byteLength(c)).to.be.at.most(max());
      for (const c of chunks.slice(0, -1)) expect(c.endsWith(' ')).to.equal(true);
      expect(chunks.length).to.equal(Math.ceil(Buffer.byteLength(text) / max()));
    });

    it('ends the text before an oversized cluster as its own chunk, then cuts the cluster by code points', function () {
      const huge = 'e' + '\u0301'.repeat(200);
      const chunks = splitPlaintext({ text: 'hi ' + huge + ' ok', sigAlg: 'ed25519' });
      expect(chunks[0]).to.equal('hi ');
      expect(chunks.join('')).to.equal('hi ' + huge + ' ok');
      for (const c of chunks) expect(Buffer.byteLength(c)).to.be.at.most(max());
      expect(Buffer.byteLength(chunks[1]!)).to.be.greaterThan(max() - 2);
    });

    it('forgets the space it broke at: a long word after it is cut where the chunk is full, not at a stale position', function () {
      const text = 'a'.repeat(100) + ' ' + 'b'.repeat(300);
      expect(splitPlaintext({ text, sigAlg: 'ed25519' })).to.deep.equal(['a'.repeat(100) + ' ', 'b'.repeat(max()), 'b'.repeat(max()), 'b'.repeat(300 - 2 * max())]);
    });

    it('keeps text that fills a chunk exactly in one chunk, even with a space late in it', function () {
      const text = 'a'.repeat(100) + ' ' + 'b'.repeat(max() - 101);
      expect(splitPlaintext({ text, sigAlg: 'ed25519' })).to.deep.equal([text]);
    });

    it('fills a chunk exactly when cutting a cluster by code points', function () {
      // é (2 bytes) and 200 combining acutes (2 bytes each): 2 + 65 * 2 = 132 bytes fit exactly.
      const huge = '\u00e9' + '\u0301'.repeat(200);
      const chunks = splitPlaintext({ text: huge, sigAlg: 'ed25519' });
      expect(chunks.map((c) => Buffer.byteLength(c))).to.deep.equal([max(), max(), max(), 2 + 2 * 200 - 3 * max()]);
      expect(chunks.join('')).to.equal(huge);
    });

    it('splits RSA senders’ text at 256 bytes', function () {
      const chunks = splitPlaintext({ text: 'q'.repeat(600), sigAlg: 'rsa-pss' });
      expect(chunks.map((c) => c.length)).to.deep.equal([256, 256, 88]);
    });
  });
});
