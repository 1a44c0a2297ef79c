/**
 * fast-check arbitraries for hostile IRC input: every command of the command table with too few
 * and too many parameters, unknown and malformed command names, tags and bodies around their
 * limits, thousands of parameters, arbitrary Unicode (lone surrogates included), raw bytes that
 * are not UTF-8, NUL and bare CR. Lines never contain LF: the caller frames them (or, for the
 * chaos stream, deliberately does not).
 */
import fc from 'fast-check';
import { Commands } from '../../src/ircd/commands/table.js';

/** Every command name in the table except QUIT (which the callers weight on their own). */
export const TABLE_COMMANDS = [...Commands.keys()].filter((c) => c !== 'QUIT');

const LF = /\n/g;

/** Tokens that steer handlers into their interesting branches. */
const INTERESTING = [
  // channels (valid, service-reserved, malformed, overlong)
  '#f', '#F', '#sc-room', '#', '##', '#a:b', '#a,#b', '#' + 'c'.repeat(60), '&local', '0',
  // nicks and masks
  'fuzzer', 'witness', 'FUZZER', 'keybot', 'KeyBot', 'nobody', '*', '**', 'a*b?', '*!*@*', 'f*', '?',
  // numbers
  '-1', '1e9', '999999999999999999999', '00', 'NaN', '0x10',
  // modes
  '+o', '-o', '+v', '-v', '+k', '-k', '+l', '-l', '+i', '-i', '+s', '+m', '+n', '+t', '+b', 'b', 'e', 'I',
  '+beI', '+ooooo', '-lk', '+iklmnost', '+-+-', '+kl', 'xyz', '+z',
  // CAP, SASL, MONITOR subcommands
  'LS', '302', 'REQ', 'END', 'LIST', 'NAK', 'ACK', 'sasl', '-sasl', 'server-time', 'message-tags', 'echo-message',
  'PLAIN', 'EXTERNAL', '+', Buffer.from('\0fuzzer\0guess').toString('base64'), 'A'.repeat(400), '-', 'C', 'L', 'S',
  // separators and prefixes
  ':', '::', ',', ',,,', '\\', '\x01ACTION\x01', '\x7f',
];

const chars = (set: string): fc.Arbitrary<string> => fc.constantFrom(...set);
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Nick, channel and mask characters (fc.string over a unit is ~10x cheaper than stringMatching). */
const word = fc.string({ unit: chars(LETTERS + '0123456789#&+-*?,.!@_[]{}|^`~='), minLength: 1, maxLength: 24 });
/** "0 1 2 3 ... 2999": sliced for lines with thousands of parameters, built once. */
const MANY_PARAMS = Array.from({ length: 3000 }, (_, i) => String(i % 10)).join(' ');
/** "+t0;+t1;...": sliced for tag sections with thousands of tags, built once. */
const MANY_TAGS = Array.from({ length: 2500 }, (_, i) => `+t${i}`).join(';');
/** Any code points, lone surrogates included (they leave as EF BF BD). */
const anyText = fc.string({ unit: 'binary', maxLength: 60 }).map((s) => s.replace(LF, ''));
/** ASCII including control characters (NUL, CR, BEL, ESC ...). */
const ctrlText = fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => s.replace(LF, ''));

const token: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...INTERESTING) },
  { weight: 12, arbitrary: word },
  { weight: 4, arbitrary: fc.oneof(anyText, ctrlText).map((s) => s.replace(/ /g, '_')).filter((s) => s !== '') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 600 }).map((n) => 'p'.repeat(n)) },
  { weight: 2, arbitrary: fc.array(word, { minLength: 2, maxLength: 40 }).map((a) => a.join(',')) },
);

const trailing: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: anyText },
  { weight: 4, arbitrary: ctrlText },
  { weight: 2, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.integer({ min: 380, max: 520 }).map((n) => 't'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 100 }).map((n) => '\u00e9\u20ac'.repeat(n)) },
);

