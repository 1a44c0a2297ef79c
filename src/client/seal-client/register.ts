/**
 * `register` for SealClient: prove to keybot on an ordinary IRC network that the user holds the
 * key registered for their account (src/crypto/key-proof.ts; docs/NETWORKS.md "Registering a
 * key"). keybot answers `register` with a nonce and the network and account it sees; the proof
 * binds the network name this client's own server announces, and the account keybot saw must be
 * the one we logged in as.
 */
import {
  encodeKeyRegistration,
  frameKeyRegistration,
  signKeyProof,
  type PrivateKeyHandle,
} from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';
import { SealClientError } from '../errors.js';

const NONCE_LINE = /^register: nonce ([A-Za-z0-9+/=]+) network (\S+) account (\S+)$/;

/** The registration lines to send after keybot's nonce line, or why not. */
export function registrationLines(o: {
  reply: string[];
  network: string;
  account: string;
  key: PrivateKeyHandle;
  /** The key registered so far, to sign the change (then no cool-down). */
  oldKey?: PrivateKeyHandle;
}): string[] {
  const line = o.reply.map((l) => NONCE_LINE.exec(l)).find((m) => m !== null);
  if (!line) throw new SealClientError('keybot-refused', `keybot did not offer a nonce: ${o.reply.join(' / ') || 'no answer'}`);
  const [, b64, network, account] = line;
  if (network !== o.network) throw new SealClientError('keybot-refused', `keybot is on network ${network}, our server says ${o.network}`);
  if (casefold(account!) !== casefold(o.account)) throw new SealClientError('keybot-refused', `keybot sees us as account ${account}, we logged in as ${o.account}`);
  const nonce = new Uint8Array(Buffer.from(b64!, 'base64'));
  const fields = { network, account: account!, fingerprint: o.key.fingerprint, nonce };
  const proof = signKeyProof({ ...fields, purpose: 'possess', signer: o.key });
  const endorsement = o.oldKey && o.oldKey.fingerprint !== o.key.fingerprint ? signKeyProof({ ...fields, purpose: 'endorse', signer: o.oldKey }) : undefined;
  const data = encodeKeyRegistration({ network, account: account!, nonce, publicKey: o.key.publicKey.armored, proof, ...(endorsement ? { endorsement } : {}) });
  return frameKeyRegistration(data);
}
