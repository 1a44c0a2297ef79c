/**
 * src/crypto as the browser companion will bundle it (issue 17): esbuild for the browser, with
 * primitives.ts swapped for primitives.browser.ts. The bundle must hold no Node built-in, and
 * the crypto in it must interoperate with the Node build: it opens the protocol's room-message
 * vector, and what each side encrypts and signs, the other decrypts and verifies.
 */
import { expect } from 'chai';
import { build, type Plugin } from 'esbuild';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as nodeCrypto from '../../src/crypto/index.js';
import { hex, vector } from './vectors.js';

type CryptoApi = typeof nodeCrypto;
const SRC = fileURLToPath(new URL('../../src/crypto/', import.meta.url));

/** Resolve src/crypto's ./primitives.js to the browser implementation. */
const browserPrimitives: Plugin = {
  name: 'browser-primitives',
  setup(b) {
    b.onResolve({ filter: /^\.\/primitives\.js$/ }, (args) =>
      path.resolve(args.resolveDir) === path.resolve(SRC) ? { path: path.join(SRC, 'primitives.browser.ts') } : undefined,
    );
  },
};

describe('src/crypto bundled for the browser (primitives.browser.ts)', function () {
  this.timeout(60_000);
  let dir: string;
  let bundled: CryptoApi;
  let inputs: string[];
  let text: string;

  before(async () => {
    const out = await build({
      entryPoints: [path.join(SRC, 'index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [browserPrimitives],
    });
    inputs = Object.keys(out.metafile.inputs);
    text = out.outputFiles[0]!.text;
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bundle-'));
    const file = path.join(dir, 'crypto.mjs');
    await writeFile(file, text);
    bundled = (await import(pathToFileURL(file).href)) as CryptoApi;
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('holds no Node built-in and no Node primitives, only the browser ones', () => {
    expect(inputs.filter((i) => i.startsWith('node:'))).to.deep.equal([]);
    expect(text).to.not.match(/from\s*["']node:|require\(["']node:/);
    expect(inputs.some((i) => i.endsWith('src/crypto/primitives.browser.ts'))).to.equal(true);
    expect(inputs.some((i) => i.endsWith('src/crypto/primitives.ts'))).to.equal(false);
  });

  /** Run `f` as in a browser: no Node Buffer (src/crypto's bytes.ts falls back to plain code). */
  async function withoutBuffer<T>(f: () => Promise<T> | T): Promise<T> {
    const saved = globalThis.Buffer;
    (globalThis as { Buffer?: unknown }).Buffer = undefined;
    try {
      return await f();
    } finally {
      globalThis.Buffer = saved;
    }
  }

  it('opens the room-message vector of docs/PROTOCOL.md', async () => {
    const v = vector('room-message');
    const roomKey = hex(v.room_key!);
    const r = await withoutBuffer(() =>
      bundled.decryptRoomMessage({ payload: v.payload!, roomKey, room: v.room!, sender: v.sender!, senderKey: { alg: 'ed25519', key: v.ed25519_public_base64! } }),
    );
    expect(r.status).to.equal(bundled.MessageStatus.OK);
    expect(r.plaintext).to.equal(JSON.parse(v.plaintext!));
  });

  it('reads what the Node build encrypts and signs, and the Node build reads what it does', async () => {
    const made = await nodeCrypto.generateUserKey({ name: 'alice' });
    const roomKey = nodeCrypto.generateRoomKey();
    const text = 'grüße, über alles — one line';
    for (const [from, to] of [
      [nodeCrypto, bundled],
      [bundled, nodeCrypto],
    ] as const) {
      const asIn = (side: CryptoApi) => <T>(f: () => Promise<T> | T): Promise<T> => (side === bundled ? withoutBuffer(f) : Promise.resolve(f()));
      const unlocked = await asIn(from)(() => from.unlockPrivateKey({ armored: made.privateArmored }));
      expect(unlocked.status).to.equal(from.UnlockStatus.OK);
      const sent = await asIn(from)(() => from.encryptRoomMessage({ roomKey, room: '#sc-bundle', epoch: 7, sender: 'alice', seq: 1, plaintext: text, signer: unlocked.key! }));
      expect(sent.status).to.equal(from.MessageStatus.OK);
      const read = await asIn(to)(() => to.readPublicKey({ armored: made.publicArmored }));
      const senderKey = to.signingPublicKeyOf({ key: read.key! });
      const got = await asIn(to)(() => to.decryptRoomMessage({ payload: sent.payload, roomKey, room: '#sc-bundle', sender: 'alice', senderKey }));
      expect(got.status).to.equal(to.MessageStatus.OK);
      expect(got.plaintext).to.equal(text);
      // The wrong room key opens nothing on either side.
      const wrong = to.decryptRoomMessage({ payload: sent.payload, roomKey: nodeCrypto.generateRoomKey(), room: '#sc-bundle', sender: 'alice', senderKey });
      expect(wrong.status).to.equal(to.MessageStatus.DECRYPT_FAILED);
    }
  });
});
