/**
 * IRC line framing for the proxy: bytes in, lines out, without decoding.
 *
 * Lines stay Buffers, so a line the proxy merely forwards goes out byte for byte, even if it is
 * not UTF-8 (an ordinary channel with a Latin-1 user). Only lines the proxy reads are decoded.
 * Lines end in LF (a CR before it is dropped), as RFC 1459 §2.3 readers accept. A line may be up
 * to 512 bytes plus 8191 of tags (IRCv3 message-tags); a longer one is an error, not truncated.
 */

/** Most bytes of one line, tags included (8191 + 512, rounded up). */
export const MAX_WIRE_LINE = 8704;

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLine = MAX_WIRE_LINE) {}

  /**
   * Feed bytes; returns the complete lines (without CR LF), or null if a line grew past the
   * limit (the connection should be closed: resynchronising on a cut line is guesswork).
   */
  push(chunk: Buffer): Buffer[] | null {
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      let line = chunk.subarray(start, nl);
      if (this.pendingBytes > 0) {
        line = Buffer.concat([...this.pending, line]);
        this.pending = [];
        this.pendingBytes = 0;
      }
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length > this.maxLine) return null;
      if (line.length > 0) lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxLine + 1) return null;
      // Copy: the socket may reuse its buffer.
      this.pending.push(Buffer.from(rest));
    }
    return lines;
  }
}
