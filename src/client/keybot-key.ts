/**
 * Reading keybot's public key out of its NOTICE replies to `pubkey`.
 *
 * IRC lines cannot hold newlines, so keybot sends the armored key one armor line per NOTICE.
 * Clients drop empty lines (irc-framework's say() does), so the blank line that ends the armor
 * headers may be missing: the armor is rebuilt from the BEGIN line, any `Key: value` headers, the
 * base64 body, the optional `=XXXX` checksum and the END line. Whatever keybot sends is only a
 * candidate: the caller pins it by fingerprint (pinning.ts), never because keybot said so.
 */

const BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END = '-----END PGP PUBLIC KEY BLOCK-----';
const HEADER_RE = /^[A-Za-z][A-Za-z0-9-]*: /;
const BODY_RE = /^[A-Za-z0-9+/=]+$/;
/** Public keys are a few KiB (RSA-4096 with a few signatures ~ 4 K characters); refuse floods. */
const MAX_LINES = 400;

export type ArmorStep =
  | { status: 'more' }
  | { status: 'done'; armored: string }
  /** The line is not part of an armored key (keybot said something else). */
  | { status: 'not-armor'; reason: string };

/** Collects the lines of one armored public key. */
export class ArmorCollector {
  private lines: string[] = [];
  private started = false;

  push(rawLine: string): ArmorStep {
    const line = rawLine.trim();
    if (!this.started) {
      if (line === '') return { status: 'more' };
      if (line !== BEGIN) return { status: 'not-armor', reason: `expected "${BEGIN}", got "${line.slice(0, 80)}"` };
      this.started = true;
      return { status: 'more' };
    }
    if (line === END) return { status: 'done', armored: this.rebuild() };
    if (line === '') return { status: 'more' };
    if (this.lines.length >= MAX_LINES) return { status: 'not-armor', reason: 'the key is longer than any public key should be' };
    if (!HEADER_RE.test(line) && !BODY_RE.test(line)) return { status: 'not-armor', reason: 'a line of the key is not armor' };
    this.lines.push(line);
    return { status: 'more' };
  }

  private rebuild(): string {
    const headers = this.lines.filter((l) => HEADER_RE.test(l));
    const body = this.lines.filter((l) => !HEADER_RE.test(l));
    return [BEGIN, ...headers, '', ...body, END, ''].join('\n');
  }
}
