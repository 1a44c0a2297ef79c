/**
 * irssi, unmodified, through `sealchat proxy` (src/client/proxy): log in with PASS, open a room
 * via keybot, read and write encrypted text in plain, WHOIS, and a refused plaintext send. See
 * test/helpers/proxy-journey.ts for the steps and test/helpers/realclients.ts for driving irssi.
 */
import { haveIrssi, startIrssi, escapeRe, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { runJourney, startJourney, type JourneyContext } from '../helpers/proxy-journey.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

describeIf(`companions: irssi through sealchat proxy${available ? '' : ' (SKIPPED: irssi or tmux is not installed)'}`, function () {
  this.timeout(60_000);
  let ctx: JourneyContext | undefined;
  let irssi: RealClient | undefined;

  afterEach(async () => {
    await irssi?.stop();
    await ctx?.close();
  });

  it('alice (irssi) and bob (SealClient) read each other in plain text; the wire carries only ciphertext', async () => {
    ctx = await startJourney();
    // The helper's config sets cmd_queue_speed before connecting (README "Connect with irssi").
    irssi = await startIrssi({ port: ctx.proxy.address.port, nick: 'alice' });
    await runJourney(ctx, irssi, {
      messageLine: (nick, text) => new RegExp(`<[@+ ]?${nick}> ${escapeRe(text)}`),
      whoisOnline: /-!- bob \[bob@127\.0\.0\.1\][\s\S]*End of WHOIS/,
      whoisOffline: /There is no such nick bob/,
    });
  });
});
