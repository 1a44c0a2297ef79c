/**
 * keybot's `leave` and `remove` commands (src/bot/commands.ts): what the requester reads when
 * keybot proposes the signed operation, when it refuses, and once the signed one is carried out.
 * The key service is a stub here; test/security/departures.test.ts runs the real thing.
 */
import { expect } from 'chai';
import { CommandDispatcher, helpLines, signedReplies, type CommandContext, type KeyRequests } from '../../src/bot/commands.js';
import type { ProposeDepartureResult } from '../../src/bot/service.js';

function service(o: { leave?: ProposeDepartureResult; remove?: ProposeDepartureResult; calls?: string[] }): KeyRequests {
  const never = (): never => {
    throw new Error('not used here');
  };
  return {
    selfNick: 'keybot',
    fingerprint: '0123456789abcdef0123456789abcdef01234567',
    publicKeyArmored: '',
    proposeInvite: never,
    signedOperationPart: never,
    cancelInvite: never,
    online: never,
    status: never,
    roomsOf: never,
    resendKey: never,
    proposeLeave: (req, room) => {
      o.calls?.push(`leave ${req} ${room}`);
      return o.leave ?? { status: 'not_member' };
    },
    proposeRemove: async (req, room, names) => {
      o.calls?.push(`remove ${req} ${room} ${names.join(',')}`);
      return o.remove ?? { status: 'not_member' };
    },
  };
}

async function run(text: string, svc: KeyRequests): Promise<string[]> {
  const replies: string[] = [];
  const ctx: CommandContext = { nick: 'alice', account: 'alice', service: svc, reply: (t) => replies.push(t) };
  await new CommandDispatcher({ burst: 1000 }).dispatch(ctx, text);
  return replies;
}

const ROOM = '#sc-abcdefghij';

describe('src/bot/commands.ts: leave and remove', function () {
  it('help lists remove with its usage, and says who may use it', function () {
    expect(helpLines('remove')).to.deep.equal([
      'usage: remove <#room> <user>...',
      'remove members from a room you are in, signed by your client (any member may; the others get a new key)',
    ]);
    expect(helpLines().some((l) => l.trimStart().startsWith('remove <#room> <user>...'))).to.equal(true);
  });

  it('leave: proposed says nothing yet (the outcome follows the signature); a non-member reads what a missing room reads', async function () {
    const calls: string[] = [];
    expect(await run(`leave ${ROOM}`, service({ leave: { status: 'proposed', room: ROOM, refused: [] }, calls }))).to.deep.equal([]);
    expect(calls).to.deep.equal([`leave alice ${ROOM}`]);
    expect(await run(`leave ${ROOM}`, service({}))).to.deep.equal([`you are not in ${ROOM}`]);
    expect(await run('leave lobby', service({}))).to.deep.equal(['"lobby" is not a room name (they look like #sc-...)']);
    expect(await run(`leave ${ROOM}`, service({ leave: { status: 'key_pending', room: ROOM } }))).to.deep.equal([`${ROOM} has no key that lists you yet; leave again in a moment`]);
  });

  it('remove: each name that cannot be removed gets its reason, then the rest is proposed', async function () {
    const remove: ProposeDepartureResult = {
      status: 'proposed',
      room: ROOM,
      refused: [
        { name: 'alice', reason: 'self' },
        { name: 'keybot', reason: 'service' },
        { name: 'nobody', reason: 'unknown' },
        { name: 'dave', reason: 'not_member' },
        { name: 'erin', reason: 'pending' },
        { name: 'frank', reason: 'not_keyed' },
        { name: 'a*b', reason: 'invalid_name' },
      ],
    };
    expect(await run(`remove ${ROOM} bob alice keybot nobody dave erin frank a*b`, service({ remove }))).to.deep.equal([
      `cannot remove alice: that is you; to leave ${ROOM} send: leave ${ROOM}`,
      'cannot remove keybot: that is me, the key service',
      'cannot remove nobody: no such account',
      `cannot remove dave: not in ${ROOM}`,
      `cannot remove erin: invited, not in ${ROOM} yet; drop the invite with: cancel ${ROOM} erin`,
      `cannot remove frank yet: the key of ${ROOM} that lists them is on its way; try again in a moment`,
      'cannot remove a*b: not a valid account name',
    ]);
  });

  it('remove: nobody left to remove says so; a remove naming nobody, or no room, gets the usage', async function () {
    const remove: ProposeDepartureResult = { status: 'nobody_to_remove', room: ROOM, refused: [{ name: 'alice', reason: 'self' }] };
    expect(await run(`remove ${ROOM} alice`, service({ remove }))).to.deep.equal([
      `cannot remove alice: that is you; to leave ${ROOM} send: leave ${ROOM}`,
      `nobody removed from ${ROOM}`,
    ]);
    const calls: string[] = [];
    expect(await run(`remove ${ROOM}`, service({ calls }))).to.deep.equal(['usage: remove <#room> <user>...']);
    expect(await run('remove bob carol', service({ calls }))).to.deep.equal(['"bob" is not a room name (they look like #sc-...)']);
    expect(calls).to.deep.equal([]);
  });

  it('remove: more than 100 names is refused whole, before anything is proposed', async function () {
    const calls: string[] = [];
    const names = Array.from({ length: 101 }, (_, i) => `u${i}`).join(' ');
    expect(await run(`remove ${ROOM} ${names}`, service({ calls }))).to.deep.equal(['too many names: remove takes at most 100 users at a time']);
    expect(calls).to.deep.equal([]);
  });

  it('once signed and carried out: "you left", "removed bob from"; a refusal names the command it refuses', function () {
    expect(signedReplies({ status: 'left', room: ROOM })).to.deep.equal([`you left ${ROOM}`]);
    expect(signedReplies({ status: 'removed', room: ROOM, removed: ['bob', 'carol'] })).to.deep.equal([`removed bob, carol from ${ROOM}; the others get a new key`]);
    expect(signedReplies({ status: 'refused', command: 'remove', reason: 'the signature does not verify under your key (bad_signature)' })).to.deep.equal([
      'remove refused: the signature does not verify under your key (bad_signature)',
    ]);
  });
});
