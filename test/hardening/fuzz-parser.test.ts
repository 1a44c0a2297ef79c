/**
 * Property-based fuzzing of src/ircd/protocol/message.ts: parseLine against the spec oracle,
 * and serialise → parse round trips. 200k generated lines in the normal run, 10^6 under
 * SEALCHAT_STRESS=1 (npm run test:stress).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { MAX_PARAMS, parseLine, serializeMessage } from '../../src/protocol/message.js';
import { anyLine, variants } from './generators.js';
import { figure, size } from './harness.js';
import { specParse, type SpecParse } from './oracle.js';

const RUNS = size(200_000, 1_000_000);

describe('src/ircd/protocol/message.ts under fuzzing (fast-check)', function () {
  this.timeout(size(60_000, 900_000));

  it(`parses ${RUNS.toLocaleString('en')} generated hostile lines without throwing, as the spec oracle reads them`, () => {
    let checked = 0;
    let slowest = 0;
    let slowestBytes = 0;
    const t0 = performance.now();
    /** Compare one line with the oracle; a description of the difference, or null. */
    const check = (raw: Buffer): string | null => {
      // The session decodes the bytes as UTF-8 (U+FFFD for invalid sequences) before parsing.
      const line = raw.toString('utf8');
      checked++;
      const t = performance.now();
      const got = parseLine(line);
      const dt = performance.now() - t;
      if (dt > slowest) [slowest, slowestBytes] = [dt, raw.length];
      return compare(got, specParse(line));
    };
    const compare = (got: ReturnType<typeof parseLine>, want: SpecParse): string | null => {
      if (!want.ok) return got.ok || got.reason !== want.reason ? `want ${want.reason}, got ${JSON.stringify(got)}` : null;
      if (!got.ok) return `want ${want.command} with ${want.params.length} params, got ${got.reason}`;
      const m = got.message;
      if (m.command !== want.command) return `command ${m.command} != ${want.command}`;
      if (m.source !== want.source) return `source ${m.source} != ${want.source}`;
      if (m.params.length !== want.params.length || m.params.some((p, i) => p !== want.params[i])) {
        return `params ${JSON.stringify(m.params)} != ${JSON.stringify(want.params)}`;
      }
      if (m.tags.size !== want.tags.size || [...m.tags].some(([k, v]) => want.tags.get(k) !== v)) {
        return `tags ${JSON.stringify([...m.tags])} != ${JSON.stringify([...want.tags])}`;
      }
      // Invariants every accepted message keeps.
      if (m.params.length > MAX_PARAMS) return 'more than 15 params accepted';
      if (m.params.slice(0, -1).some((p) => p === '' || p.includes(' ') || p.startsWith(':'))) return 'malformed middle parameter';
      return null;
    };
    fc.assert(
      fc.property(anyLine({ quitWeight: 1 }), fc.integer(), (raw, seed) => {
        for (const v of variants(raw, seed)) {
          const problem = check(v);
          if (problem) throw new Error(`${JSON.stringify(v.toString('utf8'))}: ${problem}`);
        }
      }),
      { numRuns: Math.ceil(RUNS / 8), seed: Number(process.env.SEALCHAT_FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    const ms = performance.now() - t0;
    expect(checked).to.be.at.least(RUNS);
    figure('parseLine lines checked against the oracle', checked);
    figure('parseLine generate+parse+oracle throughput', `${Math.round(checked / (ms / 1000)).toLocaleString('en')} lines/s`);
    figure('parseLine slowest single parse', `${slowest.toFixed(2)} ms (${slowestBytes} bytes; includes any GC pause)`);
  });

  it('round-trips every message it serialises (tags escaped, last parameter colon-prefixed when needed)', () => {
    const middle = fc.stringMatching(/^[^\0\r\n :][^\0\r\n ]{0,20}$/);
    const last = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/[\0\r\n]/g, ''));
    const tagKey = fc.stringMatching(/^\+?[A-Za-z0-9][A-Za-z0-9\-/.]{0,15}$/);
    const tagValue = fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replace(/\0/g, ''));
    const message = fc.record({
      tags: fc.uniqueArray(fc.tuple(tagKey, tagValue), { maxLength: 5, selector: ([k]) => k }),
      source: fc.option(fc.stringMatching(/^[A-Za-z][A-Za-z0-9!@.\-]{0,30}$/)),
      command: fc.oneof(fc.stringMatching(/^[A-Z]{1,12}$/), fc.stringMatching(/^[0-9]{3}$/)),
      params: fc.tuple(fc.array(middle, { maxLength: 13 }), fc.option(last)).map(([m, l]) => (l === null ? m : [...m, l])),
    });
    fc.assert(
      fc.property(message, (m) => {
        const wire = serializeMessage({ tags: new Map(m.tags), source: m.source, command: m.command, params: m.params });
        const parsed = parseLine(wire);
        const tagPart = wire.startsWith('@') ? wire.slice(0, wire.indexOf(' ') + 1) : '';
        const bodyPart = wire.slice(tagPart.length);
        if (Buffer.byteLength(tagPart) > 8191) {
          expect(parsed).to.deep.equal({ ok: false, reason: 'tags_too_long' });
          return;
        }
        if (Buffer.byteLength(bodyPart) + 2 > 512) {
          expect(parsed).to.deep.equal({ ok: false, reason: 'too_long' });
          return;
        }
        expect(parsed.ok, wire).to.equal(true);
        if (!parsed.ok) return;
        expect(parsed.message.command).to.equal(m.command);
        expect(parsed.message.params).to.deep.equal(m.params);
        expect(parsed.message.source).to.equal(m.source);
        // Tag values with characters the escaping cannot carry (none left after removing NUL) round-trip.
        expect([...parsed.message.tags]).to.deep.equal(m.tags);
      }),
      { numRuns: size(5_000, 200_000) },
    );
  });

  // What the parser makes of worst-case inputs is asserted; how long it takes is printed, not
  // asserted (SECURITY.md: tests never assert a time). Tag sections over 4094 bytes are refused
  // before the tag parser runs, so the tag cases stay just under that to reach it.
  it('parses worst-case inputs (escapes, separators, hundreds of tags) to the right result, and prints the time', () => {
    const tags = Array.from({ length: 465 }, (_, i) => `t${i}=\\:`).join(';'); // 4074 bytes
    const worst: Array<[string, (r: ReturnType<typeof parseLine>) => void]> = [
      ['@' + '\\'.repeat(8188) + ' PING x', (r) => expect(r).to.deep.equal({ ok: false, reason: 'tags_too_long' })],
      ['@' + '\\'.repeat(4093) + ' PING x', (r) => expect(r.ok && [r.message.command, r.message.params, r.message.tags.size]).to.deep.equal(['PING', ['x'], 1])],
      ['@' + ';'.repeat(4093) + ' PING x', (r) => expect(r.ok && [r.message.command, r.message.params, r.message.tags.size]).to.deep.equal(['PING', ['x'], 0])],
      ['@' + 'a=\\s;'.repeat(818) + ' PING x', (r) => expect(r.ok && [...r.message.tags]).to.deep.equal([['a', ' ']])],
      ['@' + tags + ' PING x', (r) => {
        expect(r.ok && r.message.tags.size).to.equal(465);
        expect(r.ok && [...r.message.tags.values()].every((v) => v === ';')).to.equal(true);
      }],
      [' '.repeat(8000) + 'PING x', (r) => expect(r.ok && [r.message.command, r.message.params]).to.deep.equal(['PING', ['x']])],
      ['PING' + ' '.repeat(505), (r) => expect(r.ok && [r.message.command, r.message.params]).to.deep.equal(['PING', []])],
      ['PING ' + 'a '.repeat(252), (r) => expect(r).to.deep.equal({ ok: false, reason: 'too_many_params' })],
      ['@' + '='.repeat(4093) + ' ' + ':'.repeat(500), (r) => expect(r.ok).to.equal(false)],
    ];
    for (const [line, check] of worst) {
      check(parseLine(line));
      const t = performance.now();
      for (let i = 0; i < 200; i++) parseLine(line);
      figure(`parseLine x200 ${JSON.stringify(line.slice(0, 12))}... (${line.length} chars)`, `${(performance.now() - t).toFixed(1)} ms`);
    }
  });
});