/** Command names, upper, lower or mixed case. */
function commandName(quitWeight: number): fc.Arbitrary<string> {
  const name = fc.oneof(
    { weight: 24, arbitrary: fc.constantFrom(...TABLE_COMMANDS) },
    ...(quitWeight > 0 ? [{ weight: quitWeight, arbitrary: fc.constant('QUIT') }] : []),
    { weight: 3, arbitrary: fc.string({ unit: chars(LETTERS), minLength: 1, maxLength: 14 }) },
    { weight: 1, arbitrary: fc.string({ unit: chars('0123456789'), minLength: 3, maxLength: 3 }) },
    // malformed, or non-ASCII letters that upper-case to ASCII (U+0131 dotless i, U+00DF sharp s, U+FB00 ff)
    { weight: 1, arbitrary: fc.constantFrom('\u0131son', 'w\u0131ho', '\u00df', '\uFB00', 'PRIV-MSG', '12', '1234', 'JOIN1', '\u00e9', 'a\u00a0b', 'NICK\tx') },
  );
  return fc.tuple(name, fc.nat()).map(([n, bits]) =>
    [...n].map((c, i) => ((bits >> i % 30) & 1 ? c.toLowerCase() : c)).join(''),
  );
}

/** Parameter lists: the command's minimum -1, 0, +1..+5, near the 15-parameter limit, or thousands. */
function paramsFor(command: string): fc.Arbitrary<string[]> {
  const min = Commands.get(command.toUpperCase())?.minParams ?? 1;
  return fc.oneof(
    { weight: 16, arbitrary: fc.array(token, { minLength: Math.max(0, min - 1), maxLength: min + 5 }) },
    { weight: 4, arbitrary: fc.array(token, { maxLength: 3 }) },
    { weight: 4, arbitrary: fc.array(token, { minLength: 13, maxLength: 17 }) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => [MANY_PARAMS.slice(0, 2 * n - 1)]) },
  );
}

const tagKey = fc.oneof(
  fc.constantFrom('+a', 'time', 'msgid', 'label', '+draft/reply', 'account', 'batch', '+typing', '+x=y', '=', '+', ''),
  word,
);
const tagValue = fc.oneof(fc.constant(''), word, anyText.map((s) => s.replace(/ /g, '\\s')), fc.constantFrom('\\', '\\\\', '\\:', 'a\\', '\\q'));

const tagSection: fc.Arbitrary<string> = fc.oneof(
  { weight: 24, arbitrary: fc.array(fc.tuple(tagKey, tagValue), { minLength: 1, maxLength: 6 }).map((kv) => kv.map(([k, v]) => (v ? `${k}=${v}` : k)).join(';')) },
  // around the 8191-byte limit ('@' + text + ' ')
  { weight: 2, arbitrary: fc.integer({ min: 8185, max: 8195 }).map((n) => '+big=' + 'v'.repeat(n - 2 - 5)) },
  // thousands of tags
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 2500 }).map((n) => MANY_TAGS.slice(0, MANY_TAGS.indexOf(`;+t${n};`))) },
  { weight: 1, arbitrary: fc.integer({ min: 9000, max: 12000 }).map((n) => 'x'.repeat(n)) },
);

/** `arb` in `yes` of every `yes + no` draws, else null. */
function sometimes<T>(arb: fc.Arbitrary<T>, yes: number, no: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: no, arbitrary: fc.constant(null) }, { weight: yes, arbitrary: arb });
}

export interface LineOptions {
  /** Relative weight of QUIT among command names (0 = never). */
  quitWeight?: number;
}

/** A command line built from the grammar: [@tags] [:source] command params [:trailing]. */
export function commandLine(opts: LineOptions = {}): fc.Arbitrary<string> {
  return commandName(opts.quitWeight ?? 0).chain((cmd) =>
    fc.record({
      lead: fc.constantFrom('', '', '', ' ', '   '),
      tags: sometimes(tagSection, 1, 5),
      source: sometimes(fc.oneof(fc.constant('fuzzer!f@h'), word, fc.constant('')), 1, 8),
      params: paramsFor(cmd),
      trailing: sometimes(trailing, 1, 1),
      sep: fc.constantFrom(' ', ' ', ' ', '  '),
    }).map(({ lead, tags, source, params, trailing, sep }) => {
      let line = lead;
      if (tags !== null) line += `@${tags} `;
      if (source !== null) line += `:${source} `;
      line += cmd;
      if (params.length) line += sep + params.join(sep);
      if (trailing !== null) line += ` :${trailing}`;
      return line;
    }),
  );
}

/** `head` + as many `ch` as fit in `bytes` (UTF-8), one more when `over`. */
function fill(head: string, ch: string, bytes: number): string {
  const n = Math.max(0, Math.floor((bytes - Buffer.byteLength(head)) / Buffer.byteLength(ch)));
  return head + ch.repeat(n);
}

