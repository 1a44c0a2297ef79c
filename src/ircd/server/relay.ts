/**
 * A message relayed to many recipients, serialised once per tag variant.
 *
 * Recipients differ only in which IRCv3 tags they asked for (server-time, account-tag,
 * message-tags), so there are at most 8 distinct lines for one relayed message. Each is built
 * on first use, with its UTF-8 length, and the same string is queued to every recipient of that
 * variant (docs/DESIGN.md "Rules the code keeps": Fan-out). Lines stay strings until a session's
 * flush writes its whole turn's output at once (issue 14: no Buffer per relayed message).
 */
import { serializeBody, serializeTags } from '../../protocol/message.js';

export const TAG_SERVER_TIME = 1;
export const TAG_ACCOUNT = 2;
export const TAG_MESSAGE_TAGS = 4;

export class Relay {
  /** The untagged line with CRLF, which most recipients get. */
  private readonly body: string;
  /** UTF-8 length of `body`; -1 until first asked. */
  private bodyLength = -1;
  /** Tagged variants by tag mask, and their UTF-8 lengths; only when asked for. */
  private variants: Array<string | undefined> | undefined;
  private variantLengths: number[] | undefined;

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
    if (this.bodyLength < 0) this.bodyLength = Buffer.byteLength(this.body);
    return this.bodyLength;
  }

  /** The line (CRLF included) for a recipient whose tag caps are `mask`. */
  lineFor(mask: number): string {
    return mask === 0 ? this.body : this.variant(mask);
  }

  /** UTF-8 byte length of lineFor(mask). */
  lengthFor(mask: number): number {
    if (mask === 0) return this.bodyBytes;
    this.variant(mask);
    return this.variantLengths![mask]!;
  }

  /** The line for `mask`, built once per message and mask (the plain line when no tag applies to it). */
  private variant(mask: number): string {
    const cached = this.variants?.[mask];
    if (cached !== undefined) return cached;
    const tags = new Map<string, string>();
    if (mask & TAG_ACCOUNT && this.account) tags.set('account', this.account);
    if (mask & TAG_SERVER_TIME) tags.set('time', new Date(this.time).toISOString());
    if (mask & TAG_MESSAGE_TAGS) {
      if (this.clientTags) for (const [k, v] of this.clientTags) tags.set(k, v);
      if (this.msgid) tags.set('msgid', this.msgid);
    }
    // No tag applies (serializeTags of nothing is ''): the plain line, shared.
    const tagText = serializeTags(tags);
    const line = tagText === '' ? this.body : tagText + this.body;
    (this.variants ??= new Array<string | undefined>(8))[mask] = line;
    (this.variantLengths ??= new Array<number>(8).fill(0))[mask] = Buffer.byteLength(tagText) + this.bodyBytes;
    return line;
  }
}
