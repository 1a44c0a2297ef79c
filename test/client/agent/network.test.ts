/**
 * The agent on an ordinary IRC network (docs/NETWORKS.md), over its real socket and real crypto,
 * as a protocol-3 plugin sees it: keybot's INVITE to a sealchat room is answered with a JOIN for
 * the plugin to send (and no other INVITE is); keybot's registration nonce is answered with a
 * proof that verifies, only after the user sent `register`; and where keybot keeps the accounts
 * (ngIRCd) the plugin is told to log in to keybot as soon as it says it is connected.
 */
import { expect } from 'chai';
import path from 'node:path';
import { KeyProofStatus, decodeKeyRegistration, readPublicKey, verifyKeyProof } from '../../../src/crypto/index.js';
import { startAgent, type Agent } from '../../../src/client/agent/server.js';
import { AgentClient, tempDir } from '../../helpers/agent.js';
import { party, type Party } from '../fixtures.js';

const SERVER = 'test/net';
const NONCE = Buffer.alloc(32, 7).toString('base64');

const sent = (r: { send?: Array<{ line: string }> }): string[] => (r.send ?? []).map((s) => s.line);

describe('src/client/agent/session.ts on an ordinary IRC network: INVITE, register, login', function () {
  this.timeout(30_000);
  let bob: Party, keybot: Party;
  let dir: string;
  let remove: () => Promise<void>;
  const agents: Agent[] = [];
  const clients: AgentClient[] = [];

  before(async () => {
    [bob, keybot] = await Promise.all(['bob', 'keybot'].map((x) => party(x)));
    ({ dir, remove } = await tempDir());
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const a of agents) await a.close();
    await remove();
  });

  async function attach(name: string, o: { keybotPassword?: string } = {}): Promise<{ c: AgentClient; connected: Record<string, any>; line: (dir: 'in' | 'out', l: string) => Promise<Record<string, any>> }> {
    const agent = await startAgent({
      account: 'bob',
      privateKey: bob.priv,
      socketPath: path.join(dir, `${name}.sock`),
      knownKeybotsFile: false,
      keybotPublicKey: keybot.publicArmored,
      ...o,
    });
    agents.push(agent);
    const c = await AgentClient.connect(agent.socketPath);
    clients.push(c);
    const connected = await c.call({ op: 'connected', server: SERVER, nick: 'bob', fresh: true, protocol: 3 });
    return { c, connected, line: (d, l) => c.call({ op: 'line', server: SERVER, dir: d, line: l }) };
  }

  it("joins a sealchat room on keybot's INVITE for us, and on no other INVITE", async () => {
    const { line } = await attach('invite');
    const joins = (r: Record<string, any>): string[] => sent(r).filter((l) => l.startsWith('JOIN '));
    // Someone else's INVITE, an INVITE for someone else, and one to an ordinary channel: not joined.
    expect(joins(await line('in', ':mallory!m@h INVITE bob #sc-notkeybots'))).to.deep.equal([]);
    expect(joins(await line('in', ':keybot!keybot@h INVITE carol #sc-forcarol'))).to.deep.equal([]);
    expect(joins(await line('in', ':keybot!keybot@h INVITE bob #ordinary'))).to.deep.equal([]);
    const r = await line('in', ':keybot!keybot@h INVITE bob #sc-fromkeybot');
    expect(r.action).to.equal('pass');
    expect(joins(r)).to.deep.equal(['JOIN #sc-fromkeybot']);
  });

  it("answers keybot's nonce only after the user sent register, with a proof of bob's key for the server's network", async () => {
    const { line } = await attach('register');
    expect((await line('in', ':irc.test 005 bob NETWORK=sctest CASEMAPPING=ascii :are supported by this server')).action).to.equal('pass');
    const nonceLine = `:keybot!keybot@h NOTICE bob :register: nonce ${NONCE} network sctest account bob`;
    // Nobody here asked: hidden, and not answered.
    const unasked = await line('in', nonceLine);
    expect(unasked.action).to.equal('hide');
    expect(sent(unasked).filter((l) => / :register /.test(l))).to.deep.equal([]);
    expect((unasked.events ?? []).map((e: { text: string }) => e.text).join('\n')).to.match(/nonce nobody here asked for/);

    expect((await line('out', 'PRIVMSG keybot :register')).action).to.equal('pass');
    const answered = await line('in', nonceLine);
    expect(answered.action).to.equal('hide');
    const chunks = sent(answered).map((l) => /^PRIVMSG keybot :register (\d+)\/(\d+) (\S+)$/.exec(l));
    expect(chunks.length).to.be.greaterThan(0);
    expect(chunks.every((m) => m !== null)).to.equal(true);
    const reg = decodeKeyRegistration(new Uint8Array(Buffer.from(chunks.map((m) => m![3]).join(''), 'base64')));
    expect(reg).to.include({ network: 'sctest', account: 'bob' });
    const pub = (await readPublicKey({ armored: reg!.publicKey })).key!;
    expect(pub.fingerprint).to.equal(bob.fingerprint);
    const fields = { purpose: 'possess' as const, network: 'sctest', account: 'bob', fingerprint: bob.fingerprint, nonce: new Uint8Array(Buffer.from(NONCE, 'base64')) };
    expect(verifyKeyProof({ ...fields, signature: reg!.proof, key: pub })).to.equal(KeyProofStatus.OK);
    // The agent's own lines pass its outgoing check once.
    for (const l of sent(answered)) expect((await line('out', l)).action).to.equal('pass');

    // A nonce for another network than the server's: not answered, and the user hears why.
    await line('out', 'PRIVMSG keybot :register');
    const elsewhere = await line('in', `:keybot!keybot@h NOTICE bob :register: nonce ${NONCE} network othernet account bob`);
    expect(sent(elsewhere).filter((l) => / :register /.test(l))).to.deep.equal([]);
    expect((elsewhere.events ?? []).map((e: { text: string }) => e.text).join('\n')).to.match(/keybot is on network othernet, our server says sctest/);
  });

  it('tells the plugin to log in to keybot first when keybot keeps the accounts, and not otherwise', async () => {
    const own = await attach('login', { keybotPassword: 'bobs-keybot-pw' });
    expect(sent(own.connected)[0]).to.equal('PRIVMSG keybot :login bobs-keybot-pw');
    const plain = await attach('nologin');
    expect(sent(plain.connected).filter((l) => /:login /.test(l))).to.deep.equal([]);
  });

  it('refuses to start with a keybot password keybot would read cut short (a space, a line break)', async () => {
    for (const pw of ['two words', 'line\nbreak']) {
      const started = startAgent({ account: 'bob', privateKey: bob.priv, socketPath: path.join(dir, 'bad.sock'), knownKeybotsFile: false, keybotPassword: pw });
      await started.then(
        (a) => {
          agents.push(a);
          throw new Error(`started with ${JSON.stringify(pw)}`);
        },
        (err: Error) => expect(err.message).to.match(/the keybot password cannot contain spaces or control characters/),
      );
    }
  });
});
