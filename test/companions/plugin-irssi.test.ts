/**
 * The irssi plugin (plugins/irssi/sealchat.pl) in a real irssi, driven in a private tmux server,
 * with the real daemon, the real keybot and a sealchat agent: alice uses irssi, bob a SealClient,
 * carol is a raw socket in the room recording what the server relays.
 */
import { expect } from 'chai';
import { peekRoomMessage } from '../../src/crypto/index.js';
import { escapeRe, haveIrssi, startIrssi } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { IRSSI_PLUGIN, until, type Recorded } from '../helpers/plugins.js';
import {
  failsClosedWithoutAgent,
  inviteAndChat,
  pluginScenario,
  refusesWithoutKey,
  token,
  type PluginClientDriver,
} from '../helpers/plugin-scenario.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

const driver: PluginClientDriver = {
  name: 'irssi',
  start: startIrssi,
  async loadPlugin(irssi) {
    await irssi.send(`/script load ${IRSSI_PLUGIN}`);
    await irssi.waitForText(/Loaded script sealchat/);
  },
  verifiedLine: (nick, text) => new RegExp(`<[@+ ]?${nick}> ✓ ${escapeRe(text)}`),
};

describeIf(`plugin: irssi${available ? '' : ' (SKIPPED: irssi or tmux is missing)'}`, function () {
  this.timeout(60_000);
  const s = pluginScenario(driver);

  it('/msg keybot invite: alice and bob get the room without /join, and read each other in plain text (non-ASCII, longer than one line); the wire carries only ciphertext', () =>
    inviteAndChat(s, driver));

  it('refuses plaintext into a room without a key, visibly, and sends nothing', () => refusesWithoutKey(s));

  it("bob leaves while keybot is away: what alice types is held (she is told why), not sent under the old key, and goes out under keybot's next one", async () => {
    const { client: irssi, w, bob, carol, room } = s;
    const before = bob.localRooms().find((r) => r.room === room)!.epoch!;
    await w.stopKeybot();
    await irssi.showChannel(room);
    const from = carol.seen().length;
    // A PART (a QUIT is only going offline: bob would stay a member and keep the key).
    bob['irc']!.part(room, 'gone');
    await irssi.waitForText(/bob \[bob@127\.0\.0\.1\] has left/);
    const secret = `while bob is gone ${token()}`;
    await irssi.send(secret);
    const held = await irssi.waitForText(new RegExp(`sealchat: held: the key of ${escapeRe(room)} is being replaced \\(bob left\\): held until the new key arrives`));
    expect(held).to.include(secret);
    await w.startKeybotAgain();
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: alice, carol\\b`));
    const sent = await irssi.waitForText(/sealchat: sent: a held message went out under epoch \d+/);
    const epoch = Number(/sent: a held message went out under epoch (\d+)/.exec(sent)![1]);
    expect(epoch).to.be.greaterThan(before);
    // carol records the wire: after bob left, alice sent one sealed line, under the new epoch only.
    const mine = (): Recorded[] => carol.seen().slice(from).filter((l) => l.from === 'alice' && l.command === 'PRIVMSG' && l.target.toLowerCase() === room.toLowerCase());
    await until(() => mine().length > 0, "alice's held line on the wire");
    expect(mine().map((l) => peekRoomMessage({ payload: l.text }).epoch)).to.deep.equal([epoch]);
    expect(carol.seen().map((l) => l.text).join('\n')).not.to.include(secret);
  });

  it('fails closed when the agent is gone: nothing is sent to the room, and it says why', () => failsClosedWithoutAgent(s));

  it('/whois shows bob online, then offline once he quits', async () => {
    const { client: irssi, bob } = s;
    await irssi.showServer();
    await irssi.send('/whois bob');
    const online = await irssi.waitForText(/End of WHOIS/);
    expect(online).to.match(/-!- bob \[bob@127\.0\.0\.1\]/);
    await bob.quit();
    await until(() => s.w.t.daemon.server.findClient('bob') === undefined, 'bob offline');
    await irssi.showServer();
    await irssi.send('/clear');
    await irssi.send('/whois bob');
    await irssi.waitForText(/There is no such nick bob/);
  });
});
