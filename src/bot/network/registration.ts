/**
 * `register`: a companion registers its user's public key with keybot on an ordinary IRC
 * network by proving possession (src/crypto/key-proof.ts; docs/NETWORKS.md "Registering a key").
 *
 *   companion → keybot   register
 *   keybot → companion   register: nonce <base64> network <NETWORK> account <account>
 *   companion → keybot   register <i>/<n> <base64 chunk>   (the JSON registration, in order)
 *   keybot → companion   register: ... (one line: the outcome)
 *
 * The account is the one the network says sent the lines (account-tag), never a name in the
 * text. A nonce is issued per account, is good for `NONCE_TTL_MS` and is used once. A change of an
 * existing key takes effect at once only with the old key's endorsement; otherwise it waits out
 * the cool-down (keystore.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  KEY_PROOF_NONCE_BYTES,
  KeyProofStatus,
  MAX_KEY_REGISTRATION_BYTES,
  decodeKeyRegistration,
  readPublicKey,
  sameNonce,
  verifyKeyProof,
} from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import type { NetworkKeyStore } from './keystore.js';

const log = createLogger('keybot');

/** How long a nonce waits for its registration. */
const NONCE_TTL_MS = 60_000;
const CHUNK_RE = /^register\s+([1-9][0-9]{0,2})\/([1-9][0-9]{0,2})\s+([A-Za-z0-9+/=]+)\s*$/i;

export interface RegistrationOptions {
  store: NetworkKeyStore;
  /** The network's name (ISUPPORT NETWORK), as proofs bind it. */
  network: () => string;
  /** A key was registered or changed: watch the account's presence, parse its key. */
  onRegistered?: (account: string) => void;
  /** What to tell someone not logged in (default: log in to the network's account). */
  notLoggedIn?: string;
  now?: () => number;
}

export class KeyRegistrations {
  private readonly nonces = new Map<string, { nonce: Uint8Array; until: number }>();
  private readonly partial = new Map<string, { count: number; chunks: string[]; until: number }>();
  private readonly now: () => number;

  constructor(private readonly o: RegistrationOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Whether `text` is a `register` command (then handle() answers it). */
  static matches(text: string): boolean {
    return /^\s*register(\s|$)/i.test(text);
  }

  /** Answer one `register` line from `account` (null: not logged in); `reply` sends a NOTICE to the sender. */
  async handle(account: string | null, text: string, reply: (line: string) => void): Promise<void> {
    if (account === null) return reply(`register refused: ${this.o.notLoggedIn ?? 'log in to your network account first (SASL or NickServ IDENTIFY)'}`);
    const f = casefold(account);
    const now = this.now();
    if (/^\s*register\s*$/i.test(text)) {
      const nonce = randomBytes(KEY_PROOF_NONCE_BYTES);
      this.nonces.set(f, { nonce, until: now + NONCE_TTL_MS });
      this.partial.delete(f);
      return reply(`register: nonce ${nonce.toString('base64')} network ${this.o.network()} account ${account}`);
    }
    const m = CHUNK_RE.exec(text.trim());
    if (!m) return reply('usage: register (your sealchat companion does the rest: sealchat register)');
    const [i, n, chunk] = [Number(m[1]), Number(m[2]), m[3]!];
    let p = this.partial.get(f);
    if (!p || p.until < now || p.count !== n) p = { count: n, chunks: [], until: now + NONCE_TTL_MS };
    if (i !== p.chunks.length + 1 || i > n) {
      this.partial.delete(f);
      return reply(`register refused: part ${i}/${n} out of order; start again`);
    }
    p.chunks.push(chunk);
    this.partial.set(f, p);
    if (p.chunks.join('').length > (MAX_KEY_REGISTRATION_BYTES * 4) / 3 + 4) {
      this.partial.delete(f);
      return reply('register refused: too large');
    }
    if (i < n) return;
    this.partial.delete(f);
    reply(await this.complete(account, Buffer.from(p.chunks.join(''), 'base64')));
  }

  private async complete(account: string, data: Uint8Array): Promise<string> {
    const f = casefold(account);
    const reg = decodeKeyRegistration(data);
    if (!reg) return 'register refused: not a key registration';
    const issued = this.nonces.get(f);
    this.nonces.delete(f);
    if (!issued || issued.until < this.now() || !sameNonce(issued.nonce, reg.nonce)) return 'register refused: no such nonce (expired or used); start again';
    if (casefold(reg.account) !== f) return `register refused: the proof is for account ${reg.account}, you are logged in as ${account}`;
    if (reg.network !== this.o.network()) return `register refused: the proof is for network ${reg.network}, this is ${this.o.network()}`;
    const read = await readPublicKey({ armored: reg.publicKey });
    if (!read.key) return `register refused: the key is unusable (${read.reason ?? read.status})`;
    const fingerprint = read.key.fingerprint;
    const fields = { network: reg.network, account, fingerprint, nonce: reg.nonce };
    const possess = verifyKeyProof({ ...fields, purpose: 'possess', signature: reg.proof, key: read.key });
    if (possess !== KeyProofStatus.OK) return `register refused: the proof of possession does not verify (${possess})`;
    const current = await this.o.store.get(account);
    let endorsed = false;
    if (reg.endorsement && current && current.fingerprint !== fingerprint) {
      const old = await readPublicKey({ armored: current.publicKey });
      const status = old.key ? verifyKeyProof({ ...fields, purpose: 'endorse', signature: reg.endorsement, key: old.key }) : KeyProofStatus.MALFORMED;
      if (status !== KeyProofStatus.OK) return `register refused: the endorsement does not verify under the registered key ${current.fingerprint} (${status})`;
      endorsed = true;
    }
    const r = await this.o.store.register({ account, publicKey: read.key.armored, fingerprint, endorsed });
    switch (r.status) {
      case 'registered':
        log.info(`${account}: key ${fingerprint} registered${r.replaced ? ` (replaces ${r.replaced}, endorsed by it)` : ''}`);
        this.o.onRegistered?.(account);
        return r.replaced
          ? `register: key ${fingerprint} registered for ${account}, replacing ${r.replaced} (signed by it)`
          : `register: key ${fingerprint} registered for ${account}`;
      case 'unchanged':
        return `register: key ${fingerprint} is already registered for ${account}`;
      case 'cancelled':
        log.warn(`${account}: pending key change to ${r.dropped} cancelled by the registered key`);
        return `register: the pending change to ${r.dropped} is cancelled; ${fingerprint} stays registered for ${account}`;
      case 'pending':
        log.warn(`${account}: unendorsed key change to ${fingerprint} requested; takes effect at ${new Date(r.effectiveAt).toISOString()}`);
        return (
          `register refused for now: the change to ${fingerprint} is not signed by the registered key ${r.current}; ` +
          `it takes effect at ${new Date(r.effectiveAt).toISOString()} unless the registered key cancels it (sealchat register with that key)`
        );
    }
  }
}
