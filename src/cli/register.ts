/**
 * `sealchat register`: on an existing IRC network where keybot keeps its own key directory
 * (docs/NETWORKS.md "Registering a key"), prove to keybot that you hold your key, so that it keys
 * you into rooms. Logs in with SASL (the network's services account), answers keybot's nonce
 * with a proof signed by the key, prints keybot's answer and quits. `--old-key` also signs with
 * the key registered so far, which lets a key change take effect without the cool-down.
 *
 * `--keybot-account`: on a network without services (ngIRCd), keybot keeps the accounts itself;
 * then there is no SASL, and the password logs you in to keybot (`login <password>`, which makes
 * the account the first time) before the key is proven.
 */
import { SealClient } from '../client/client.js';
import { SealClientError } from '../client/errors.js';
import { knownServersFileFor } from '../client/index.js';
import { companionLogin, loginFailure } from './connect.js';
import { serverCertificateNote } from './format.js';
import type { Values } from './keygen.js';
import { PASSPHRASE, PASSWORD, obtainSecret, secretSource, unlockKeyFile } from './secrets.js';
import { CliError } from './util.js';

/** keybot's answer to a good `login`. */
const LOGGED_IN = /^login: (keybot account \S+ created; )?you are logged in as /m;

/** keybot's answer when the key is the registered one now (registered, already was, or a pending change to another was cancelled). */
const REGISTERED = /^register: (key [0-9a-f]+ (registered for|is already registered for) |the pending change to \S+ is cancelled)/m;

export async function runRegister(values: Values, _args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const own = values['keybot-account'] === true;
  const { server, tls, user, keyFile, keybotFingerprint, keybotPublicKey } = await companionLogin(values, own ? 'your nick, and your keybot account' : 'your account on the network');
  const privateKey = await unlockKeyFile(keyFile, secretSource(values, PASSPHRASE));
  const oldKey =
    typeof values['old-key'] === 'string'
      ? await unlockKeyFile(values['old-key'], typeof values['old-passphrase-file'] === 'string' ? { file: values['old-passphrase-file'] } : {})
      : undefined;
  const password = await obtainSecret(
    secretSource(values, PASSWORD),
    PASSWORD,
    own ? `keybot password for ${user} on ${server.host}:${server.port}: ` : `Password for ${user} on ${server.host}:${server.port}: `,
  );

  const client = new SealClient();
  client.on('error', () => undefined);
  try {
    await client.connect({
      host: server.host,
      port: server.port,
      ...tls,
      rejectUnauthorized: values.insecure !== true,
      onServerCertificate: (decision, at) => {
        const note = serverCertificateNote(decision as { status: string; fingerprint?: string }, at, knownServersFileFor(undefined) || undefined);
        if (note) out.write(`${note}\n`);
      },
      nick: user,
      ...(own ? {} : { sasl: { account: user, password } }),
      privateKey,
      ...(keybotFingerprint !== undefined ? { keybotFingerprint } : {}),
      ...(keybotPublicKey !== undefined ? { keybotPublicKey } : {}),
      reconnect: false,
    });
  } catch (err) {
    throw await loginFailure(err, server, user);
  }
  try {
    if (own) {
      // ngIRCd reads a user's lines slowly after a burst (its penalty): keybot's answer may take seconds.
      const login = await client.command(`login ${password}`, 20_000);
      for (const line of login) out.write(`${line}\n`);
      if (login.length === 0) throw new CliError('keybot did not answer the login (is it running on this network, with --accounts keybot?)');
      if (!LOGGED_IN.test(login.join('\n'))) throw new CliError('keybot did not log you in (its answer is above)');
    }
    const reply = await client.register(oldKey ? { oldKey } : {});
    for (const line of reply) out.write(`${line}\n`);
    if (reply.length === 0) throw new CliError('keybot did not answer the registration (is it running on this network?)');
    if (!REGISTERED.test(reply.join('\n'))) throw new CliError('keybot did not register the key (its answer is above)');
    return 0;
  } catch (err) {
    if (err instanceof SealClientError) throw new CliError(`cannot register: ${err.message}`);
    throw err;
  } finally {
    await client.quit().catch(() => undefined);
  }
}
