/**
 * The issue-16 journey with a real IRC client, for any network keybot runs on (InspIRCd + Atheme,
 * ngIRCd with keybot's own accounts): bob in unmodified irssi through `sealchat proxy`, alice on
 * SealClient. bob registers his key with `/msg keybot register` typed in irssi (the proxy answers
 * keybot's nonce), alice invites him, the proxy joins on keybot's INVITE, they read each other
 * both ways; carol, not invited, is refused by +i and, let in by the network's operator, kicked
 * without a key; bob leaves from irssi and reads nothing after. What differs per network (how
 * irssi and alice log in, how an operator lets carol in) comes in the context. Asserted on the
 * lines the proxy wrote to irssi, and on irssi's screen; every "did not happen" after a marker.
 */
import { expect } from 'chai';
import type { Client as IrcClient } from 'irc-framework';
import type { SealClient, RoomMessageEvent } from '../../src/client/client.js';
import { ROOM_RE, until } from '../helpers/poll.js';
import { escapeRe, type RealClient } from '../helpers/realclients.js';

export interface IrssiJourney {
  /** bob's irssi, started against the proxy, not yet connected. */
  irssi: RealClient;
  /** Connect irssi (through the proxy) as the network wants it. */
  connectIrssi(): Promise<void>;
  /** Lines the proxy wrote to irssi and sent to the server (its tap). */
  down: string[];
  up: string[];
  /** alice, connected and logged in. */
  alice: SealClient;
  /** carol, connected and logged in (not invited). */
  carol: IrcClient;
  /** Have the network's operator put carol into `room` despite +i (SAJOIN, an invite exception...). */
  admitCarol(room: string): Promise<void>;
  /** How long to wait for what crosses keybot (ngIRCd reads users' lines slowly). */
  ms: number;
}

export async function runIrssiJourney(j: IrssiJourney): Promise<void> {
  const { irssi, down, up, alice, carol, ms } = j;
  const toIrssi = (re: RegExp, from = 0): string | undefined => down.slice(from).find((l) => re.test(l));

  await j.connectIrssi();
  await irssi.waitForText(/end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, ms);

  // bob registers his key from irssi: the proxy answers keybot's nonce, irssi sees keybot's verdict.
  await irssi.send('/msg keybot register');
  await until(() => toIrssi(/ NOTICE bob :register: key [0-9a-f]+ registered for bob$/), "keybot's registration of bob's key", ms);
  expect(down.filter((l) => / :register: nonce /.test(l))).to.deep.equal([]);

  expect((await alice.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for alice$/m);

  // alice opens a room with bob: keybot INVITEs bob, the proxy joins, irssi is in the room with its key.
  const reply = (await alice.command('invite bob', ms)).join('\n');
  const room = ROOM_RE.exec(reply)?.[0];
  expect(room, reply).to.be.a('string');
  await until(() => toIrssi(new RegExp(`^(?:@\\S+ )?:bob!\\S+ JOIN :?${escapeRe(room!)}`, 'i')), 'irssi to be joined to the room', ms);
  await until(() => toIrssi(new RegExp(`NOTICE ${escapeRe(room!)} :key: ${escapeRe(room!)} epoch \\d+ \\(first key\\), members alice, bob; verified`, 'i')), "bob's key for the room", ms);
  await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room && r.hasKey), "alice's key", ms);

  const aliceGot: RoomMessageEvent[] = [];
  alice.on('message', (m) => aliceGot.push(m));
  await alice.send(room!, 'hello bob, over the network');
  await until(() => toIrssi(new RegExp(`^(?:@\\S+ )?:alice!\\S+ PRIVMSG ${escapeRe(room!)} :hello bob, over the network$`, 'i')), "irssi to get alice's message in plain text", ms);
  await irssi.showChannel(room!);
  await irssi.waitForText(/<[@+ ]?alice> hello bob, over the network/, 10_000);
  await irssi.send('hello alice, from irssi');
  await until(() => aliceGot.find((m) => m.from === 'bob' && m.text === 'hello alice, from irssi'), "alice to read bob's message", ms);
  // The server got ciphertext only.
  expect(up.filter((l) => l.includes('from irssi'))).to.deep.equal([]);

  // carol, logged in but not invited: +i keeps her out by name...
  const carolNotices: string[] = [];
  carol.on('notice', (e: { nick?: string; message: string }) => e.nick === 'keybot' && carolNotices.push(e.message));
  const refused = new Promise<string>((resolve) => carol.on('irc error', (e: { error: string }) => resolve(e.error)));
  carol.join(room!);
  expect(await refused).to.equal('invite_only_channel');
  // ...and let in by the network's operator, keybot kicks her and keys nobody new.
  const kicked = new Promise<{ kicked: string; nick: string }>((resolve) => carol.on('kick', (e: { kicked: string; nick: string }) => resolve(e)));
  await j.admitCarol(room!);
  expect(await kicked).to.include({ kicked: 'carol', nick: 'keybot' });
  // Marker: a message after the kick reaches irssi, so a key for carol would have been sent by now.
  await alice.send(room!, 'after carol');
  await until(() => toIrssi(/ :after carol$/), 'irssi to get the message after the kick', ms);
  expect(carolNotices.filter((n) => n.startsWith('SC1E'))).to.deep.equal([]);

  // bob leaves from irssi: keybot kicks him and keys alice alone; bob reads nothing after.
  const aliceAlone = new Promise<{ epoch: number; members: string[] }>((resolve) => alice.on('key', (e) => e.members.length === 1 && resolve(e)));
  await irssi.send(`/msg keybot leave ${room}`);
  const alone = await aliceAlone;
  expect(alone.members).to.deep.equal(['alice']);
  await until(() => toIrssi(new RegExp(`KICK ${escapeRe(room!)} bob`, 'i')), 'irssi to see bob removed', ms);
  const from = down.length;
  await alice.send(room!, 'bob is gone');
  // Marker: something for bob sent after alice's message (carol's private message) reaches irssi first.
  carol.say('bob', 'marker after bob left');
  await until(() => toIrssi(/ PRIVMSG bob :marker after bob left$/, from), "the marker to reach bob's irssi", ms);
  expect(down.slice(from).filter((l) => l.includes('bob is gone') || l.includes(`epoch ${alone.epoch}`))).to.deep.equal([]);
}
