/**
 * Registering the user's key with keybot on an ordinary IRC network (docs/NETWORKS.md
 * "Registering a key"), for every companion: the user (or `SealClient.register()`) sends keybot
 * `register`; keybot answers with a nonce and the network and account it sees; the companion
 * answers with the registration, signed with the user's key (src/crypto/key-proof.ts). The proof
 * binds the network name the companion's own server announces, and the account keybot saw must
 * be the one the companion is logged in as.
 *
 * A nonce is answered only within {@link REGISTER_WAIT_MS} of a `register` the user sent through
 * this companion: a proof is never signed because someone calling itself keybot asked for one.
 */
import { encodeKeyRegistration, frameKeyRegistration, signKeyProof, type PrivateKeyHandle } from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';

/** keybot's answer to `register`. */
export const NONCE_LINE = /^register: nonce ([A-Za-z0-9+/=]+) network (\S+) account (\S+)$/;

/** How long after `register` keybot's nonce is answered (keybot's own nonces live 60 s). */
export const REGISTER_WAIT_MS = 60_000;

/** The registration lines that answer keybot's nonce line (a {@link NONCE_LINE} match), or why not. */
function registrationLines(o: {
  line: RegExpExecArray;
  /** The network name our own server announces (ISUPPORT NETWORK). */
  network: string;
  account: string;
  key: PrivateKeyHandle;
  /** The key registered so far, to sign the change (then no cool-down). */
  oldKey?: PrivateKeyHandle;
}): { lines: string[] } | { refused: string } {
  const [, b64, network, account] = o.line;
  if (o.network === '') return { refused: `the server did not announce its network name (ISUPPORT NETWORK), so keybot's (${network}) cannot be checked` };
  if (network !== o.network) return { refused: `keybot is on network ${network}, our server says ${o.network}` };
  if (casefold(account!) !== casefold(o.account)) return { refused: `keybot sees us as account ${account}, we logged in as ${o.account}` };
  const nonce = Uint8Array.from(atob(b64!), (c) => c.charCodeAt(0));
  const fields = { network, account: account!, fingerprint: o.key.fingerprint, nonce };
  const proof = signKeyProof({ ...fields, purpose: 'possess', signer: o.key });
  const endorsement = o.oldKey && o.oldKey.fingerprint !== o.key.fingerprint ? signKeyProof({ ...fields, purpose: 'endorse', signer: o.oldKey }) : undefined;
  const data = encodeKeyRegistration({ network, account: account!, nonce, publicKey: o.key.publicKey.armored, proof, ...(endorsement ? { endorsement } : {}) });
  return { lines: frameKeyRegistration(data) };
}

/** What {@link KeyRegistration.nonce} decided about a line from keybot. */
export type RegistrationStep =
  /** Not a nonce line. */
  | { kind: 'none' }
  /** A nonce line nobody here asked for (no `register` in the last minute): ignored. */
  | { kind: 'unasked' }
  | { kind: 'refused'; reason: string }
  | { kind: 'answer'; lines: string[]; fingerprint: string; network: string };

/** One companion connection's `register` in flight. */
export class KeyRegistration {
  private askedAt: number | undefined;
  private oldKey: PrivateKeyHandle | undefined;
  private nextOldKey: PrivateKeyHandle | undefined;

  constructor(
    private readonly account: string,
    private readonly key: PrivateKeyHandle,
  ) {}

  /** The next `register` also signs with the key registered so far (a change without the cool-down). */
  endorseWith(oldKey: PrivateKeyHandle | undefined): void {
    this.nextOldKey = oldKey;
  }

  /** The user sent keybot `text`: a bare `register` opens the wait for keybot's nonce. */
  typed(text: string, now: number): void {
    if (!/^\s*register\s*$/i.test(text)) return;
    this.askedAt = now;
    this.oldKey = this.nextOldKey;
    this.nextOldKey = undefined;
  }

  /** A NOTICE keybot sent us: its nonce is answered if we asked for one, once. */
  nonce(text: string, network: string, now: number): RegistrationStep {
    const m = NONCE_LINE.exec(text.trim());
    if (!m) return { kind: 'none' };
    const asked = this.askedAt !== undefined && now - this.askedAt <= REGISTER_WAIT_MS;
    const oldKey = this.oldKey;
    this.askedAt = undefined;
    this.oldKey = undefined;
    if (!asked) return { kind: 'unasked' };
    const r = registrationLines({ line: m, network, account: this.account, key: this.key, ...(oldKey ? { oldKey } : {}) });
    if ('refused' in r) return { kind: 'refused', reason: r.refused };
    return { kind: 'answer', lines: r.lines, fingerprint: this.key.fingerprint, network: m[2]! };
  }
}
