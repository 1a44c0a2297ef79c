/**
 * The command table: one entry per command, as ergo's irc/commands.go. The dispatcher
 * (commands/dispatch.ts) makes the checks every command shares from these fields — 451 before
 * registration unless `preRegistration`, 461 below `minParams`, 481 for `operOnly`, 421 for a
 * command not here — so no handler repeats them. Find a command's handler by its name below.
 */
import type { Command, CommandTable } from './types.js';
import { handleCap } from './cap.js';
import { handleJoin, handleKick, handleInvite, handleList, handleNames, handlePart, handleTopic } from './channels.js';
import { handlePing, handlePong, handleQuit } from './connection.js';
import { handleInfo, handleLusers, handleMotd, handleTime, handleVersion } from './info.js';
import { handleNotice, handlePrivmsg, handleTagmsg } from './messaging.js';
import { handleMode } from './modes.js';
import { handleKill, handleOper } from './operator.js';
import { handleAway, handleMonitor } from './presence.js';
import { handleNick, handlePass, handleUser } from './registration.js';
import { handleAuthenticate } from './sasl.js';
import { handleIson, handleUserhost, handleWho, handleWhois, handleWhowas } from './users.js';

const table: Record<string, Command> = {
  // connection registration (cap.ts, sasl.ts, registration.ts, connection.ts)
  CAP: { handler: handleCap, minParams: 1, preRegistration: true },
  AUTHENTICATE: { handler: handleAuthenticate, minParams: 1, preRegistration: true },
  PASS: { handler: handlePass, minParams: 1, preRegistration: true },
  NICK: { handler: handleNick, minParams: 1, preRegistration: true },
  USER: { handler: handleUser, minParams: 4, preRegistration: true },
  PING: { handler: handlePing, minParams: 1, preRegistration: true },
  PONG: { handler: handlePong, minParams: 0, preRegistration: true },
  QUIT: { handler: handleQuit, minParams: 0, preRegistration: true },
  // messages (messaging.ts)
  PRIVMSG: { handler: handlePrivmsg, minParams: 0 },
  NOTICE: { handler: handleNotice, minParams: 0 },
  TAGMSG: { handler: handleTagmsg, minParams: 1 },
  // channels (channels.ts, modes.ts)
  JOIN: { handler: handleJoin, minParams: 1 },
  PART: { handler: handlePart, minParams: 1 },
  NAMES: { handler: handleNames, minParams: 0 },
  TOPIC: { handler: handleTopic, minParams: 1 },
  INVITE: { handler: handleInvite, minParams: 2 },
  KICK: { handler: handleKick, minParams: 2 },
  LIST: { handler: handleList, minParams: 0 },
  MODE: { handler: handleMode, minParams: 1 },
  // users and presence (users.ts, presence.ts)
  WHOIS: { handler: handleWhois, minParams: 1 },
  WHOWAS: { handler: handleWhowas, minParams: 1 },
  WHO: { handler: handleWho, minParams: 0 },
  ISON: { handler: handleIson, minParams: 1 },
  USERHOST: { handler: handleUserhost, minParams: 1 },
  MONITOR: { handler: handleMonitor, minParams: 1 },
  AWAY: { handler: handleAway, minParams: 0 },
  // the server (info.ts, operator.ts)
  MOTD: { handler: handleMotd, minParams: 0 },
  LUSERS: { handler: handleLusers, minParams: 0 },
  VERSION: { handler: handleVersion, minParams: 0 },
  TIME: { handler: handleTime, minParams: 0 },
  INFO: { handler: handleInfo, minParams: 0 },
  OPER: { handler: handleOper, minParams: 2 },
  KILL: { handler: handleKill, minParams: 1, operOnly: true },
};

export const Commands: CommandTable = new Map(Object.entries(table));
