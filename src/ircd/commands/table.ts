/**
 * The command table: one entry per command, as ergo's irc/commands.go. The dispatcher
 * (commands/dispatch.ts) makes the checks every command shares from these fields — 451 before
 * registration unless `preRegistration`, 461 below `minParams`, 481 for `operOnly`, 421 for a
 * command not here — so no handler repeats them. Find a command's handler by its name below.
 */
import type { Command, CommandTable } from './types.js';
import { handleCap } from './cap.js';
import { handleChathistory } from './chathistory.js';
import { handleJoin, handleKick, handleInvite, handleList, handleNames, handlePart, handleTopic } from './channels.js';
import { handlePing, handlePong, handleQuit } from './connection.js';
import { handleHelp, handleInfo, handleLinks, handleLusers, handleMotd, handleTime, handleVersion } from './info.js';
import { handleNotice, handlePrivmsg, handleTagmsg } from './messaging.js';
import { handleMode } from './modes.js';
import { handleKill, handleOper, handleWallops } from './operator.js';
import { handleAway, handleMonitor } from './presence.js';
import { handleNick, handlePass, handleUser } from './registration.js';
import { handleAuthenticate } from './sasl.js';
import { handleIson, handleUserhost, handleWho, handleWhois, handleWhowas } from './users.js';

