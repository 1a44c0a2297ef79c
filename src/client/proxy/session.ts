/**
 * One proxied connection: an unmodified IRC client on one side, the sealchat server on the other,
 * and a RoomCryptoEngine in between that sees every PRIVMSG and NOTICE.
 *
 * Server → client: room messages are decrypted and verified, then shown as ordinary PRIVMSGs from
 * their sender; envelope parts disappear; key events, refusals and undecryptable lines become
 * NOTICEs from the pseudo-user `*sealchat`; plaintext someone wrote into an encrypted room is
 * flagged. Everything else passes byte for byte.
 *
 * Client → server: text to an encrypted room is encrypted (one message may become several lines);
 * text the proxy cannot encrypt is never forwarded into a room — the client gets a NOTICE saying
 * why (fail closed). Private messages go through only to keybot (and CTCP queries/replies), unless
 * the user allowed plaintext.
 *
 * The pseudo-user is `*sealchat` (ZNC's `*status` convention): sealchat account names start with
 * a letter, so no one on the server can send a NOTICE that looks like the proxy's.
 *
 * Server lines are handled strictly in arrival order (one queue), so a key envelope is applied
 * before the message after it and a JOIN reaches the client before the key notice for its room.
 *
 * Faults (docs/PROTOCOL.md "Faults"): the room's JOIN, PART, KICK, QUIT and NICK go to
 * RoomMembership (membership.ts), the rules SealClient and the plugin agent apply too: once someone
 * left (or someone unlisted came) the current key is not sent under. Room text typed then is held
 * by the Outbox and sent under the room's next key (`*sealchat` says "held", then "sent"), or
 * reported NOT SENT after 30 s. Only PRIVMSGs to rooms we are in are held.
 */
import { ProxySessionServerSide } from './session-server.js';
import { oneLine } from './session-io.js';

export { PROXY_NICK } from './session-io.js';
export type { ProxySessionOptions, UpstreamOptions } from './session-io.js';

/** One proxied connection; see the file comment. */
export class ProxySession extends ProxySessionServerSide {
  /** Called once when both connections are gone. */
  onClose(listener: () => void): void {
    if (this.closed) queueMicrotask(listener);
    else this.closeListeners.push(listener);
  }

  /** Tell the client and the server goodbye (proxy shutdown). */
  shutdown(reason: string): void {
    if (this.closed) return;
    this.notice(this.nick ?? '*', `the sealchat proxy is shutting down (${reason})`);
    this.toServer(`QUIT :${oneLine(reason)}`);
    this.up.end();
    this.enqueue(() => this.close());
  }
}
