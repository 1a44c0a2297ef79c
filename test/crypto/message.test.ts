import { expect } from 'chai';
import { createPrivateKey, sign } from 'node:crypto';
import {
  MAX_LINE_PAYLOAD,
  MessageStatus,
  PartStatus,
  PartsReassembler,
  decryptRoomMessage,
  encryptRoomMessage,
  generateRoomKey,
  maxPlaintextBytes,
  peekRoomMessage,
  signingPublicKeyOf,
  splitPlaintext,
  type SigningPublicKey,
} from '../../src/crypto/index.js';
import { roomMessageAad, sealRoomRecord } from '../../src/crypto/message.js';
import { fixtures, type Fixtures, type TestKey } from './fixtures.js';
import { hex, vector } from './vectors.js';

const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');

/** Decode `SC1M <base64>`, let `mutate` change the record, encode again. */
function tamper(payload: string, mutate: (record: Uint8Array) => void): string {
  const record = new Uint8Array(Buffer.from(payload.slice(5), 'base64'));
  mutate(record);
  return 'SC1M ' + b64(record);
}

describe('src/crypto/message.ts', function () {
  let f: Fixtures;
  const roomKey = generateRoomKey();
  const base = { room: '#Ops', epoch: 3, sender: 'alice', seq: 1 };

  before(async function () {
    this.timeout(30_000);
    f = await fixtures();
  });

  describe('test vector (docs/PROTOCOL.md)', function () {
    it('reproduces the room-message vector byte for byte', function () {
      const v = vector('room-message');
      const seed = hex(v.ed25519_seed!);
      const key = createPrivateKey({
        key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
        format: 'der',
        type: 'pkcs8',
      });
      const record = sealRoomRecord({
        roomKey: hex(v.room_key!),
        room: v.room!,
        epoch: Number(v.epoch),
        sender: v.sender!,
        seq: Number(v.seq),
        plaintext: new TextEncoder().encode(JSON.parse(v.plaintext!) as string),
        nonce: hex(v.nonce!),
        alg: 'ed25519',
        sign: (t) => {
          expect(Buffer.from(t).toString('hex')).to.equal(v.transcript!.replace(/\s+/g, ''));
          return new Uint8Array(sign(null, t, key));
        },
      });
      const aad = roomMessageAad(record.subarray(0, 10), new TextEncoder().encode('#sealchat'), new TextEncoder().encode('alice'));
      expect(Buffer.from(aad).toString('hex')).to.equal(v.aad);
      expect(Buffer.from(record).toString('hex')).to.equal(v.record!.replace(/\s+/g, ''));
      expect('SC1M ' + b64(record)).to.equal(v.payload);
    });

    it('decrypts and verifies the vector with the public key alone', function () {
      const v = vector('room-message');
      const r = decryptRoomMessage({
        payload: v.payload!,
        roomKey: hex(v.room_key!),
        room: v.room!,
        sender: v.sender!,
        senderKey: { alg: 'ed25519', key: v.ed25519_public_base64! },
      });
      expect(r.status).to.equal(MessageStatus.OK);
      expect(r.plaintext).to.equal(JSON.parse(v.plaintext!));
      expect(r.epoch).to.equal(Number(v.epoch));
      expect(r.seq).to.equal(Number(v.seq));
    });
  });

  describe('round trips with every kind of user key', function () {
    const kinds: Array<[string, (f: Fixtures) => TestKey | undefined]> = [
      ['openpgp.js ecc (ed25519Legacy)', (x) => x.ecc],
      ['openpgp.js curve25519 (RFC 9580 Ed25519)', (x) => x.v6ids],
      ['openpgp.js RSA', (x) => x.rsa],
      ['GnuPG RSA 3072', (x) => x.gpgRsa],
      ['GnuPG ed25519', (x) => x.gpgEd],
    ];
    for (const [label, pick] of kinds) {
      it(`signs with the private key and verifies with the extracted public key: ${label}`, function () {
        const k = pick(f);
        if (!k) this.skip();
        const senderKey = signingPublicKeyOf({ key: k!.pub });
        const text = 'größer als 🦊 ' + label;
        const enc = encryptRoomMessage({ ...base, roomKey, plaintext: text, signer: k!.priv });
        expect(enc.status).to.equal(MessageStatus.OK);
        for (const line of enc.lines) expect(Buffer.byteLength(line)).to.be.at.most(MAX_LINE_PAYLOAD);
        let input: { payload: string } | { data: Uint8Array };
        if (senderKey.alg === 'ed25519') {
          expect(enc.lines).to.deep.equal([enc.payload]);
          input = { payload: enc.payload };
        } else {
          // RSA signatures do not fit one line: the record travels as SC1P parts.
          expect(enc.lines.length).to.be.within(2, 5);
          const re = new PartsReassembler();
          let done: Uint8Array | undefined;
          for (const line of enc.lines.slice().reverse()) {
            const r = re.accept({ sender: 'Alice', line, now: 0 });
            if (r.status === PartStatus.COMPLETE) done = r.data;
          }
          input = { data: done! };
        }
        const dec = decryptRoomMessage({ ...input, roomKey, room: '#ops', sender: 'ALICE', senderKey });
        expect(dec.status).to.equal(MessageStatus.OK);
        expect(dec.plaintext).to.equal(text);
        expect(dec.seq).to.equal(1);
      });
    }
  });

  describe('rejections', function () {
    let payload: string;
    let senderKey: SigningPublicKey;
    const open = (over: Partial<Parameters<typeof decryptRoomMessage>[0]> = {}) =>
      decryptRoomMessage({ payload, roomKey, room: '#ops', sender: 'alice', senderKey, ...over });

    before(function () {
      senderKey = signingPublicKeyOf({ key: f.ecc.pub });
      payload = encryptRoomMessage({ ...base, roomKey, plaintext: 'secret plans', signer: f.ecc.priv }).payload;
      expect(open().status).to.equal(MessageStatus.OK);
    });

    it('fails to decrypt with another room key', function () {
      expect(open({ roomKey: generateRoomKey() }).status).to.equal(MessageStatus.DECRYPT_FAILED);
    });

    it('rejects a tampered ciphertext, tag or nonce', function () {
      const sigStart = (r: Uint8Array) => r.length - 64;
      const cases: Array<[string, (r: Uint8Array) => void]> = [
        ['ciphertext', (r) => (r[22] ^= 1)],
        ['tag', (r) => (r[sigStart(r) - 1] ^= 0x80)],
        ['nonce', (r) => (r[10] ^= 1)],
      ];
      for (const [what, mutate] of cases) {
        expect(open({ payload: tamper(payload, mutate) }).status, what).to.equal(MessageStatus.DECRYPT_FAILED);
      }
    });

    it('rejects a tampered header (epoch or sequence number)', function () {
      expect(open({ payload: tamper(payload, (r) => (r[5] ^= 1)) }).status).to.equal(MessageStatus.DECRYPT_FAILED);
      expect(open({ payload: tamper(payload, (r) => (r[9] ^= 1)) }).status).to.equal(MessageStatus.DECRYPT_FAILED);
    });

    it('rejects a tampered signature', function () {
      expect(open({ payload: tamper(payload, (r) => (r[r.length - 1] ^= 1)) }).status).to.equal(MessageStatus.BAD_SIGNATURE);
    });

    it('binds the room, the epoch and the sender', function () {
      expect(open({ room: '#other' }).status).to.equal(MessageStatus.DECRYPT_FAILED);
      expect(open({ sender: 'bob' }).status).to.equal(MessageStatus.DECRYPT_FAILED);
      expect(open({ epoch: 4 }).status).to.equal(MessageStatus.WRONG_EPOCH);
      // ...but casefolds both names.
      expect(open({ room: '#OPS', sender: 'Alice' }).status).to.equal(MessageStatus.OK);
    });

    it('rejects a message signed by another member posing as the sender', function () {
      // Mallory holds the room key, encrypts as "alice" (AAD matches) but signs with her own key.
      const forged = encryptRoomMessage({ ...base, roomKey, plaintext: 'send money', signer: f.mallory.priv }).payload;
      expect(open({ payload: forged }).status).to.equal(MessageStatus.BAD_SIGNATURE);
    });

    it('rejects a signature of another algorithm than the sender key', function () {
      expect(open({ senderKey: signingPublicKeyOf({ key: f.rsa.pub }) }).status).to.equal(MessageStatus.BAD_SIGNATURE);
    });

    it('reports junk as MALFORMED and an unknown version as UNSUPPORTED_VERSION', function () {
      for (const junk of ['hello', 'SC1M', 'SC1M ', 'SC1M !!!!', 'SC1M AAAA', 'SC1M ' + payload.slice(5, 40), payload + 'A']) {
        expect(open({ payload: junk }).status, junk).to.equal(MessageStatus.MALFORMED);
      }
      expect(open({ payload: tamper(payload, (r) => (r[0] = 2)) }).status).to.equal(MessageStatus.UNSUPPORTED_VERSION);
    });

    it('reports a bad sender key', function () {
      expect(open({ senderKey: { alg: 'ed25519', key: 'AAAA' } }).status).to.equal(MessageStatus.BAD_SENDER_KEY);
    });

    it('peeks at the epoch and sequence number without the key', function () {
      expect(peekRoomMessage({ payload })).to.deep.equal({ status: MessageStatus.OK, version: 1, sigAlg: 'ed25519', epoch: 3, seq: 1 });
      expect(peekRoomMessage({ payload: 'SC1M xx' }).status).to.equal(MessageStatus.MALFORMED);
    });

    it('uses a fresh nonce for every message', function () {
      const a = encryptRoomMessage({ ...base, roomKey, plaintext: 'same', signer: f.ecc.priv }).payload;
      const b = encryptRoomMessage({ ...base, roomKey, plaintext: 'same', signer: f.ecc.priv }).payload;
      expect(a).to.not.equal(b);
    });

    it('sanitises decrypted text', function () {
      const p = encryptRoomMessage({ ...base, roomKey, plaintext: 'a\r\nPRIVMSG #x :b\x00c', signer: f.ecc.priv }).payload;
      expect(open({ payload: p }).plaintext).to.equal('aPRIVMSG #x :bc');
    });

    it('refuses a plaintext too long for one message, and throws on misuse', function () {
      const long = 'x'.repeat(maxPlaintextBytes('ed25519') + 1);
      expect(encryptRoomMessage({ ...base, roomKey, plaintext: long, signer: f.ecc.priv }).status).to.equal(MessageStatus.TOO_LARGE);
      expect(() => encryptRoomMessage({ ...base, roomKey: new Uint8Array(16), plaintext: 'x', signer: f.ecc.priv })).to.throw(TypeError, /roomKey/);
      expect(() => encryptRoomMessage({ ...base, seq: -1, roomKey, plaintext: 'x', signer: f.ecc.priv })).to.throw(TypeError, /seq/);
      expect(() => encryptRoomMessage({ ...base, roomKey, plaintext: 'x', signer: f.ecc.pub as never })).to.throw(TypeError, /PrivateKeyHandle/);
    });
  });

  describe('splitPlaintext', function () {
    const samples: Record<string, string> = {
      ascii: 'The quick brown fox jumps over the lazy dog. '.repeat(30),
      cjk: '漢字かな交じり文の長いメッセージです。'.repeat(40),
      emoji: '👩‍👩‍👧‍👦🏳️‍🌈🇯🇵👍🏽'.repeat(40),
      combining: 'e' + '\u0301'.repeat(300) + ' done',
      nospace: 'x'.repeat(2000),
      mixed: 'hi 你好 🦊 Ωμέγα '.repeat(60),
    };

    for (const [name, text] of Object.entries(samples)) {
      it(`keeps every encrypted chunk within ${MAX_LINE_PAYLOAD} bytes: ${name}`, function () {
        for (const sigAlg of ['ed25519', 'rsa-pss'] as const) {
          const chunks = splitPlaintext({ text, sigAlg });
          expect(chunks.join(''), sigAlg).to.equal(text);
          const signer = sigAlg === 'ed25519' ? f.ecc.priv : f.rsa.priv;
          for (const chunk of chunks) {
            expect(chunk.length).to.be.greaterThan(0);
            expect(chunk).to.not.match(/^[\udc00-\udfff]|[\ud800-\udbff]$/); // no split surrogate pair
            const enc = encryptRoomMessage({ ...base, roomKey, plaintext: chunk, signer });
            expect(enc.status).to.equal(MessageStatus.OK);
            for (const line of enc.lines) expect(Buffer.byteLength(line, 'utf8')).to.be.at.most(MAX_LINE_PAYLOAD);
            if (sigAlg === 'ed25519') expect(enc.lines).to.have.length(1);
          }
        }
      });
    }

    it('does not break grapheme clusters (flags, families, skin tones)', function () {
      const text = samples.emoji!;
      const clusters = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)].map((s) => s.segment);
      const chunks = splitPlaintext({ text, sigAlg: 'ed25519' });
      expect(chunks.length).to.be.greaterThan(1);
      for (const c of chunks) {
        const inner = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(c)].map((s) => s.segment);
        for (const g of inner) expect(clusters).to.include(g);
      }
    });

    it('prefers to break after a space', function () {
      const chunks = splitPlaintext({ text: samples.ascii!, sigAlg: 'ed25519' });
      for (const c of chunks.slice(0, -1)) expect(c.endsWith(' ')).to.equal(true);
    });

    it('fills lines: ASCII chunks use the whole budget', function () {
      const chunks = splitPlaintext({ text: samples.nospace!, sigAlg: 'ed25519' });
      expect(chunks[0]).to.have.length(maxPlaintextBytes('ed25519'));
      const enc = encryptRoomMessage({ ...base, roomKey, plaintext: chunks[0]!, signer: f.ecc.priv });
      expect(enc.payload.length).to.be.within(MAX_LINE_PAYLOAD - 4, MAX_LINE_PAYLOAD);
    });

    it('gives nothing for empty text', function () {
      expect(splitPlaintext({ text: '', sigAlg: 'ed25519' })).to.deep.equal([]);
    });
  });
});
