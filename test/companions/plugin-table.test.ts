/**
 * One table of cases, a line in → the action the plugin takes, run against BOTH plugins, each in
 * its real client: WeeChat with plugins/weechat/sealchat.py, irssi with plugins/irssi/sealchat.pl.
 *
 * The client is connected to a scripted IRC server (test/helpers/scripted-ircd.ts), which pushes
 * each received line (`in`) and records what the client sent; outgoing lines (`out`) are typed as
 * `/quote LINE`. A scripted agent on the plugin's socket answers each line as the table says;
 * `error` answers with an error, and `down` is no agent at all, where both plugins must follow the
 * one rule of docs/PROTOCOL.md ("Faults", "Targets"). Every "did not happen" is read after a
 * marker that must come after it: a PING the client sends (out), a line the server sends (in).
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fakeAgent, noticeEvent, type Req } from '../helpers/fake-agent.js';
import { IRSSI_PLUGIN, WEECHAT_PLUGIN, haveWeechatPython } from '../helpers/plugins.js';
import { until } from '../helpers/poll.js';
import { escapeRe, haveIrssi, haveWeechat, startIrssi, startWeechat, type RealClient } from '../helpers/realclients.js';
import { startScriptedIrcd, type ScriptedIrcd } from '../helpers/scripted-ircd.js';
import { haveCommand } from '../helpers/tmux.js';
import { sendMarker } from '../helpers/wiretap.js';

/** What the agent answers: a reply (its events get the plugin's label), an error reply, or no agent at all. */
type AgentAnswer = Record<string, unknown> | 'error' | 'down';

interface Case {
  dir: 'in' | 'out';
  line: string;
  agent: AgentAnswer;
  /** The action, as the test name says it. */
  action: 'pass' | 'send' | 'refuse' | 'hold' | 'drop' | 'hide' | 'show' | 'flag';
  /** out: exactly the PRIVMSG/NOTICE/TOPIC lines that reach the server. */
  wire?: string[];
  /** in: what the lines carrying `token` show (null: no such line is shown). */
  shows?: string | null;
  /** The text that names this case on the screen. */
  token: string;
  /** The window to look at (where the line, or the note about it, is shown). */
  window: string;
  /** A `sealchat:` note the user reads in that window. */
  says?: RegExp;
}

const BOB = ':bob!bob@127.0.0.1';
const tokenOf = (line: string): string => /c\d\d\b/.exec(line)?.[0] ?? '';

function out(action: Case['action'], line: string, agent: AgentAnswer, wire: string[], says?: RegExp): Case {
  const target = line.split(/ +/)[1] ?? '';
  return { dir: 'out', line, agent, action, wire, token: tokenOf(line), window: target.startsWith('#') && !target.includes(',') ? target : '#sc-room', ...(says ? { says } : {}) };
}

function inn(action: Case['action'], line: string, agent: AgentAnswer, shows: string | null, o: { token?: string; window?: string } = {}): Case {
  return { dir: 'in', line, agent, action, shows, token: o.token ?? tokenOf(line), window: o.window ?? line.split(' ')[2]! };
}

const key = (room: string): Record<string, unknown> => ({ type: 'key', target: room, room, text: `key for ${room} (epoch 1) from keybot, verified` });
const notice = (target: string, text: string): Record<string, unknown> => ({ type: 'notice', target, text, level: 'error' });