const table: Record<string, Command> = {
  // connection registration (cap.ts, sasl.ts, registration.ts, connection.ts)
  CAP: { handler: handleCap, minParams: 1, preRegistration: true,
    help: { syntax: 'CAP LS [302] | LIST | REQ :<caps> | END', text: 'IRCv3 capability negotiation; registration waits until CAP END.' } },
  AUTHENTICATE: { handler: handleAuthenticate, minParams: 1, preRegistration: true,
    help: { syntax: 'AUTHENTICATE PLAIN | <base64> | *', text: 'SASL PLAIN login before registration; your nick becomes your account name.' } },
  PASS: { handler: handlePass, minParams: 1, preRegistration: true,
    help: { syntax: 'PASS <account>:<password> | PASS <password>', text: 'Log in to an account (or give the server password) before NICK and USER.' } },
  NICK: { handler: handleNick, minParams: 1, preRegistration: true,
    help: { syntax: 'NICK <nickname>', text: 'Choose a nick. An account holder\'s nick is the account name; only guests may change it.' } },
  USER: { handler: handleUser, minParams: 4, preRegistration: true,
    help: { syntax: 'USER <username> 0 * :<realname>', text: 'Give a username and a real name while registering.' } },
  PING: { handler: handlePing, minParams: 1, preRegistration: true,
    help: { syntax: 'PING <token>', text: 'The server answers PONG with the same token.' } },
  PONG: { handler: handlePong, minParams: 0, preRegistration: true,
    help: { syntax: 'PONG <token>', text: 'The answer to the server\'s PING.' } },
  QUIT: { handler: handleQuit, minParams: 0, preRegistration: true,
    help: { syntax: 'QUIT [:<reason>]', text: 'Close the connection.' } },
  // messages (messaging.ts)
  PRIVMSG: { handler: handlePrivmsg, minParams: 0,
    help: { syntax: 'PRIVMSG <target>{,<target>} :<text>', text: 'Send text to a nick or a channel (@#channel: its operators). Never truncated: too long gets 417.' } },
  NOTICE: { handler: handleNotice, minParams: 0,
    help: { syntax: 'NOTICE <target>{,<target>} :<text>', text: 'Like PRIVMSG, but no automatic reply is ever sent.' } },
  TAGMSG: { handler: handleTagmsg, minParams: 1,
    help: { syntax: 'TAGMSG <target>{,<target>}', text: 'Send only client tags (IRCv3 message-tags).' } },
  CHATHISTORY: { handler: handleChathistory, minParams: 0,
    help: { syntax: 'CHATHISTORY LATEST|BEFORE|AFTER|AROUND <room> <ref> <limit> | BETWEEN <room> <ref> <ref> <limit> | TARGETS <ts> <ts> <limit>', text: 'A room\'s history while you were its member (IRCv3 draft/chathistory; ref: timestamp=<ISO 8601>, msgid=<id>, * for LATEST).' } },
  // channels (channels.ts, modes.ts)
  JOIN: { handler: handleJoin, minParams: 1,
    help: { syntax: 'JOIN <channel>{,<channel>} [<key>{,<key>}] | JOIN 0', text: 'Join channels (0: leave them all). Rooms named #sc-* are opened by keybot.' } },
  PART: { handler: handlePart, minParams: 1,
    help: { syntax: 'PART <channel>{,<channel>} [:<reason>]', text: 'Leave channels.' } },
  NAMES: { handler: handleNames, minParams: 0,
    help: { syntax: 'NAMES <channel>{,<channel>}', text: 'List the members of channels you may see.' } },
  TOPIC: { handler: handleTopic, minParams: 1,
    help: { syntax: 'TOPIC <channel> [:<topic>]', text: 'Show or set a channel\'s topic (+t: operators only).' } },
  INVITE: { handler: handleInvite, minParams: 0,
    help: { syntax: 'INVITE <nick> <channel> | INVITE', text: 'Invite someone past +i, +k, +l and +b; without arguments, list your invitations.' } },
  KICK: { handler: handleKick, minParams: 2,
    help: { syntax: 'KICK <channel>{,<channel>} <nick>{,<nick>} [:<reason>]', text: 'Remove members from a channel (its operators only); one channel, or one per nick.' } },
  LIST: { handler: handleList, minParams: 0,
    help: { syntax: 'LIST [<channel>|<mask>|!<mask>|<n|>n|C<n|C>n|T<n|T>n{,…}]', text: 'List the channels you may see (filters: names and masks, members, minutes since creation or topic).' } },
  MODE: { handler: handleMode, minParams: 1,
    help: { syntax: 'MODE <channel> [<modes> [<args>]] | MODE <nick> [<modes>]', text: 'Channel modes: b e I k l i m n s t C o v. User modes: i, w (receive WALLOPS), o (only through OPER).' } },
  // users and presence (users.ts, presence.ts)
  WHOIS: { handler: handleWhois, minParams: 1,
    help: { syntax: 'WHOIS <nick>', text: 'Who is online as <nick>; for an offline member: 401 "is offline".' } },
  WHOWAS: { handler: handleWhowas, minParams: 1,
    help: { syntax: 'WHOWAS <nick>{,<nick>} [<count>]', text: 'Recent guests who used a nick (account holders are not kept).' } },
  WHO: { handler: handleWho, minParams: 0,
    help: { syntax: 'WHO <channel>|<nick>|<mask> [%<fields>[,<token>]]', text: 'One line per matching user; %fields (WHOX: tcuihsnfdlaor) picks what each line shows.' } },
  ISON: { handler: handleIson, minParams: 1,
    help: { syntax: 'ISON <nick>{ <nick>}', text: 'Which of these nicks are online.' } },
  USERHOST: { handler: handleUserhost, minParams: 1,
    help: { syntax: 'USERHOST <nick>{ <nick>}', text: 'user@host of up to 5 online nicks.' } },
  MONITOR: { handler: handleMonitor, minParams: 1,
    help: { syntax: 'MONITOR + <nicks> | - <nicks> | C | L | S', text: 'Be told when nicks come online or go offline (IRCv3 monitor).' } },
  AWAY: { handler: handleAway, minParams: 0,
    help: { syntax: 'AWAY [:<message>]', text: 'Mark yourself away (no message: back).' } },
  // the server (info.ts, operator.ts)
  MOTD: { handler: handleMotd, minParams: 0,
    help: { syntax: 'MOTD', text: 'The message of the day.' } },
  LUSERS: { handler: handleLusers, minParams: 0,
    help: { syntax: 'LUSERS', text: 'How many users and channels there are.' } },
  VERSION: { handler: handleVersion, minParams: 0,
    help: { syntax: 'VERSION', text: 'The server\'s software version and ISUPPORT tokens.' } },
  TIME: { handler: handleTime, minParams: 0,
    help: { syntax: 'TIME', text: 'The server\'s time.' } },
  INFO: { handler: handleInfo, minParams: 0,
    help: { syntax: 'INFO', text: 'About this server\'s software.' } },
  LINKS: { handler: handleLinks, minParams: 0,
    help: { syntax: 'LINKS [<server mask>]', text: 'The servers of this network: this one alone.' } },
  HELP: { handler: handleHelp, minParams: 0,
    help: { syntax: 'HELP [<command>]', text: 'The commands, or the syntax of one of them.' } },
  HELPOP: { handler: handleHelp, minParams: 0,
    help: { syntax: 'HELPOP [<command>]', text: 'The same as HELP.' } },
  OPER: { handler: handleOper, minParams: 2,
    help: { syntax: 'OPER <name> <password>', text: 'Become an IRC operator.' } },
  KILL: { handler: handleKill, minParams: 1, operOnly: true,
    help: { syntax: 'KILL <nick> [:<reason>]', text: 'Disconnect a user (operators only).' } },
  WALLOPS: { handler: handleWallops, minParams: 1, operOnly: true,
    help: { syntax: 'WALLOPS :<text>', text: 'Send a message to every user with user mode +w (operators only).' } },
};

export const Commands: CommandTable = new Map(Object.entries(table));
