/**
 * A message relayed to many recipients, serialised once per tag variant.
 *
 * Recipients differ only in which IRCv3 tags they asked for (server-time, account-tag,
 * message-tags), so there are at most 8 distinct byte strings for one relayed message. Each is
 * built on first use and the same Buffer is written to every recipient of that variant
 * (docs/DESIGN.md "Rules the code keeps": Fan-out).
 */
import { serializeBody, serializeTags } from '../../protocol/message.js';

export const TAG_SERVER_TIME = 1;
export const TAG_ACCOUNT = 2;
export const TAG_MESSAGE_TAGS = 4;

export class Relay {
  /** The untagged line, which most recipients get; the other variants only when asked for. */
  private plain: Buffer | undefined;
  private variants: Array<Buffer | undefined> | undefined;
  private readonly body: string;

  constructor(
    source: string | null,
    command: string,
    params: readonly string[],
    /** Milliseconds since the epoch; server-time. */
    readonly time: number = Date.now(),
    /** Sender's account (account-tag), or null for guests and the server. */
    readonly account: string | null = null,
    /** Client-only tags (`+name`), visible to message-tags recipients. */
    readonly clientTags: ReadonlyMap<string, string> | null = null,
    /** The server's message id (IRCv3 message-ids), visible to message-tags recipients. */
    readonly msgid: string | null = null,
  ) {
    this.body = serializeBody(source, command, params) + '\r\n';
  }

  /** Byte length of the non-tag part including CRLF, for the 512-byte rule. */
  get bodyBytes(): number {
    // The plain line is needed by most recipients anyway; its length is the byte count.
    return (this.plain ??= Buffer.from(this.body)).length;
  }

  bytesFor(mask: number): Buffer {
    if (mask === 0) return (this.plain ??= Buffer.from(this.body));
    const cached = this.variants?.[mask];
    if (cached) return cached;
    let buf: Buffer;
    if (!(mask & TAG_SERVER_TIME) && !(mask & TAG_ACCOUNT && this.account) && !(mask & TAG_MESSAGE_TAGS && (this.clientTags?.size || this.msgid))) {
      // No tag applies to this recipient: the plain line (what serializeTags of nothing gives).
      buf = this.plain ??= Buffer.from(this.body);
    } else {
      const tags = new Map<string, string>();
      if (mask & TAG_ACCOUNT && this.account) tags.set('account', this.account);
      if (mask & TAG_SERVER_TIME) tags.set('time', new Date(this.time).toISOString());
      if (mask & TAG_MESSAGE_TAGS) {
        if (this.clientTags) for (const [k, v] of this.clientTags) tags.set(k, v);
        if (this.msgid) tags.set('msgid', this.msgid);
      }
      buf = Buffer.from(serializeTags(tags) + this.body);
    }
    (this.variants ??= new Array<Buffer | undefined>(8))[mask] = buf;
    return buf;
  }
}
