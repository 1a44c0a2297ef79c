/**
 * The WeeChat plugin (plugins/weechat/sealchat.py) in a real WeeChat, driven in a private tmux
 * server, with the real daemon, the real keybot and a sealchat agent: alice uses WeeChat, bob a
 * SealClient, carol is a raw socket in the room recording what the server relays.
 */
import { expect } from 'chai';
import { escapeRe, haveWeechat, startWeechat } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { haveWeechatPython, WEECHAT_PLUGIN, until } from '../helpers/plugins.js';
import {
  failsClosedWithoutAgent,
  inviteAndChat,
  pluginScenario,
  refusesWithoutKey,
  token,
  type PluginClientDriver,
} from '../helpers/plugin-scenario.js';

const available = (await haveWeechat()) && (await haveCommand('tmux')) && (await haveWeechatPython());
const describeIf = available ? describe : describe.skip;

const driver: PluginClientDriver = {
  name: 'WeeChat',
  start: startWeechat,
  async loadPlugin(weechat) {
    await weechat.send(`/python load ${WEECHAT_PLUGIN}`);
    await weechat.waitForText(/python: registered script "sealchat"/);
  },
  verifiedLine: (nick, text) => new RegExp(`${nick} \\| ✓ ${escapeRe(text)}`),
};

describeIf(`plugin: WeeChat${available ? '' : ' (SKIPPED: weechat-curses, weechat-python or tmux is missing)'}`, function () {
  this.timeout(60_000);
  const s = pluginScenario(driver);

  it('/msg keybot invite: alice and bob get the room without /join, and read each other in plain text (non-ASCII, longer than one line); the wire carries only ciphertext', () =>
    inviteAndChat(s, driver));

  it('refuses plaintext into a room without a key, visibly, and sends nothing', () => refusesWithoutKey(s));

  it("carol leaves while keybot is away: what alice types is held (she is told why), not sent under the old key, and goes out under keybot's next one", async () => {
    const { client: weechat, w, bob, bobGot, carol, room } = s;
    const before = bob.localRooms().find((r) => r.room === room)!.epoch!;
    await w.stopKeybot();
    await weechat.showChannel(room);
    carol.raw.send(`PART ${room} :bye`);
    await weechat.waitForText(/carol \(carol@127\.0\.0\.1\) has left/);
    const secret = `while carol is gone ${token()}`;
    await weechat.send(secret);
    // The user sees the line typed and, right under it, why it has not gone out.
    const held = await weechat.waitForText(new RegExp(`sealchat: held: the key of ${escapeRe(room)} is being replaced \\(carol left\\): held until the new key arrives`));
    expect(held).to.include(secret);
    await w.startKeybotAgain();
    await weechat.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: alice, bob\\b`));
    const sent = await weechat.waitForText(/sealchat: sent: a held message went out under epoch \d+/);
    const epoch = Number(/sent: a held message went out under epoch (\d+)/.exec(sent)![1]);
    // bob (still a member) proves what went on the wire: the text came once, under the new epoch only.
    const got = await until(() => bobGot.find((m) => m.text === secret), 'bob to read the held text');
    expect(epoch).to.be.greaterThan(before);
    expect(bobGot.filter((m) => m.text === secret).map((m) => m.epoch)).to.deep.equal([epoch]);
    expect(got).to.include({ from: 'alice', room });
  });

  it('fails closed when the agent is gone: nothing is sent to the room, and it says why', () => failsClosedWithoutAgent(s));

  it('/whois shows bob online, then offline once he quits', async () => {
    const { client: weechat, bob, room } = s;
    await weechat.showServer();
    await weechat.send('/whois bob');
    const online = await weechat.waitForText(/\[bob\] End of \/WHOIS list/);
    expect(online).to.match(/\[bob\] \(bob@127\.0\.0\.1\): bob/);
    await bob.quit();
    await weechat.showChannel(room);
    await weechat.waitForText(/bob \(bob@127\.0\.0\.1\) has quit/);
    await weechat.showServer();
    await weechat.send('/whois bob');
    await weechat.waitForText(/bob: bob is offline[^\n]*\n[^\n]*\[bob\] End of \/WHOIS list/);
  });
});
