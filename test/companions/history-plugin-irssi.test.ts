/**
 * Rooms that outlive a connection with real irssi and the sealchat plugin
 * (plugins/irssi/sealchat.pl) over the agent; the journey is test/helpers/history-plugin.ts.
 */
import { historyJourney } from '../helpers/history-plugin.js';
import { IRSSI_PLUGIN } from '../helpers/plugins.js';
import { escapeRe, haveIrssi, startIrssi } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

describeIf(`plugin: irssi catches up on a room${available ? '' : ' (SKIPPED: irssi or tmux is missing)'}`, function () {
  this.timeout(90_000);
  const journey = historyJourney({
    start: startIrssi,
    async loadPlugin(irssi) {
      await irssi.send(`/script load ${IRSSI_PLUGIN}`);
      await irssi.waitForText(/Loaded script sealchat/);
    },
    disconnect: (irssi) => irssi.send('/disconnect'),
    reconnect: (irssi, password) => irssi.connect(password),
    messageLine: (nick, text) => new RegExp(`<[@+ ]?${nick}> ${escapeRe(text)}`),
  });

  it('bob (irssi, plugin) reads the 20 messages alice wrote while he was offline, in order, verified, marked, once, with the summary', journey);
});
