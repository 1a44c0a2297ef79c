/**
 * The agent's side of the history catch-up (src/client/agent/session.ts, over its real socket and
 * real crypto), as a protocol-3 plugin sees it: the agent has the plugin ask for the capabilities
 * and then for each joined room's history, hides what answers it, and hands the history batch back
 * as marked `message` events, in order, with the summary notice.
 */
import { expect } from 'chai';
import path from 'node:path';
import { encryptRoomMessage, generateRoomKey, MessageStatus } from '../../../src/crypto/index.js';
import { startAgent, type Agent } from '../../../src/client/agent/server.js';
import { AgentClient, tempDir } from '../../helpers/agent.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-agenthist';
const SERVER = 'test/h';

describe('src/client/agent/session.ts: the history catch-up, as a plugin sees it', function () {
  this.timeout(30_000);
  let alice: Party, bob: Party, keybot: Party;
  let dir: string;
  let remove: () => Promise<void>;
  let agent: Agent | undefined;
  let c: AgentClient | undefined;

  before(async () => {
    [alice, bob, keybot] = await Promise.all(['alice', 'bob', 'keybot'].map((x) => party(x)));
    ({ dir, remove } = await tempDir());
  });
  after(async () => {
    c?.close();
    await agent?.close();
    await remove();
  });

  it('asks for the capabilities, then for the history of the rooms joined; hides the answers; shows the batch marked, in order, with the summary', async () => {
    agent = await startAgent({ account: 'bob', privateKey: bob.priv, socketPath: path.join(dir, 'h.sock'), knownKeybotsFile: false, keybotPublicKey: keybot.publicArmored });
    c = await AgentClient.connect(agent.socketPath);
    const line = (l: string) => c!.call({ op: 'line', server: SERVER, dir: 'in', line: l });
    const connected = await c.call({ op: 'connected', server: SERVER, nick: 'bob', fresh: true, protocol: 3 });
    expect((connected.send ?? []).map((s: { line: string }) => s.line)).to.include('CAP REQ :draft/chathistory batch server-time message-tags');

    // Placed back in the room at login, before the capabilities are known: asked once they are.
    expect((await line(':bob!bob@h JOIN #sc-agenthist')).action).to.equal('pass');
    expect((await line(':srv 005 bob CHATHISTORY=50 :are supported by this server')).action).to.equal('pass');
    const ack = await line(':srv CAP bob ACK :draft/chathistory batch server-time message-tags');
    expect(ack.action).to.equal('hide');
    expect((ack.send ?? []).map((s: { line: string }) => s.line)).to.deep.equal([`CHATHISTORY LATEST ${ROOM} * 50`]);

    const key = generateRoomKey();
    for (const text of await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch: 7, key, members: [memberOf(alice), memberOf(bob)] })) {
      await line(`:keybot!keybot@h NOTICE bob :${text}`);
    }
    const said = (seq: number, text: string): string => {
      const r = encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 7, sender: 'alice', seq, plaintext: text, signer: alice.priv });
      if (r.status !== MessageStatus.OK) throw new Error(r.status);
      return r.lines[0]!;
    };
    expect((await line(`:srv BATCH +h1 chathistory ${ROOM}`)).action).to.equal('hide');
    const t1 = '2026-12-07T09:00:00.000Z';
    const t2 = '2026-12-07T09:01:00.000Z';
    expect((await line(`@batch=h1;time=${t1};msgid=a1 :alice!alice@h PRIVMSG ${ROOM} :${said(1, 'first')}`)).action).to.equal('hide');
    expect((await line(`@batch=h1;time=${t2};msgid=a2 :alice!alice@h PRIVMSG ${ROOM} :${said(2, 'second ✓ ünï')}`)).action).to.equal('hide');
    const end = await line('BATCH -h1');
    expect(end.action).to.equal('hide');
    const events = (end.events ?? []) as Array<Record<string, any>>;
    const hh = (t: string): string => `${String(new Date(t).getHours()).padStart(2, '0')}:${String(new Date(t).getMinutes()).padStart(2, '0')}`;
    expect(events.filter((e) => e.type === 'message')).to.deep.equal([
      { server: SERVER, type: 'message', target: ROOM, from: 'alice', text: `✓ [history ${hh(t1)}] first`, verified: true, history: true, time: Date.parse(t1) },
      { server: SERVER, type: 'message', target: ROOM, from: 'alice', text: `✓ [history ${hh(t2)}] second ✓ ünï`, verified: true, history: true, time: Date.parse(t2) },
    ]);
    expect(events.filter((e) => e.type === 'notice').map((e) => [e.target, e.text])).to.deep.equal([[ROOM, '2 messages while you were away']]);
    // A live line the history showed is not shown twice.
    expect((await line(`@msgid=a2 :alice!alice@h PRIVMSG ${ROOM} :${said(2, 'second ✓ ünï')}`)).action).to.equal('hide');
  });

  it('a FAIL to a next page ends that room\'s catch-up at once: what came is shown, with the summary saying the rest could not be fetched', async () => {
    const a2 = await startAgent({ account: 'bob', privateKey: bob.priv, socketPath: path.join(dir, 'f.sock'), knownKeybotsFile: false, keybotPublicKey: keybot.publicArmored });
    const c2 = await AgentClient.connect(a2.socketPath);
    try {
      const line = (l: string) => c2.call({ op: 'line', server: SERVER, dir: 'in', line: l });
      await c2.call({ op: 'connected', server: SERVER, nick: 'bob', fresh: true, protocol: 3 });
      await line(':bob!bob@h JOIN #sc-agenthist');
      await line(':srv 005 bob CHATHISTORY=2 :are supported by this server');
      await line(':srv CAP bob ACK :draft/chathistory batch server-time message-tags');
      const key = generateRoomKey();
      for (const text of await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch: 8, key, members: [memberOf(alice), memberOf(bob)] })) {
        await line(`:keybot!keybot@h NOTICE bob :${text}`);
      }
      const said = (seq: number, text: string): string => {
        const r = encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 8, sender: 'alice', seq, plaintext: text, signer: alice.priv });
        if (r.status !== MessageStatus.OK) throw new Error(r.status);
        return r.lines[0]!;
      };
      // A full page (2 of 2): the next one is asked for at once.
      await line(`:srv BATCH +p1 chathistory ${ROOM}`);
      await line(`@batch=p1;time=2026-12-07T09:00:00.000Z;msgid=b3 :alice!alice@h PRIVMSG ${ROOM} :${said(3, 'third')}`);
      await line(`@batch=p1;time=2026-12-07T09:01:00.000Z;msgid=b4 :alice!alice@h PRIVMSG ${ROOM} :${said(4, 'fourth')}`);
      const end = await line('BATCH -p1');
      expect((end.send ?? []).map((x: { line: string }) => x.line)).to.deep.equal([`CHATHISTORY BEFORE ${ROOM} msgid=b3 2`]);
      // The server refuses it: the catch-up ends now, not at its page timeout.
      const fail = await line(`:srv FAIL CHATHISTORY INVALID_TARGET BEFORE ${ROOM} :Messages could not be retrieved`);
      expect(fail.action).to.equal('hide');
      const events = (fail.events ?? []) as Array<Record<string, any>>;
      expect(events.filter((e) => e.type === 'message').map((e) => e.text)).to.have.length(2);
      expect(events.filter((e) => e.type === 'notice' && e.target === ROOM).map((e) => e.text).join(' ')).to.match(/2 messages while you were away.*older history could not be fetched/);
    } finally {
      c2.close();
      await a2.close();
    }
  });
});
