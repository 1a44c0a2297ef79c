// A typed shim for the part of irc-framework (CJS, ships no types) that sealchat uses.
// Extend it here when a new call is needed; keep it to what the library really does
// (see node_modules/irc-framework/src/client.js).
declare module 'irc-framework' {
  import { EventEmitter } from 'node:events';

  export interface ConnectOptions {
    host: string;
    port: number;
    nick: string;
    username?: string;
    gecos?: string;
    password?: string;
    tls?: boolean;
    rejectUnauthorized?: boolean;
    ca?: string | Buffer;
    account?: { account: string; password: string };
    sasl_mechanism?: string;
    sasl_disconnect_on_fail?: boolean;
    auto_reconnect?: boolean;
    auto_reconnect_max_wait?: number;
    auto_reconnect_max_retries?: number;
    ping_interval?: number;
    ping_timeout?: number;
    message_max_length?: number;
    enable_echomessage?: boolean;
    encoding?: string;
    version?: string | null;
    [key: string]: unknown;
  }

  export interface MessageEvent {
    type?: 'privmsg' | 'notice' | 'action';
    nick: string;
    ident: string;
    hostname: string;
    target: string;
    message: string;
    tags: Record<string, string>;
    time?: number;
    account?: string;
    reply(message: string): void;
  }

  export interface WhoisResult {
    nick: string;
    error?: string;
    ident?: string;
    hostname?: string;
    real_name?: string;
    server?: string;
    server_info?: string;
    channels?: string;
    idle?: string;
    logon?: string;
    account?: string;
    away?: string;
    [key: string]: unknown;
  }

  export interface RawLine {
    line: string;
    from_server: boolean;
  }

  export interface NetworkInfo {
    name: string;
    options: Record<string, string | string[] | boolean>;
    cap: { enabled: string[]; available: Map<string, string> | Record<string, string> };
    supports(name: string): string | boolean | string[];
  }

  export class Client extends EventEmitter {
    constructor(options?: Partial<ConnectOptions>);
    connected: boolean;
    user: { nick: string; username: string; gecos: string; away: boolean; modes: Set<string> };
    network: NetworkInfo;
    options: ConnectOptions;
    connect(options?: ConnectOptions): void;
    requestCap(cap: string | string[]): void;
    raw(...args: unknown[]): void;
    rawString(...args: unknown[]): string;
    quit(message?: string): void;
    say(target: string, message: string, tags?: Record<string, string>): void;
    notice(target: string, message: string, tags?: Record<string, string>): void;
    tagmsg(target: string, tags?: Record<string, string>): void;
    join(channel: string, key?: string): void;
    part(channel: string, message?: string): void;
    mode(target: string, mode: string, extra?: string | string[]): void;
    invite(channel: string, nick: string): void;
    setTopic(channel: string, topic: string): void;
    whois(nick: string, cb?: (event: WhoisResult) => void): void;
    who(target: string, cb?: (event: { target: string; users: Array<Record<string, unknown>> }) => void): void;
    addMonitor(target: string): void;
    removeMonitor(target: string): void;
    changeNick(nick: string): void;
    use(middleware: (client: Client, rawEvents: EventEmitter, parsedEvents: EventEmitter) => void): void;
  }

  const IRC: { Client: typeof Client };
  export default IRC;
}
