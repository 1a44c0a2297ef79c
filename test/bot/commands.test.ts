import { expect } from 'chai';
import {
  COMMANDS,
  CommandDispatcher,
  helpLines,
  signedReplies,
  type CommandContext,
  type KeyRequests,
} from '../../src/bot/commands.js';
import { DirectoryError } from '../../src/bot/directory.js';
import { formatFingerprint } from '../../src/protocol/fingerprint.js';
import { MAX_INVITEES } from '../../src/bot/service.js';

/** A key service stub that records calls and answers what each test sets. */
function stubService(overrides: Partial<KeyRequests> = {}): KeyRequests & { calls: string[] } {
  const calls: string[] = [];
  const base: KeyRequests = {
    selfNick: 'keybot',
    fingerprint: '0123456789abcdef0123456789abcdef01234567',
    publicKeyArmored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n',
    proposeInvite: async (req, room, inv) => {
      calls.push(room === undefined ? `open ${req} ${inv.join(',')}` : `add ${req} ${room} ${inv.join(',')}`);
      return room === undefined ? { status: 'proposed', names: inv, refused: [] } : { status: 'not_member' };
    },
    signedOperationPart: async (nick, account, line) => {
      calls.push(`signed ${nick} ${account} ${line}`);
      return { status: 'incomplete' };
    },
    cancelInvite: async (req, room, name) => {
      calls.push(`cancel ${req} ${room} ${name}`);
      return name === 'carol' ? { status: 'cancelled', room, name } : { status: 'not_pending', room, name };
    },
    online: async () => ['alice', 'bob'],
    status: async (name) => ({ status: 'unknown', name }),
    roomsOf: () => [],
    proposeLeave: () => ({ status: 'not_member' }),
    proposeRemove: async () => ({ status: 'not_member' }),
    resendKey: async () => ({ status: 'not_member' }),
  };
  return Object.assign(base, overrides, { calls });
}

function run(
  text: string,
  opts: { service?: KeyRequests; account?: string | null; dispatcher?: CommandDispatcher } = {},
): Promise<string[]> {
  const replies: string[] = [];
  const ctx: CommandContext = {
    nick: 'alice',
    account: opts.account === undefined ? 'alice' : opts.account,
    service: opts.service ?? stubService(),
    reply: (t) => replies.push(t),
  };
  return (opts.dispatcher ?? new CommandDispatcher({ burst: 1000 })).dispatch(ctx, text).then(() => replies);
}