/** The table. Order matters only in that the agent is stopped at the first `down` case. */
const CASES: Case[] = [
  // The agent answers: the plugin applies what it says, to the letter.
  out('pass', 'PRIVMSG #plain :setup c00', { action: 'pass', events: [key('#known')] }, ['PRIVMSG #plain :setup c00']),
  out('send', 'PRIVMSG #sc-room :hello c01', { action: 'send', lines: ['PRIVMSG #sc-room :SC1M sealed-c01'] }, ['PRIVMSG #sc-room :SC1M sealed-c01']),
  // One line to keybot replaced by several, to another target too (signed room operations).
  out(
    'send',
    'PRIVMSG keybot :invite bob c02',
    { action: 'send', lines: ['PRIVMSG keybot :SC1O signed-c02 1/2', 'PRIVMSG keybot :SC1O signed-c02 2/2', 'NOTICE #sc-room :SC1M note-c02'] },
    ['PRIVMSG keybot :SC1O signed-c02 1/2', 'PRIVMSG keybot :SC1O signed-c02 2/2', 'NOTICE #sc-room :SC1M note-c02'],
  ),
  out('pass', 'PRIVMSG #plain :just chatting c03', { action: 'pass' }, ['PRIVMSG #plain :just chatting c03']),
  out('refuse', 'PRIVMSG #sc-room :no key c04', { action: 'refuse', reason: 'x', events: [notice('#sc-room', 'NOT SENT: scripted c04')] }, [], /sealchat: NOT SENT: scripted c04/),
  out('hold', 'PRIVMSG #sc-room :while replaced c05', { action: 'hold', reason: 'x', events: [notice('#sc-room', 'held: scripted c05')] }, [], /sealchat: held: scripted c05/),
  out('send', 'NOTICE #sc-room :notice c06', { action: 'send', lines: ['NOTICE #sc-room :SC1M sealed-c06'] }, ['NOTICE #sc-room :SC1M sealed-c06']),
  out('refuse', 'TOPIC #sc-room :topic c07', { action: 'refuse', reason: 'x' }, []),
  out('drop', 'PRIVMSG #sc-room :an action it does not know c08', { action: 'explode' }, []),
  inn('show', `${BOB} PRIVMSG #sc-room :SC1M sealed-c09`, { action: 'show', line: `${BOB} PRIVMSG #sc-room :✓ clear words c09` }, '✓ clear words c09'),
  inn('hide', ':keybot!keybot@127.0.0.1 NOTICE #sc-room :SC1E env-c10 1/3 abc', { action: 'hide' }, null),
  inn('pass', `${BOB} PRIVMSG #plain :hello plain c11`, { action: 'pass' }, 'hello plain c11'),
  inn('show', `${BOB} PRIVMSG #sc-room :SC1M sealed-me-c12`, { action: 'show', line: `${BOB} PRIVMSG #sc-room :\x01ACTION ✓ waves c12\x01` }, 'bob ✓ waves c12'),
  inn('pass', ':carol!carol@127.0.0.1 JOIN #sc-room', { action: 'pass' }, 'carol', { token: 'carol' }),
  inn('pass', ':carol!carol@127.0.0.1 QUIT :gone c14', { action: 'pass' }, 'gone c14', { window: '#sc-room' }),
  inn('pass', ':dave!dave@127.0.0.1 JOIN #sc-room', { action: 'pass' }, 'dave', { token: 'dave' }),
  inn('pass', ':keybot!keybot@127.0.0.1 KICK #sc-room dave :left c16', { action: 'pass' }, 'left c16'),
  // The agent answers with an error: the rule for an unreachable agent.
  out('refuse', 'PRIVMSG #sc-room :while failing c17', 'error', [], /sealchat: NOT SENT to #sc-room: scripted failure/),
  inn('hide', `${BOB} PRIVMSG #sc-room :SC1M failing-c18`, 'error', null),
  out('pass', 'PRIVMSG #plain :harmless while failing c19', 'error', ['PRIVMSG #plain :harmless while failing c19']),
  // No agent at all: the same rule.
  out('refuse', 'PRIVMSG #sc-room :down c20', 'down', [], /sealchat: NOT SENT to #sc-room: the sealchat agent at .* is not reachable/),
  out('refuse', 'PRIVMSG #known :down c21', 'down', [], /sealchat: NOT SENT to #known: the sealchat agent at .* is not reachable/),
  out('pass', 'PRIVMSG #plain :down harmless c22', 'down', ['PRIVMSG #plain :down harmless c22']),
  out('pass', 'PRIVMSG keybot :invite bob c23', 'down', ['PRIVMSG keybot :invite bob c23']),
  out('refuse', 'PRIVMSG #elsewhere,#SC-Room :list c24', 'down', []),
  out('refuse', 'PRIVMSG @#sc-room :statusmsg c25', 'down', []),
  out('refuse', 'PRIVMSG  #sc-room :two spaces c26', 'down', []),
  out('refuse', 'NOTICE #sc-room :down notice c27', 'down', []),
  out('refuse', 'TOPIC #sc-room :down topic c28', 'down', []),
  out('pass', 'TOPIC #plain :plain topic c29', 'down', ['TOPIC #plain :plain topic c29']),
  inn('hide', `${BOB} PRIVMSG #sc-room :SC1M down-c30`, 'down', null),
  inn('hide', `${BOB} PRIVMSG #plain :SC1P part-c31 2/3 abc`, 'down', null),
  inn('flag', `${BOB} PRIVMSG #sc-room :plain words c32`, 'down', '[NOT ENCRYPTED, NOT VERIFIED] plain words c32'),
  inn('flag', `${BOB} PRIVMSG #sc-room :\x01ACTION waves plainly c33\x01`, 'down', 'bob [NOT ENCRYPTED, NOT VERIFIED] waves plainly c33'),
  inn('pass', `${BOB} PRIVMSG #plain :plain hello c34`, 'down', 'plain hello c34'),
  inn('flag', `${BOB} PRIVMSG #known :plain in known c35`, 'down', '[NOT ENCRYPTED, NOT VERIFIED] plain in known c35'),
];

const haveTmux = await haveCommand('tmux');
const clients = [
  { kind: 'weechat', available: haveTmux && (await haveWeechat()) && (await haveWeechatPython()) },
  { kind: 'irssi', available: haveTmux && (await haveIrssi()) },
] as const;

/** How the case reads in the test's name. */
function title(c: Case): string {
  const agent = typeof c.agent === 'string' ? `agent ${c.agent}` : `agent: ${String(c.agent.action)}`;
  return `${c.dir} ${JSON.stringify(c.line)} (${agent}) → ${c.action}`;
}

for (const k of clients) {
  const describeIf = k.available ? describe : describe.skip;
  describeIf(`plugin table: ${k.kind}${k.available ? '' : ' (SKIPPED: client or tmux missing)'}`, function () {
    this.timeout(30_000);
    let ircd: ScriptedIrcd;
    let client: RealClient;
    let agent: Awaited<ReturnType<typeof fakeAgent>> | undefined;
    let label = '';

    const answer = (r: Req): Record<string, unknown> => {
      if (r.op === 'connected') {
        label = r.server as string;
        return { attached: false, keybot: 'pinned' };
      }
      if (r.op !== 'line') return {};
      const c = CASES.find((x) => x.dir === r.dir && x.line === r.line);
      // Lines outside the table (our own JOINs, the markers) pass.
      if (!c || c.agent === 'down') return { action: 'pass' };
      if (c.agent === 'error') return { ok: false, error: 'scripted failure' };
      const events = ((c.agent.events ?? []) as Array<Record<string, unknown>>).map((e) => ({ server: label, ...e }));
      return { ...c.agent, events };
    };

    before(async function () {
      this.timeout(60_000);
      ircd = await startScriptedIrcd();
      client = k.kind === 'weechat' ? await startWeechat({ port: ircd.port, nick: 'alice' }) : await startIrssi({ port: ircd.port, nick: 'alice' });
      await mkdir(path.join(client.home, '.sealchat'), { recursive: true, mode: 0o700 });
      agent = await fakeAgent(path.join(client.home, '.sealchat', 'agent-alice.sock'), answer);
      await client.send(k.kind === 'weechat' ? `/python load ${WEECHAT_PLUGIN}` : `/script load ${IRSSI_PLUGIN}`);
      await client.waitForText(k.kind === 'weechat' ? /registered script "sealchat"/ : /Loaded script sealchat/);
      if (k.kind === 'weechat') await client.send('/set plugins.var.python.sealchat.timeout 1');
      else await client.send('/set sealchat_timeout 1');
      await client.connect('any-password');
      await client.waitForText(/Welcome to the scripted IRC network, alice/);
      await until(() => agent!.seen.some((r) => r.op === 'connected'), 'the plugin to tell the agent');
      for (const room of ['#sc-room', '#plain', '#known']) {
        await client.send(`/join ${room}`);
        await until(() => agent!.seen.some((r) => r.op === 'line' && r.line === `:alice!alice@127.0.0.1 JOIN :${room}`), `our JOIN of ${room} handed to the agent`);
      }
    });

    after(async () => {
      await client?.stop();
      await agent?.close();
      await ircd?.close();
    });

    for (const c of CASES) {
      it(title(c), async () => {
        if (c.agent === 'down' && agent) {
          await agent.close();
          agent = undefined;
        }
        const asked = agent?.seen.length ?? 0;
        await client.showChannel(c.window);
        if (c.dir === 'out') {
          const from = ircd.sent.length;
          await client.send(`/quote ${c.line}`);
          const marker = await sendMarker(ircd, client, from);
          const wire = ircd.sent.slice(from, marker).filter((l) => /^(PRIVMSG|NOTICE|TOPIC) /i.test(l));
          expect(wire, 'what reached the server').to.deep.equal(c.wire);
          if (c.says) await client.waitForText(c.says);
        } else {
          const mark = `mark-${c.token}`;
          ircd.push(c.line);
          ircd.push(`:srv!srv@127.0.0.1 PRIVMSG ${c.window} :${mark}`);
          const screen = await client.waitForText(new RegExp(escapeRe(mark)));
          const shown = screen.split('\n').filter((l) => l.includes(c.token) && !l.includes(mark));
          if (c.shows === null) expect(shown, 'lines shown for the case').to.deep.equal([]);
          else {
            expect(shown, `a line showing ${JSON.stringify(c.shows)}`).to.not.deep.equal([]);
            for (const l of shown) expect(l).to.include(c.shows);
          }
        }
        // The plugin handed the agent the raw line itself, as the client had it.
        if (agent && c.agent !== 'down') {
          expect(agent.seen.slice(asked).some((r) => r.op === 'line' && r.dir === c.dir && r.line === c.line), 'the agent was asked with the raw line').to.equal(true);
        }
      });
    }
  });
}
