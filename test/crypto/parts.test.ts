import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  FrameStatus,
  MAX_LINE_PAYLOAD,
  PartStatus,
  PartsReassembler,
  classifyLine,
  frameParts,
  parsePart,
} from '../../src/crypto/index.js';
import { hex, vector } from './vectors.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

describe('src/crypto/parts.ts', function () {
  describe('frameParts', function () {
    it('reproduces the parts vector (docs/PROTOCOL.md)', function () {
      const v = vector('parts');
      const r = frameParts({ data: hex(v.data!), kind: 'envelope', id: v.id!, maxChars: Number(v.max_chars) });
      expect(r.status).to.equal(FrameStatus.OK);
      expect(r.parts).to.deep.equal([v.part_1, v.part_2, v.part_3, v.part_4]);
    });

    it('keeps every part within the line budget, also when the count needs 2 or 3 digits', function () {
      for (const size of [1, 200, 5_000, 60_000]) {
        const r = frameParts({ data: bytes(size), kind: 'envelope' });
        expect(r.status).to.equal(FrameStatus.OK);
        for (const p of r.parts) {
          expect(p.length, `size ${size}`).to.be.at.most(MAX_LINE_PAYLOAD);
          expect(p).to.not.match(/^:/);
          expect(p.split(' ')).to.have.length(4);
          expect(parsePart(p)).to.not.equal(undefined);
        }
        // Every part but the last is filled to the budget.
        for (const p of r.parts.slice(0, -1)) expect(p.length).to.be.within(MAX_LINE_PAYLOAD - 2, MAX_LINE_PAYLOAD);
      }
    });

    it('reports data needing more than 999 parts as TOO_LARGE', function () {
      const r = frameParts({ data: bytes(300_000), kind: 'envelope' });
      expect(r.status).to.equal(FrameStatus.TOO_LARGE);
      expect(r.parts).to.deep.equal([]);
    });

    it('throws on misuse', function () {
      expect(() => frameParts({ data: new Uint8Array(0), kind: 'envelope' })).to.throw(TypeError);
      expect(() => frameParts({ data: bytes(3), kind: 'envelope', id: 'has space' })).to.throw(TypeError, /id/);
      expect(() => frameParts({ data: bytes(3), kind: 'bogus' as never })).to.throw(TypeError, /kind/);
    });
  });

  describe('classifyLine / parsePart', function () {
    it('recognises the three line kinds from their prefix', function () {
      expect(classifyLine('SC1M AAAA')).to.equal('message');
      expect(classifyLine('SC1P a 1/2 AAAA')).to.equal('message-part');
      expect(classifyLine('SC1E a 1/2 AAAA')).to.equal('envelope-part');
      for (const other of ['hello', 'SC1X AAAA', 'SC1M', 'sc1m AAAA', ':SC1M AAAA', '']) {
        expect(classifyLine(other), other).to.equal(undefined);
      }
    });

    it('refuses lines that break the grammar', function () {
      for (const bad of [
        'SC1E id 0/2 AAAA', // index 0
        'SC1E id 3/2 AAAA', // index > count
        'SC1E id 01/2 AAAA', // leading zero
        'SC1E id 1/1000 AAAA', // count > 999
        'SC1E id 1/2 AA AA', // space in chunk
        'SC1E id 1/2 AA!A',
        'SC1E id 1/2 ',
        'SC1E id!x 1/2 AAAA',
        'SC1E 12345678901234567 1/2 AAAA', // id too long
        'SC1E id 1/2 AAAA ', // trailing space
        'SC1E  id 1/2 AAAA',
      ]) {
        expect(parsePart(bad), bad).to.equal(undefined);
      }
      expect(parsePart('SC1P ab_-9 2/3 AB+/=')).to.deep.equal({ kind: 'message', id: 'ab_-9', index: 2, count: 3, chunk: 'AB+/=' });
    });
  });

  describe('PartsReassembler', function () {
    const frame = (data: Uint8Array, id?: string) => frameParts({ data, kind: 'envelope', ...(id ? { id } : {}) }).parts;

    it('reassembles parts in any order', function () {
      const data = bytes(1000);
      const parts = frame(data);
      const re = new PartsReassembler();
      const order = [2, 0, 4, 1, 3].filter((i) => i < parts.length);
      expect(parts).to.have.length(5);
      let last;
      for (const i of order) last = re.accept({ sender: 'keybot', line: parts[i]!, now: 1000 });
      expect(last!.status).to.equal(PartStatus.COMPLETE);
      expect(last!.kind).to.equal('envelope');
      expect(Buffer.from(last!.data!).equals(Buffer.from(data))).to.equal(true);
      expect(re.size).to.equal(0);
    });

    it('completes a one-part message at once', function () {
      const r = new PartsReassembler().accept({ sender: 'keybot', line: frame(bytes(10))[0]!, now: 0 });
      expect(r.status).to.equal(PartStatus.COMPLETE);
    });

    it('reports INCOMPLETE while parts are missing, and never completes without them', function () {
      const parts = frame(bytes(1000));
      const re = new PartsReassembler();
      for (const p of parts.slice(0, -1)) expect(re.accept({ sender: 'keybot', line: p, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.size).to.equal(1);
    });

    it('ignores an identical duplicate but drops the message on a conflicting one', function () {
      const parts = frame(bytes(1000), 'dup');
      const re = new PartsReassembler();
      re.accept({ sender: 'keybot', line: parts[0]!, now: 0 });
      expect(re.accept({ sender: 'keybot', line: parts[0]!, now: 0 }).status).to.equal(PartStatus.DUPLICATE);
      const conflicting = parts[0]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      expect(re.accept({ sender: 'keybot', line: conflicting, now: 0 }).status).to.equal(PartStatus.INCONSISTENT);
      expect(re.size).to.equal(0);
    });

    it('drops the message when the count changes', function () {
      const parts = frame(bytes(1000), 'cnt');
      const re = new PartsReassembler();
      re.accept({ sender: 'keybot', line: parts[0]!, now: 0 });
      const r = re.accept({ sender: 'keybot', line: parts[1]!.replace('2/5', '2/6'), now: 0 });
      expect(r.status).to.equal(PartStatus.INCONSISTENT);
      expect(re.size).to.equal(0);
    });

    it('never mixes parts of two ids or two senders', function () {
      const aData = bytes(600);
      const a = frame(aData, 'same');
      const b = frame(bytes(600), 'other');
      const re = new PartsReassembler();
      // Interleave id "same" and id "other" from keybot, and a forged "same" from mallory.
      expect(re.accept({ sender: 'keybot', line: a[0]!, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'keybot', line: b[0]!, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'mallory', line: b[1]!.replace('other', 'same'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'keybot', line: b[1]!, now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      const done = re.accept({ sender: 'KeyBot', line: a[1]!, now: 0 }); // nicks are casefolded
      expect(done.status).to.equal(PartStatus.INCOMPLETE); // "same" has 3 parts
      const last = re.accept({ sender: 'keybot', line: a[2]!, now: 0 });
      expect(last.status).to.equal(PartStatus.COMPLETE);
      expect(last.id).to.equal('same');
      expect(Buffer.from(last.data!).equals(Buffer.from(aData))).to.equal(true);
    });

    it('drops messages over the size cap', function () {
      const re = new PartsReassembler({ maxBytes: 1000 });
      const parts = frame(bytes(2000), 'big');
      const statuses = parts.map((line) => re.accept({ sender: 'keybot', line, now: 0 }).status);
      expect(statuses).to.include(PartStatus.TOO_LARGE);
      expect(statuses).to.not.include(PartStatus.COMPLETE);
      // A one-part message over the cap is refused too.
      const one = frameParts({ data: bytes(2000), kind: 'envelope', maxChars: 4000 }).parts;
      expect(one).to.have.length(1);
      expect(re.accept({ sender: 'keybot', line: one[0]!, now: 0 }).status).to.equal(PartStatus.TOO_LARGE);
    });

    it('caps incomplete messages per sender and in total', function () {
      const re = new PartsReassembler({ maxPendingPerSender: 2, maxPendingMessages: 3 });
      const first = (id: string) => frame(bytes(1000), id)[0]!;
      expect(re.accept({ sender: 'a', line: first('m1'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'a', line: first('m2'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'a', line: first('m3'), now: 0 }).status).to.equal(PartStatus.TOO_MANY_PENDING);
      expect(re.accept({ sender: 'b', line: first('m1'), now: 0 }).status).to.equal(PartStatus.INCOMPLETE);
      expect(re.accept({ sender: 'c', line: first('m1'), now: 0 }).status).to.equal(PartStatus.TOO_MANY_PENDING);
      expect(re.size).to.equal(3);
    });

    it('drops incomplete messages after the timeout', function () {
      const re = new PartsReassembler({ timeoutMs: 30_000 });
      const parts = frame(bytes(1000), 'slow');
      re.accept({ sender: 'keybot', line: parts[0]!, now: 1_000 });
      re.accept({ sender: 'keybot', line: parts[1]!, now: 20_000 });
      expect(re.sweep({ now: 30_999 })).to.equal(0);
      expect(re.size).to.equal(1);
      // The rest arrives too late: the old parts are gone, so it cannot complete.
      for (const p of parts.slice(2)) {
        expect(re.accept({ sender: 'keybot', line: p, now: 31_000 }).status).to.equal(PartStatus.INCOMPLETE);
      }
      expect(re.sweep({ now: 61_000 })).to.equal(1);
      expect(re.size).to.equal(0);
    });

    it('reports non-parts and malformed parts', function () {
      const re = new PartsReassembler();
      expect(re.accept({ sender: 'x', line: 'hello', now: 0 }).status).to.equal(PartStatus.NOT_A_PART);
      expect(re.accept({ sender: 'x', line: 'SC1M AAAA', now: 0 }).status).to.equal(PartStatus.NOT_A_PART);
      expect(re.accept({ sender: 'x', line: 'SC1E id 2/1 AAAA', now: 0 }).status).to.equal(PartStatus.MALFORMED);
      // Parts that join to non-canonical base64.
      re.accept({ sender: 'x', line: 'SC1E bad 1/2 AAA', now: 0 });
      expect(re.accept({ sender: 'x', line: 'SC1E bad 2/2 =A', now: 0 }).status).to.equal(PartStatus.MALFORMED);
    });
  });
});
