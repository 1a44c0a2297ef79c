/**
 * Rooms that outlive a connection with real WeeChat and the sealchat plugin
 * (plugins/weechat/sealchat.py) over the agent; the journey is test/helpers/history-plugin.ts.
 */
import { historyJourney } from '../helpers/history-plugin.js';
import { haveWeechatPython, WEECHAT_PLUGIN } from '../helpers/plugins.js';
import { escapeRe, haveWeechat, startWeechat } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';

const available = (await haveWeechat()) && (await haveCommand('tmux')) && (await haveWeechatPython());
const describeIf = available ? describe : describe.skip;

describeIf(`plugin: WeeChat catches up on a room${available ? '' : ' (SKIPPED: weechat-curses, weechat-python or tmux is missing)'}`, function () {
  this.timeout(90_000);
  const journey = historyJourney({
    start: startWeechat,
    async loadPlugin(weechat) {
      await weechat.send(`/python load ${WEECHAT_PLUGIN}`);
      await weechat.waitForText(/python: registered script "sealchat"/);
    },
    disconnect: (weechat) => weechat.send('/disconnect t'),
    reconnect: (weechat) => weechat.send('/connect t'),
    messageLine: (nick, text) => new RegExp(`${nick} \\| ${escapeRe(text)}`),
  });

  it('bob (WeeChat, plugin) reads the 20 messages alice wrote while he was offline, in order, verified, marked, once, with the summary', journey);
});
