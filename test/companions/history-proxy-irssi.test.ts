/**
 * Rooms that outlive a connection with real irssi through `sealchat proxy` (src/client/proxy):
 * bob (irssi) disconnects, alice (SealClient) writes 20 messages (one longer than an IRC line, one
 * not ASCII), bob connects again through the same proxy: the daemon places him back in the room,
 * the proxy asks for the room's history and hands irssi all 20, decrypted and verified, in order,
 * once, marked with their time, and `*sealchat` says how many. Asserted on the lines the proxy
 * wrote to irssi (a long line wraps on the screen), and on irssi's screen for the summary.
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { startWorld, until, type World } from '../helpers/companions.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { typedAs } from '../helpers/history-plugin.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;


describeIf(`companions: irssi through sealchat proxy catches up on a room${available ? '' : ' (SKIPPED: irssi or tmux is not installed)'}`, function () {
  this.timeout(90_000);
  let w: World | undefined;
  let proxy: LocalProxy | undefined;
  let irssi: RealClient | undefined;

  after(async () => {
    await irssi?.stop();
    await proxy?.close();
    await w?.stop();
  });

  it('bob (irssi) reads the 20 messages alice wrote while he was offline, in order, verified, once, with the summary', async () => {
    w = await startWorld(['alice', 'bob']);
    const down: string[] = [];
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: w.t.port },
      privateKey: (await unlockPrivateKey({ armored: w.users.bob!.privateKey })).key!,
      account: 'bob',
      keybotFingerprint: w.bot.fingerprint,
      knownKeybotsFile: false,
      tap: (dir, line) => {
        if (dir === 'down') down.push(line);
      },
    });
    const alice: SealClient = await w.member('alice');
    irssi = await startIrssi({ port: proxy.address.port, nick: 'bob' });
    await irssi.connect(w.users.bob!.password);
    await irssi.waitForText(/end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, 15_000);

    await alice.invite(['bob']);
    const room = (await until(() => alice.localRooms().find((r) => r.hasKey && r.members.includes('bob')), "alice's key")).room;
    await until(() => down.some((l) => l.includes(`NOTICE ${room} :key: ${room} epoch`)), "bob's key");
    await alice.send(room, 'before bob leaves');
    await until(() => down.some((l) => l.endsWith(`PRIVMSG ${room} :before bob leaves`)), 'bob to read it live');

    // bob goes offline (a QUIT: he stays a member); alice writes meanwhile.
    const quit = new Promise<void>((resolve) => alice.on('quit', (q) => q.nick === 'bob' && resolve()));
    await irssi.send('/disconnect');
    await quit;
    const texts = Array.from({ length: 20 }, (_, i) => `while bob was offline ${i + 1}`);
    texts[4] = `long: ${'more than one IRC line can carry, so it goes in parts; '.repeat(11)}end`;
    texts[11] = 'non-ASCII: grüße, naïve café, 日本語 ✓';
    expect(Buffer.byteLength(texts[4]!)).to.be.greaterThan(512);
    for (const t of texts) await alice.send(room, t);
    // The daemon answers alice's WHOIS after it relayed (and kept) all 20.
    expect(await alice.whois('bob')).to.include({ error: 'not_found' });

    const from = down.length;
    await irssi.connect(w.users.bob!.password);
    const summary = await until(() => down.slice(from).find((l) => / NOTICE \S+ :\d+ messages while you were away$/.test(l)), 'the summary', 30_000);
    // The marker: a message alice sends after; once irssi got it, a second copy of anything would have come.
    await alice.send(room, 'after bob is back');
    await until(() => down.slice(from).some((l) => l.endsWith(`PRIVMSG ${room} :after bob is back`)), 'the marker');

    const lines = down.slice(from, down.indexOf(summary, from)).filter((l) => new RegExp(`^(?:@\\S+ )?:alice!\\S+ PRIVMSG ${escapeRe(room)} :`).test(l));
    // Marked: the original time as a server-time tag (irssi asked for it), or the time in the text.
    const tagged = lines.every((l) => /^@(?:\S*;)?time=\d{4}-\d\d-\d\dT[\d:.]+Z[; ]/.test(l));
    const bodies = lines.map((l) => l.slice(l.indexOf(` PRIVMSG ${room} :`) + ` PRIVMSG ${room} :`.length)).map((t) => (tagged ? t : t.replace(/^\[history \d\d:\d\d\] /, '')));
    if (!tagged) for (const l of lines) expect(l).to.match(/ :\[history \d\d:\d\d\] /);
    expect(typedAs(bodies, texts)).to.deep.equal(texts);
    expect(summary).to.match(new RegExp(`^:\\*sealchat!\\S+ NOTICE ${escapeRe(room)} :${lines.length} messages while you were away$`));
    // Once: nothing of it came again, live or from history, before the marker.
    const all = down.slice(from).filter((l) => l.includes(` PRIVMSG ${room} :`));
    expect(all.length).to.equal(lines.length + 1);
    expect(down.filter((l) => l.endsWith(':before bob leaves'))).to.have.length(1);

    // What irssi shows: the short ones and the summary, in the room's window.
    await irssi.showChannel(room);
    await irssi.waitForText(/messages while you were away/, 10_000);
    await irssi.waitForText(/while bob was offline 20/, 10_000);
  });
});