describe('src/bot/commands.ts', function () {

  describe('help', function () {
    it('lists every command of the table, with its usage and summary', function () {
      const lines = helpLines();
      expect(lines[0]).to.match(/^keybot opens end-to-end encrypted rooms/);
      expect(lines).to.have.length(COMMANDS.length + 1);
      for (const c of COMMANDS) {
        const line = lines.find((l) => l.trimStart().startsWith(c.usage ? `${c.name} ${c.usage}` : `${c.name} `));
        expect(line, c.name).to.be.a('string');
        expect(line).to.include(c.summary);
      }
    });

    it('names the commands the brief asks for', function () {
      expect(COMMANDS.map((c) => c.name)).to.include.members(['invite', 'online', 'status', 'rooms', 'leave', 'remove', 'key', 'cancel', 'fingerprint', 'help']);
    });

    it('shows the usage of one command, and says so for an unknown one', function () {
      expect(helpLines('LEAVE')).to.deep.equal(['usage: leave <#room>', 'leave a room, signed by your client (the others get a new key)']);
      expect(helpLines('nope')).to.deep.equal(['no command "nope"; send "help" for the list']);
    });

    it('is what the help command sends', async function () {
      expect(await run('help')).to.deep.equal(helpLines());
      expect(await run('help key')).to.deep.equal(helpLines('key'));
    });
  });

  describe('CommandDispatcher', function () {
    it('hints at help for an unknown command', async function () {
      expect(await run('frob x')).to.deep.equal(['unknown command "frob"; send "help" for the list']);
    });

    it('answers a wrong argument count with the usage, without calling the service', async function () {
      const service = stubService();
      expect(await run('invite', { service })).to.deep.equal(['usage: invite [#room] <user>...']);
      expect(await run('online now', { service })).to.deep.equal(['usage: online']);
      expect(service.calls).to.deep.equal([]);
    });

    it('takes as many invitees as fit in one IRC line, and says so plainly beyond MAX_INVITEES', async function () {
      const service = stubService();
      const most = Array.from({ length: MAX_INVITEES }, (_, i) => `u${i}`);
      // The shortest names: the most one line can carry.
      expect(`PRIVMSG keybot :invite ${Array.from({ length: MAX_INVITEES }, () => 'u').join(' ')}`.length).to.be.at.most(510);
      expect(`PRIVMSG keybot :invite ${Array.from({ length: MAX_INVITEES + 1 }, () => 'u').join(' ')}`.length).to.be.above(510);
      expect(await run(`invite ${most.join(' ')}`, { service })).to.deep.equal([]);
      expect(service.calls).to.have.length(1);
      // Once signed and carried out: the count, then the names in lines that fit IRC, all of them.
      const ok = signedReplies({ status: 'opened', result: { status: 'opened', room: '#sc-aaaaaaaaaa', joined: most, pending: [], refused: [] } });
      expect(ok[0]).to.equal(`opened #sc-aaaaaaaaaa with ${MAX_INVITEES} users; keys follow`);
      expect(ok.slice(1).every((l) => l.length <= 310)).to.equal(true);
      expect(ok.slice(1).join(' ').replace(/^with: /, '').split(/,\s*/)).to.deep.equal(most);
      expect(await run(`invite ${most.join(' ')} one-more`, { service })).to.deep.equal([
        `too many names: invite takes at most ${MAX_INVITEES} users at a time`,
      ]);
      expect(await run(`invite #sc-aaaaaaaaaa ${most.join(' ')} one-more`, { service })).to.deep.equal([
        `too many names: invite takes at most ${MAX_INVITEES} users at a time`,
      ]);
      expect(service.calls).to.have.length(1);
    });

    it('ignores empty messages', async function () {
      expect(await run('   ')).to.deep.equal([]);
    });

    it('lets guests use only help, fingerprint and pubkey', async function () {
      expect(await run('online', { account: null })).to.deep.equal(['you need an account to use online; guests can use fingerprint, pubkey, help']);
      expect((await run('fingerprint', { account: null }))[0]).to.match(/^my key fingerprint is 0123 4567/);
    });

    it('tells a fast sender to slow down once, then drops until the budget refills', async function () {
      const dispatcher = new CommandDispatcher({ burst: 2, refillMs: 60_000 });
      const replies = [];
      for (let i = 0; i < 5; i++) replies.push(await run('online', { dispatcher }));
      expect(replies.map((r) => r[0])).to.deep.equal([
        'online (2): alice, bob',
        'online (2): alice, bob',
        'slow down: too many commands; try again in a few seconds',
        undefined,
        undefined,
      ]);
    });

    it('reports an unavailable directory without a stack trace', async function () {
      const service = stubService({
        online: async () => {
          throw new DirectoryError('unavailable', 'control connection closed');
        },
      });
      expect(await run('online', { service })).to.deep.equal(['sorry, the user directory is unavailable right now; try again in a moment']);
    });
  });

  describe('replies', function () {
    it('invite: one line per refused invitee with its reason when keybot proposes; the room once the signed invite is carried out', async function () {
      const service = stubService({
        proposeInvite: async () => ({
          status: 'proposed',
          names: ['bob'],
          refused: [
            { name: 'carol', reason: 'offline' },
            { name: 'ghost', reason: 'unknown' },
            { name: 'dave', reason: 'no_key', detail: 'The key has expired.' },
            { name: 'keybot', reason: 'service' },
            { name: 'b@d', reason: 'invalid_name' },
          ],
        }),
        signedOperationPart: async () => ({ status: 'opened', result: { status: 'opened', room: '#sc-abcdefghij', joined: ['bob'], pending: [], refused: [] } }),
      });
      expect(await run('invite bob carol ghost dave keybot b@d', { service })).to.deep.equal([
        'cannot invite carol: offline',
        'cannot invite ghost: no such account',
        'cannot invite dave: no usable key (The key has expired.)',
        'cannot invite keybot: that is me, the key service',
        'cannot invite b@d: not a valid account name',
      ]);
      expect(await run('SC1O abc 1/1 AAAA', { service })).to.deep.equal(['opened #sc-abcdefghij with bob; keys follow']);
    });

    it('a part of a signed operation goes to the key service, not the command table, and guests cannot send one', async function () {
      const service = stubService();
      expect(await run('SC1O abc 1/2 AAAA', { service })).to.deep.equal([]);
      expect(service.calls).to.deep.equal(['signed alice alice SC1O abc 1/2 AAAA']);
      expect(await run('SC1O abc 2/2 AAAA', { service, account: null })).to.deep.equal(['you need an account to change rooms']);
      const refusing = stubService({ signedOperationPart: async () => ({ status: 'refused', command: 'invite', reason: 'it is not an invite I proposed to you' }) });
      expect(await run('SC1O abc 1/1 AAAA', { service: refusing })).to.deep.equal(['invite refused: it is not an invite I proposed to you']);
    });

    it('invite: says so when nobody can join', async function () {
      const service = stubService({ proposeInvite: async () => ({ status: 'nobody', refused: [{ name: 'carol', reason: 'offline' }] }) });
      expect(await run('invite carol', { service })).to.deep.equal([
        'cannot invite carol: offline',
        'no room opened: none of the users you invited can join now',
      ]);
    });

    it('invite: a requester without a usable key is told why', async function () {
      const service = stubService({ proposeInvite: async () => ({ status: 'requester_unusable', problem: 'no_key', detail: 'The key has been revoked by its owner.' }) });
      expect(await run('invite bob', { service })).to.deep.equal([
        'you cannot open rooms: your account has no usable key (The key has been revoked by its owner.)',
      ]);
    });

    it('invite #room: proposes an addition; non-members get the same answer as for a missing room', async function () {
      const service = stubService();
      expect(await run('invite #sc-abcdefghij bob', { service })).to.deep.equal(['you are not in #sc-abcdefghij']);
      expect(service.calls).to.deep.equal(['add alice #sc-abcdefghij bob']);
      expect(await run('invite #sc-abcdefghij', { service })).to.deep.equal(['usage: invite #sc-abcdefghij <user>...']);
    });

    it('status: online/offline with a grouped fingerprint, or no such account', async function () {
      const fp = 'ab'.repeat(20);
      const service = stubService({
        status: async (name) =>
          name === 'bob'
            ? { status: 'known', name: 'bob', online: false, fingerprint: fp, usable: true }
            : { status: 'unknown', name },
      });
      expect(await run('status bob', { service })).to.deep.equal([`bob is offline; key ${formatFingerprint(fp)}`]);
      expect(await run('status zed', { service })).to.deep.equal(['zed: no such account']);
      expect(formatFingerprint(fp)).to.equal('ABAB ABAB ABAB ABAB ABAB ABAB ABAB ABAB ABAB ABAB');
    });

    it('rooms: one line per room with epoch and members', async function () {
      const service = stubService({
        roomsOf: () => [
          { room: '#sc-a', epoch: 1764100000, members: ['alice', 'bob'] },
          { room: '#sc-b', epoch: undefined, members: ['alice'] },
        ],
      });
      expect(await run('rooms', { service })).to.deep.equal(['#sc-a (epoch 1764100000): alice, bob', '#sc-b (key pending): alice']);
    });

    it('key: refused to non-members; pending or re-sent for members', async function () {
      expect(await run('key #sc-x')).to.deep.equal(['you are not in #sc-x']);
      const pending = stubService({ resendKey: async () => ({ status: 'pending', room: '#sc-x' }) });
      expect(await run('key #sc-x', { service: pending })).to.deep.equal(['a new key for #sc-x is on its way']);
      const sent = stubService({ resendKey: async () => ({ status: 'sent', room: '#sc-x', epoch: 7 }) });
      expect(await run('key #sc-x', { service: sent })).to.deep.equal(['sent you the key of #sc-x again (epoch 7)']);
      expect(await run('key sc-x')).to.deep.equal(['"sc-x" is not a room name (they look like #sc-...)']);
    });

    it('cancel: drops a pending invite for a member; says so when there is none, and to non-members as for a missing room', async function () {
      const service = stubService();
      expect(await run('cancel #sc-x carol', { service })).to.deep.equal(['cancelled the invite of carol to #sc-x']);
      expect(await run('cancel #sc-x dave', { service })).to.deep.equal(['dave has no pending invite to #sc-x']);
      expect(service.calls).to.deep.equal(['cancel alice #sc-x carol', 'cancel alice #sc-x dave']);
      const outsider = stubService({ cancelInvite: async () => ({ status: 'not_member' }) });
      expect(await run('cancel #sc-x carol', { service: outsider })).to.deep.equal(['you are not in #sc-x']);
      expect(await run('cancel #sc-x')).to.deep.equal(['usage: cancel <#room> <user>']);
      expect(await run('cancel sc-x carol')).to.deep.equal(['"sc-x" is not a room name (they look like #sc-...)']);
      expect(helpLines('cancel')).to.deep.equal(['usage: cancel <#room> <user>', 'drop the invite of someone who has not logged in yet (any member may)']);
    });

    it('invite: an offline invitee is told to join at login, in a new room or an existing one', function () {
      expect(signedReplies({ status: 'added', result: { status: 'added', room: '#sc-x', joined: [], pending: ['carol'], refused: [] } })).to.deep.equal([
        'carol is offline: they join #sc-x when they next log in',
      ]);
      expect(signedReplies({ status: 'opened', result: { status: 'opened', room: '#sc-y', joined: ['bob'], pending: ['carol'], refused: [] } })).to.deep.equal([
        'carol is offline: they join #sc-y when they next log in',
        'opened #sc-y with bob; keys follow',
      ]);
      expect(signedReplies({ status: 'opened', result: { status: 'opened', room: '#sc-z', joined: [], pending: ['carol'], refused: [] } })).to.deep.equal([
        'carol is offline: they join #sc-z when they next log in',
        'opened #sc-z; keys follow',
      ]);
    });

    it('pubkey: the armor, one line per NOTICE, starting with the BEGIN line and without empty lines', async function () {
      expect(await run('pubkey')).to.deep.equal([
        '-----BEGIN PGP PUBLIC KEY BLOCK-----',
        'xjMEZ',
        '=abcd',
        '-----END PGP PUBLIC KEY BLOCK-----',
      ]);
    });

    it('online: long lists wrap over several lines', async function () {
      const names = Array.from({ length: 80 }, (_, i) => `user${String(i).padStart(3, '0')}`);
      const service = stubService({ online: async () => names });
      const lines = await run('online', { service });
      expect(lines.length).to.be.greaterThan(1);
      for (const l of lines) expect(l.length).to.be.lessThan(320);
      expect(lines.join(' ').match(/user\d{3}/g)).to.deep.equal(names);
    });
  });
});
