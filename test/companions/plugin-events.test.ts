/**
 * How both plugins render what the agent pushes in `events` (messages released after their key
 * came, /me, notices, a key event) and do what it asks in `send`, against a scripted agent on the
 * socket: the parts of the plugins the journeys reach only by timing.
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { connectClient, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';
import { IRSSI_PLUGIN, WEECHAT_PLUGIN, haveWeechatPython } from '../helpers/plugins.js';
import { haveIrssi, haveWeechat, startIrssi, startWeechat, type RealClient } from '../helpers/realclients.js';
import { fakeAgent, noticeEvent } from '../helpers/fake-agent.js';
import { haveCommand } from '../helpers/tmux.js';
import { sendMarker, startWireTap, type WireTap } from '../helpers/wiretap.js';

const haveTmux = await haveCommand('tmux');
const clients = [
  { kind: 'weechat', available: haveTmux && (await haveWeechat()) && (await haveWeechatPython()) },
  { kind: 'irssi', available: haveTmux && (await haveIrssi()) },
] as const;

for (const c of clients) {
  const describeIf = c.available ? describe : describe.skip;
  describeIf(`plugin: ${c.kind} renders agent events${c.available ? '' : ' (SKIPPED: client or tmux missing)'}`, function () {
    this.timeout(30_000);
    let t: TestDaemon;
    let client: RealClient;
    let agent: Awaited<ReturnType<typeof fakeAgent>>;
    let bob: IrcClient;
    /** Between the client and the daemon: every line it sent. */
    let tap: WireTap;

    before(async () => {
      t = await startTestDaemon();
      await t.addUser('alice');
      const b = await t.addUser('bob');
      tap = await startWireTap(t.port);
      client = c.kind === 'weechat' ? await startWeechat({ port: tap.port, nick: 'alice' }) : await startIrssi({ port: tap.port, nick: 'alice' });
      await mkdir(path.join(client.home, '.sealchat'), { recursive: true, mode: 0o700 });
      let fired = false;
      let label = '';
      agent = await fakeAgent(path.join(client.home, '.sealchat', 'agent-alice.sock'), (r) => {
        if (r.op === 'connected') label = r.server as string;
        if (r.op === 'line' && r.dir === 'out' && r.text === 'trigger' && !fired) {
          fired = true;
          return {
            action: 'refuse',
            reason: 'scripted refusal',
            // Protocol 3: released messages come marked, and the plugin is told what to say.
            events: [
              { server: label, type: 'key', target: '#plain', room: '#plain', text: 'key for #plain (epoch 5) from keybot, verified' },
              { server: label, type: 'message', target: '#plain', from: 'bob', text: '✓ released — held until its key came', verified: true },
              { server: label, type: 'message', target: '#plain', from: 'bob', text: '\x01ACTION ✓ waves late\x01', verified: true },
              { server: label, type: 'notice', target: '#plain', text: 'cannot read a message from mallory in #plain: forged', level: 'warn' },
              noticeEvent(label, '#plain', 'NOT SENT: scripted refusal'),
            ],
            send: [{ server: label, line: 'PRIVMSG bob :sent for the agent' }],
          };
        }
        if (r.op === 'line') return { action: 'pass' };
        if (r.op === 'check') return { action: 'pass', encrypted: false, canSend: true };
        return {};
      });
      await client.send(c.kind === 'weechat' ? `/python load ${WEECHAT_PLUGIN}` : `/script load ${IRSSI_PLUGIN}`);
      await client.waitForText(c.kind === 'weechat' ? /registered script "sealchat"/ : /Loaded script sealchat/);
      await client.connect(`pw-alice-secret`);
      await client.waitForText(/Welcome to the sealchat IRC network, alice/);
      bob = await connectClient(t.port, { nick: 'bob', password: b.password });
      const joined = waitFor(bob, 'join', (e: { nick: string }) => e.nick === 'alice');
      bob.join('#plain');
      await waitFor(bob, 'join', (e: { nick: string }) => e.nick === 'bob');
      await client.send('/join #plain');
      await joined;
      await client.showChannel('#plain');
    });

    after(async () => {
      bob?.quit();
      await client?.stop();
      await agent?.close();
      await tap?.close();
      await t?.stop();
    });

    it('tells the agent about the connection with its nick, address and a fresh session', () => {
      const connected = agent.seen.find((r) => r.op === 'connected')!;
      expect(connected).to.include({ nick: 'alice', fresh: true, host: '127.0.0.1', port: tap.port });
      // The label names the client's own connection: WeeChat's server name, irssi's server tag.
      expect(connected.server).to.match(c.kind === 'weechat' ? /^weechat\/t$/ : /^irssi\/127$/);
    });

    it('shows released messages and /me in the room, notices and refusals, and sends what the agent asks', async () => {
      const got = waitFor(bob, 'privmsg', (e: { nick: string; message: string }) => e.nick === 'alice' && e.message === 'sent for the agent');
      await client.send('trigger');
      const screen = await client.waitForText(/NOT SENT: scripted refusal/);
      await got;
      expect(screen).to.match(/sealchat: key for #plain \(epoch 5\) from keybot, verified/);
      expect(screen).to.match(c.kind === 'weechat' ? /bob \| ✓ released — held until its key came/ : /<[@+ ]?bob> ✓ released — held until its key came/);
      expect(screen).to.match(c.kind === 'weechat' ? /\* \| bob ✓ waves late/ : /\* bob ✓ waves late/);
      expect(screen).to.match(/sealchat: cannot read a message from mallory in #plain: forged/);
      // #plain is now known as encrypted: with the agent gone, text there is refused, not sent.
      await agent.close();
      const before = tap.sent.length;
      await client.send('after the agent left');
      await client.waitForText(/NOT SENT to #plain: the sealchat agent at .* is not reachable/);
      const marker = await sendMarker(tap, client, before);
      expect(tap.sent.slice(before, marker).filter((l) => /^(PRIVMSG|NOTICE) /i.test(l)), 'lines the client sent').to.deep.equal([]);
      // Received: sealchat lines are hidden with a note, plaintext in a known-encrypted room is flagged.
      bob.say('#plain', 'SC1M AQEAAAAHAAAAKqChoqOkpaanqKmqq459EEEq5yLNDQrq8');
      bob.say('#plain', 'plain words in a sealed room');
      const down = await client.waitForText(/\[NOT ENCRYPTED, NOT VERIFIED\] plain words in a sealed room/);
      expect(down).not.to.include('AQEAAAAHAAAAKqChoqOkpaanqKmqq459EEEq5yLNDQrq8');
    });
  });
}
