/**
 * Numbered parts (src/crypto/parts.ts): the kinds of line the mutation run (issue 18) showed
 * untested (signed and proposed room operations), the exact size and memory limits of the
 * reassembler, and misuse.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { PartStatus, PartsReassembler, classifyLine, frameParts, parsePart, type PartKind } from '../../src/crypto/index.js';

const A = (n: number): string => 'A'.repeat(n);

describe('src/crypto/parts.ts: line kinds, limits and misuse', function () {
  describe('line kinds', function () {
    it('frames room operations as SC1O and proposals as SC1Q, and each comes back as its own kind', function () {
      const data = new Uint8Array(randomBytes(700));
      for (const [kind, tag, line] of [
        ['op', 'SC1O ', 'op-part'],
        ['proposal', 'SC1Q ', 'proposal-part'],
        ['message', 'SC1P ', 'message-part'],
        ['envelope', 'SC1E ', 'envelope-part'],
      ] as Array<[PartKind, string, string]>) {
        const parts = frameParts({ data, kind }).parts;
        expect(parts.length, kind).to.be.greaterThan(1);
        const re = new PartsReassembler();
        let last;
        for (const p of parts) {
          expect(p.startsWith(tag), kind).to.equal(true);
          expect(classifyLine(p), kind).to.equal(line);
          expect(parsePart(p)?.kind, kind).to.equal(kind);
          last = re.accept({ sender: 'keybot', line: p, now: 0 });
        }
        expect(last!.status, kind).to.equal(PartStatus.COMPLETE);
        expect(last!.kind, kind).to.equal(kind);
        expect(Buffer.from(last!.data!).equals(Buffer.from(data)), kind).to.equal(true);
      }
    });

    it('classifies only lines that begin SC1, a kind letter and a space, with something after it', function () {
      expect(classifyLine('SC1M A')).to.equal('message');
      for (const other of ['XX1M AAAA', 'SC1MXAAAA', 'SC1M ', 'SC1O', 'xSC1O a 1/2 AAAA']) expect(classifyLine(other), other).to.equal(undefined);
      expect(classifyLine(42 as unknown as string)).to.equal(undefined);
    });

    it('parses a part only from the start of the line, and only up to 4096 characters', function () {
      expect(parsePart('xSC1E id 1/2 AAAA')).to.equal(undefined);
      expect(parsePart(':SC1E id 1/2 AAAA')).to.equal(undefined);
      expect(parsePart(`SC1E id 1/2 ${A(4084)}`)?.chunk).to.have.length(4084);
      expect(parsePart(`SC1E id 1/2 ${A(4085)}`)).to.equal(undefined);
      // Something that merely turns into a valid part line is not a line.
      expect(parsePart({ toString: () => 'SC1E id 1/2 AAAA' } as unknown as string)).to.equal(undefined);
    });
  });

  describe('size limits', function () {
    it('completes a message of exactly the byte limit', function () {
      const re = new PartsReassembler({ maxBytes: 300 }); // 400 base64 characters
      expect(re.accept({ sender: 'k', line: `SC1E id 1/2 ${A(200)}`, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      const done = re.accept({ sender: 'k', line: `SC1E id 2/2 ${A(200)}`, now: 0 });
      expect(done.status).to.equal(PartStatus.COMPLETE);
      expect(done.data).to.have.length(300);
    });

    it('drops a message as soon as its parts pass the limit, not when the last one arrives', function () {
      const re = new PartsReassembler({ maxBytes: 300 });
      const line = (i: number): string => `SC1E big ${i}/4 ${A(200)}`;
      expect(re.accept({ sender: 'k', line: line(1), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'k', line: line(2), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'k', line: line(3), now: 0 }).status).to.equal(PartStatus.TOO_LARGE);
      expect(re.size).to.equal(0);
      // What comes after starts afresh and can never complete the dropped message.
      expect(re.accept({ sender: 'k', line: line(4), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.size).to.equal(1);
    });

    it('refuses a part that would pass the shared budget, keeps the messages it already holds, and frees budget when one is dropped', function () {
      const re = new PartsReassembler({ maxPendingChars: 500 });
      expect(re.accept({ sender: 'a', line: `SC1E m1 1/2 ${A(300)}`, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      // Exactly at the budget is still fine.
      expect(re.accept({ sender: 'b', line: `SC1E m2 1/2 ${A(200)}`, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      // A new message that does not fit is refused and leaves nothing behind.
      expect(re.accept({ sender: 'c', line: 'SC1E m3 1/2 AAAA', now: 0 }).status).to.equal(PartStatus.TOO_MANY_PENDING);
      expect(re.size).to.equal(2);
      // A message under way is refused its next part, but kept.
      expect(re.accept({ sender: 'a', line: 'SC1E m1 2/2 AAAA', now: 0 }).status).to.equal(PartStatus.TOO_MANY_PENDING);
      expect(re.size).to.equal(2);
      // b's message is dropped (its count changed): its 200 characters are free again, and a's completes.
      expect(re.accept({ sender: 'b', line: 'SC1E m2 2/3 AAAA', now: 0 }).status).to.equal(PartStatus.INCONSISTENT);
      const done = re.accept({ sender: 'a', line: 'SC1E m1 2/2 AAAA', now: 0 });
      expect(done.status).to.equal(PartStatus.COMPLETE);
      expect(done.data).to.have.length(228);
      expect(re.size).to.equal(0);
    });

    it("counts a sender's incomplete messages down when one completes, and never below what is held", function () {
      const re = new PartsReassembler({ maxPendingPerSender: 2 });
      const first = (id: string): string => `SC1E ${id} 1/2 AAAA`;
      expect(re.accept({ sender: 'a', line: first('m1'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'a', line: first('m2'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'a', line: 'SC1E m1 2/2 AAAA', now: 0 }).status).to.equal(PartStatus.COMPLETE);
      expect(re.accept({ sender: 'a', line: first('m3'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'a', line: first('m4'), now: 0 }).status).to.equal(PartStatus.TOO_MANY_PENDING);
      expect(re.size).to.equal(2);
    });
  });

  describe('misuse', function () {
    it('frameParts throws a TypeError naming what is wrong', function () {
      const data = new Uint8Array(randomBytes(30));
      expect(() => frameParts(undefined as never)).to.throw(TypeError, /frameParts: expected one options object/);
      expect(() => frameParts(null as never)).to.throw(TypeError, /frameParts: expected one options object/);
      expect(() => frameParts('data' as never)).to.throw(TypeError, /frameParts: expected one options object/);
      expect(() => frameParts({ data: new Uint8Array(0), kind: 'envelope' })).to.throw(TypeError, /options.data must be a non-empty Uint8Array/);
      expect(() => frameParts({ data, kind: 'envelope', maxChars: 39 })).to.throw(TypeError, /maxChars must be an integer >= 40/);
      expect(() => frameParts({ data, kind: 'envelope', maxChars: 100.5 })).to.throw(TypeError, /maxChars must be an integer >= 40/);
      for (const p of frameParts({ data, kind: 'envelope', maxChars: 40 }).parts) expect(p.length).to.be.at.most(40);
    });

    it('the reassembler refuses limits that are not positive integers', function () {
      expect(() => new PartsReassembler({ maxBytes: 0 })).to.throw(TypeError, /PartsReassembler: maxBytes must be a positive integer/);
      expect(() => new PartsReassembler({ timeoutMs: 1.5 })).to.throw(TypeError, /timeoutMs must be a positive integer/);
      expect(() => new PartsReassembler({ maxPendingChars: -1 })).to.throw(TypeError, /maxPendingChars must be a positive integer/);
      expect(() => new PartsReassembler({ maxPendingPerSender: 1, maxPendingMessages: 1, maxBytes: 1, maxPendingChars: 1, timeoutMs: 1 })).to.not.throw();
    });

    it('accept throws a TypeError for a missing options object, sender or clock', function () {
      const re = new PartsReassembler();
      const line = 'SC1E id 1/1 AAAA';
      expect(() => re.accept(undefined as never)).to.throw(TypeError, /accept: expected one options object/);
      expect(() => re.accept(null as never)).to.throw(TypeError, /accept: expected one options object/);
      expect(() => re.accept('keybot' as never)).to.throw(TypeError, /accept: expected one options object/);
      expect(() => re.accept({ sender: '', line, now: 0 })).to.throw(TypeError, /options.sender must be a non-empty string/);
      expect(() => re.accept({ sender: 5 as unknown as string, line, now: 0 })).to.throw(TypeError, /options.sender must be a non-empty string/);
      for (const now of [Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
        expect(() => re.accept({ sender: 'keybot', line, now }), String(now)).to.throw(TypeError, /options.now must be a number/);
      }
    });
  });
});
