/**
 * The plugins fail closed whatever the agent does wrong: it answers with an error, it hangs past
 * the plugin's timeout, it is down (for text, /me and NOTICE alike), and when it comes back under
 * a running client the plugin attaches to it again and sends what it encrypts. A scripted agent
 * answers on the socket; a wire tap between the client and the daemon records everything the
 * client sent, read up to a /quote PING marker.
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startTestDaemon, type TestDaemon, connectClient, waitFor } from '../helpers/daemon.js';
import { fakeAgent, noticeEvent, type Req } from '../helpers/fake-agent.js';
import { IRSSI_PLUGIN, WEECHAT_PLUGIN, haveWeechatPython } from '../helpers/plugins.js';
import { until } from '../helpers/poll.js';
import { haveIrssi, haveWeechat, startIrssi, startWeechat, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { sendMarker, startWireTap, type WireTap } from '../helpers/wiretap.js';
import type { Client as IrcClient } from 'irc-framework';

const haveTmux = await haveCommand('tmux');
const clients = [
  { kind: 'weechat', available: haveTmux && (await haveWeechat()) && (await haveWeechatPython()) },
  { kind: 'irssi', available: haveTmux && (await haveIrssi()) },
] as const;

type Mode = 'pass' | 'error' | 'hang';

for (const c of clients) {
  const describeIf = c.available ? describe : describe.skip;
  describeIf(`plugin: ${c.kind} fails closed${c.available ? '' : ' (SKIPPED: client or tmux missing)'}`, function () {
    this.timeout(40_000);
    let t: TestDaemon;
    let tap: WireTap;
    let client: RealClient;
    let bob: IrcClient;
    let socketPath: string;
    let mode: Mode = 'pass';
    let agent: Awaited<ReturnType<typeof fakeAgent>> | undefined;
    let label = '';

    /** The scripted agent: #plain is an encrypted room (a key event), then `mode` decides. */
    const answer = (r: Req): Record<string, unknown> | undefined => {
      if (mode === 'hang' && r.op !== 'connected') return undefined;
      if (r.op === 'connected') label = r.server as string;
      if (r.op === 'check') return { action: 'pass', encrypted: true, canSend: true };
      if (r.op === 'line' && r.dir === 'out') {
        if (r.text === 'mark #plain encrypted') {
          return {
            action: 'refuse',
            reason: 'scripted',
            events: [
              { server: label, type: 'key', target: '#plain', room: '#plain', text: 'key for #plain (epoch 1) from keybot, verified' },
              noticeEvent(label, '#plain', 'NOT SENT: scripted'),
            ],
          };
        }
        if (mode === 'error') return { ok: false, error: 'scripted agent failure' };
        return { action: 'send', lines: [`${r.command} ${r.target} :SC1M sealed-by-the-agent-${r.text.length}`] };
      }
      if (r.op === 'line') return { action: 'pass' };
      return {};
    };

    /** What the client sent to the server from `from` up to a marker, PRIVMSG and NOTICE only. */
    async function sentSince(from: number): Promise<string[]> {
      const marker = await sendMarker(tap, client, from);
      return tap.sent.slice(from, marker).filter((l) => /^(PRIVMSG|NOTICE) /i.test(l));
    }

    before(async () => {
      t = await startTestDaemon();
      await t.addUser('alice');
      const b = await t.addUser('bob');
      tap = await startWireTap(t.port);
      client = c.kind === 'weechat' ? await startWeechat({ port: tap.port, nick: 'alice' }) : await startIrssi({ port: tap.port, nick: 'alice' });
      await mkdir(path.join(client.home, '.sealchat'), { recursive: true, mode: 0o700 });
      socketPath = path.join(client.home, '.sealchat', 'agent-alice.sock');
      agent = await fakeAgent(socketPath, answer);
      await client.send(c.kind === 'weechat' ? `/python load ${WEECHAT_PLUGIN}` : `/script load ${IRSSI_PLUGIN}`);
      await client.waitForText(c.kind === 'weechat' ? /registered script "sealchat"/ : /Loaded script sealchat/);
      if (c.kind === 'weechat') await client.send('/set plugins.var.python.sealchat.timeout 1');
      else await client.send('/set sealchat_timeout 1');
      await client.connect('pw-alice-secret');
      await client.waitForText(/Welcome to the sealchat IRC network, alice/);
      bob = await connectClient(t.port, { nick: 'bob', password: b.password });
      const joined = waitFor(bob, 'join', (e: { nick: string }) => e.nick === 'alice');
      bob.join('#plain');
      await waitFor(bob, 'join', (e: { nick: string }) => e.nick === 'bob');
      await client.send('/join #plain');
      await joined;
      await client.showChannel('#plain');
      await client.send('mark #plain encrypted');
      await client.waitForText(/NOT SENT: scripted/);
    });

    after(async () => {
      bob?.quit();
      await client?.stop();
      await agent?.close();
      await tap?.close();
      await t?.stop();
    });

    it('refuses to send when the agent answers with an error, and says so', async () => {
      mode = 'error';
      const from = tap.sent.length;
      await client.send('secret while the agent fails');
      await client.waitForText(/NOT SENT to #plain: scripted agent failure/);
      expect(await sentSince(from)).to.deep.equal([]);
      expect(agent!.seen.some((r) => r.op === 'line' && r.dir === 'out' && r.text === 'secret while the agent fails'), 'the agent was asked').to.equal(true);
    });

    it('refuses to send when the agent hangs past the timeout', async () => {
      mode = 'hang';
      const from = tap.sent.length;
      await client.send('secret while the agent hangs');
      await client.waitForText(/NOT SENT to #plain: the sealchat agent at .* is not reachable/, 15_000);
      expect(await sentSince(from)).to.deep.equal([]);
    });

    it('refuses /me and NOTICE too while the agent is down', async () => {
      await agent!.close();
      agent = undefined;
      mode = 'pass';
      const from = tap.sent.length;
      await client.send('/me waves while the agent is down');
      await client.send('/notice #plain notice while the agent is down');
      await client.send('plain text while the agent is down');
      await client.waitForText(/NOT SENT to #plain: the sealchat agent at .* is not reachable/);
      // The marker is typed after the three: whatever the client sent for them is before it.
      const sent = await sentSince(from);
      expect(sent.filter((l) => /while the agent is down/.test(l))).to.deep.equal([]);
      expect(sent).to.deep.equal([]);
    });

    it('refuses, while the agent is down, lines that only look harmless: a list naming a room, @#room, two spaces before the room', async () => {
      // Each is read by the daemon as a message to #sc-… (issue 12: they used to go out as typed).
      const from = tap.sent.length;
      await client.send('/quote PRIVMSG #elsewhere,#sc-lookalike :secret one');
      await client.send('/quote PRIVMSG @#sc-lookalike :secret two');
      await client.send('/quote PRIVMSG  #sc-lookalike :secret three');
      const sent = await sentSince(from);
      expect(sent.filter((l) => /secret/.test(l)), 'plaintext on the wire').to.deep.equal([]);
    });

    it('attaches to an agent that comes back under the running client, and sends what it encrypts', async () => {
      agent = await fakeAgent(socketPath, answer);
      const from = tap.sent.length;
      // The plugin retries the socket on the next request once its short "down" period is over.
      let n = 0;
      const outgoing = (r: Req): boolean => r.op === 'line' && r.dir === 'out';
      while (!agent.seen.some(outgoing) && n < 30) {
        await client.send(`after the restart ${++n}`);
        await until(() => agent!.seen.some(outgoing) || undefined, 'the new agent asked', 1000).catch(() => undefined);
      }
      const asked = agent.seen.find(outgoing)!;
      expect(asked, 'an outgoing request reached the new agent').to.not.equal(undefined);
      // It introduced itself to the new agent before asking it anything.
      expect(agent.seen.findIndex((r) => r.op === 'connected')).to.be.lessThan(agent.seen.indexOf(asked));
      const sent = await sentSince(from);
      expect(sent.filter((l) => /after the restart/.test(l)), 'plaintext on the wire').to.deep.equal([]);
      expect(sent).to.include(`PRIVMSG #plain :SC1M sealed-by-the-agent-${String(asked.text).length}`);
    });
  });
}
