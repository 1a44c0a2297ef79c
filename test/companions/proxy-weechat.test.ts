/**
 * WeeChat, unmodified, through `sealchat proxy` (src/client/proxy): log in with PASS, open a room
 * via keybot, read and write encrypted text in plain, WHOIS, and a refused plaintext send. See
 * test/helpers/proxy-journey.ts for the steps and test/helpers/realclients.ts for driving WeeChat.
 */
import { escapeRe, haveWeechat, startWeechat, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { runJourney, startJourney, type JourneyContext } from '../helpers/proxy-journey.js';

const available = (await haveWeechat()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

describeIf(`companions: WeeChat through sealchat proxy${available ? '' : ' (SKIPPED: weechat-curses or tmux is not installed)'}`, function () {
  this.timeout(60_000);
  let ctx: JourneyContext | undefined;
  let weechat: RealClient | undefined;

  afterEach(async () => {
    await weechat?.stop();
    await ctx?.close();
  });

  it('alice (WeeChat) and bob (SealClient) read each other in plain text; the wire carries only ciphertext', async () => {
    ctx = await startJourney();
    weechat = await startWeechat({ port: ctx.proxy.address.port, nick: 'alice' });
    await runJourney(ctx, weechat, {
      messageLine: (nick, text) => new RegExp(`${nick} [|│] ${escapeRe(text)}`),
      whoisOnline: /\[bob\] \(bob@127\.0\.0\.1\)[\s\S]*\[bob\] End of \/WHOIS list/,
      whoisOffline: /bob: bob is offline/,
    });
  });
});
