/**
 * Test keys, made once per mocha process (several test files share them) with openpgp.js and,
 * when it is installed, the real GnuPG.
 */
import {
  generateUserKey,
  readPublicKey,
  signingPublicKeyOf,
  unlockPrivateKey,
  type EnvelopeMember,
  type PrivateKeyHandle,
  type PublicKeyHandle,
} from '../../src/crypto/index.js';
import { GpgHome, gpgAvailable } from './gpg.js';

export interface TestKey {
  name: string;
  publicArmored: string;
  privateArmored: string;
  priv: PrivateKeyHandle;
  pub: PublicKeyHandle;
}

export interface Fixtures {
  /** openpgp.js default: v4 ed25519Legacy + curve25519Legacy. */
  ecc: TestKey;
  /** openpgp.js type 'curve25519': RFC 9580 Ed25519 + X25519. */
  v6ids: TestKey;
  /** openpgp.js RSA 2048. */
  rsa: TestKey;
  /** Another openpgp.js ECC key, for keybot. */
  keybot: TestKey;
  /** A third party's key (wrong key / wrong signer tests). */
  mallory: TestKey;
  /** GnuPG `--quick-gen-key <uid> default`: RSA 3072 [SC] + RSA 3072 [E]. Undefined without gpg. */
  gpgRsa?: TestKey;
  /** GnuPG `--quick-gen-key <uid> future-default`: ed25519 [SC] + cv25519 [E]. Undefined without gpg. */
  gpgEd?: TestKey;
}

async function load(name: string, publicArmored: string, privateArmored: string): Promise<TestKey> {
  const pubRes = await readPublicKey({ armored: publicArmored });
  const privRes = await unlockPrivateKey({ armored: privateArmored });
  if (!pubRes.key) throw new Error(`fixture ${name}: public key rejected: ${pubRes.status} ${pubRes.reason}`);
  if (!privRes.key) throw new Error(`fixture ${name}: private key rejected: ${privRes.status} ${privRes.reason}`);
  return { name, publicArmored, privateArmored, pub: pubRes.key, priv: privRes.key };
}

async function make(name: string, type: 'ecc' | 'curve25519' | 'rsa'): Promise<TestKey> {
  const k = await generateUserKey({ name, type, ...(type === 'rsa' ? { rsaBits: 2048 as const } : {}) });
  return load(name, k.publicArmored, k.privateArmored);
}

let cached: Promise<Fixtures> | undefined;

export function fixtures(): Promise<Fixtures> {
  cached ??= (async () => {
    const [ecc, v6ids, rsa, keybot, mallory] = await Promise.all([
      make('alice', 'ecc'),
      make('bob', 'curve25519'),
      make('carol', 'rsa'),
      make('keybot', 'ecc'),
      make('mallory', 'ecc'),
    ]);
    const f: Fixtures = { ecc, v6ids, rsa, keybot, mallory };
    if (gpgAvailable()) {
      const home = new GpgHome();
      try {
        const r = home.generate('dave <dave@example.org>', 'default');
        const e = home.generate('erin <erin@example.org>', 'future-default');
        f.gpgRsa = await load('dave', r.publicArmored, r.privateArmored);
        f.gpgEd = await load('erin', e.publicArmored, e.privateArmored);
      } finally {
        home.close();
      }
    }
    return f;
  })();
  return cached;
}

/** A test key as a room member (envelope and roster entry). */
export function memberOf(k: TestKey, account = k.name): EnvelopeMember {
  return { account, fingerprint: k.pub.fingerprint, signingKey: signingPublicKeyOf({ key: k.pub }) };
}

/** `n` roster entries `<prefix>0000`… with made-up fingerprints and the RFC 8032 test key as signing key (a roster entry checks its form only). */
export function crowd(n: number, prefix = 'm'): EnvelopeMember[] {
  const signingKey = { alg: 'ed25519' as const, key: '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=' };
  return Array.from({ length: n }, (_, i) => ({ account: `${prefix}${String(i).padStart(4, '0')}`, fingerprint: (i + 1).toString(16).padStart(40, '0'), signingKey }));
}