/** Bodies and tag sections exactly at, under and over their limits, in 1-, 2- and 3-byte characters. */
export const boundaryLine: fc.Arbitrary<string> = fc.oneof(
  // body + CRLF = 505..516 bytes
  fc.tuple(fc.integer({ min: 505, max: 516 }), fc.constantFrom('a', '\u00e9', '\u20ac'), fc.constantFrom('PRIVMSG #f :', 'PING :', 'NOTICE fuzzer :', 'TOPIC #f :', 'AWAY :'))
    .map(([target, ch, head]) => fill(head, ch, target - 2)),
  // '@' + tags + ' ' = 8186..8196 bytes
  fc.tuple(fc.integer({ min: 8186, max: 8196 }), fc.constantFrom('a', '\u00e9', '\u20ac')).map(([target, ch]) => `${fill('@+k=', ch, target - 1)} PING :x`),
);

/** Raw bytes: invalid UTF-8, NUL, CR, anything but LF (0x0A), up to ~10 KB. */
export const rawBytes: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 20, arbitrary: fc.uint8Array({ maxLength: 700 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 8600, maxLength: 10_000 }) },
  // a valid head with a hostile tail
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom('PRIVMSG #f :', 'NICK ', 'JOIN ', 'PING :', 'USER ', 'CAP REQ :', '@a=', 'WHO '), fc.uint8Array({ maxLength: 300 }))
      .map(([head, tail]) => Buffer.concat([Buffer.from(head), tail])),
  },
).map((u) => {
  const b = Buffer.from(u);
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) b[i] = 0x0b;
  return b;
});

/** Bytes that break UTF-8 or framing, spliced into an otherwise valid line. */
export const POISON = [[0x00], [0x0d], [0x80], [0xc0, 0x80], [0xff], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x0d, 0x0d]];

export function mutatedLine(opts: LineOptions = {}): fc.Arbitrary<Buffer> {
  return fc.tuple(commandLine(opts), fc.constantFrom(...POISON), fc.nat()).map(([line, poison, at]) => {
    const b = Buffer.from(line);
    const i = b.length === 0 ? 0 : at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), Buffer.from(poison), b.subarray(i)]);
  });
}

/** One line to send (no LF inside), from every family above. */
export function anyLine(opts: LineOptions = {}): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 12, arbitrary: commandLine(opts).map((s) => Buffer.from(s.replace(LF, ''))) },
    { weight: 3, arbitrary: rawBytes },
    { weight: 2, arbitrary: boundaryLine.map((s) => Buffer.from(s)) },
    { weight: 3, arbitrary: mutatedLine(opts) },
  );
}

/** Chaos: arbitrary bytes with LFs and CRs anywhere, as one write (framing is part of the test). */
export const chaosChunk: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 2000 }),
  fc.array(fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\0', ' ', ':', '@'), anyText, word), { maxLength: 80 }).map((a) => new TextEncoder().encode(a.join(''))),
).map((u) => Buffer.from(u));

/**
 * Cheap derived variants of one generated line (generation is the fuzzers' bottleneck, ~30k
 * lines/s; deriving is ~1M/s): the line itself, cut short, with a poison byte spliced in, with
 * one byte replaced, with its case flipped, behind stray spaces or a tag, doubled, and with a CR
 * at the end. `seed` drives the choices, so a failing (line, seed) pair reproduces.
 */
export function variants(raw: Buffer, seed: number): Buffer[] {
  let x = seed | 0 || 1;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % Math.max(1, n);
  };
  const at = (): number => rnd(raw.length + 1);
  const poison = Buffer.from(POISON[rnd(POISON.length)]!);
  const cut = at();
  const splice = at();
  const replaced = Buffer.from(raw);
  if (replaced.length) replaced[rnd(replaced.length)] = rnd(256) === 10 ? 11 : rnd(256) || 1;
  for (let i = 0; i < replaced.length; i++) if (replaced[i] === 0x0a) replaced[i] = 0x0b;
  const flipped = Buffer.from(raw);
  for (let i = 0; i < flipped.length; i++) {
    const c = flipped[i]! | 0x20;
    if (c >= 0x61 && c <= 0x7a && rnd(2)) flipped[i]! ^= 0x20; // ASCII letters only
  }
  return [
    raw,
    raw.subarray(0, cut),
    Buffer.concat([raw.subarray(0, splice), poison, raw.subarray(splice)]),
    replaced,
    flipped,
    Buffer.concat([Buffer.from(' '.repeat(rnd(4)) + (rnd(2) ? '@x=' + 'y'.repeat(rnd(40)) + ' ' : '')), raw]),
    Buffer.concat([raw, Buffer.from(' '), raw]),
    Buffer.concat([raw, Buffer.from('\r')]),
  ];
}
