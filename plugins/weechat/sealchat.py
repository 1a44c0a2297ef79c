# -*- coding: utf-8 -*-
#
# sealchat for WeeChat: end-to-end encrypted sealchat rooms in your usual client.
#
# A thin adapter. Every PRIVMSG/NOTICE WeeChat sends or receives on a sealchat server is handed
# to the local `sealchat agent` (JSON lines over a unix socket), which holds your key and does all
# the crypto; this script only does what the agent answers: pass a line, hide it, show decrypted
# text, send ciphertext instead, or refuse. It FAILS CLOSED: when the agent cannot be reached,
# nothing is sent to an encrypted room (#sc-*, or any room the agent gave a key for), and it says so.
# It also tells the agent who joins, leaves, is kicked from or quits those rooms: once a member
# has left, text typed there is held until keybot's next key and then sent under it (never under
# the key the departed member holds), with a "held" line in the buffer saying why.
#
# Install: copy to ~/.local/share/weechat/python/autoload/ (or <weechat -d DIR>/python/autoload/),
# or /python load /path/to/sealchat.py; run `sealchat agent --account NICK` first. See
# docs/COMPANIONS.md ("Plugins") in the sealchat repository.
#
# Options (/set plugins.var.python.sealchat.*):
#   socket   agent socket; "" = $SEALCHAT_HOME or ~/.sealchat, then agent-<nick>.sock
#   servers  comma-separated WeeChat server names to protect; "*" = all (default)
#   timeout  seconds to wait for the agent (default 3)
#   marker   shown before verified messages (default "✓")
#
# Python standard library only.

import json
import os
import socket
import time

import weechat

SCRIPT_NAME = "sealchat"
SCRIPT_VERSION = "0.2.0"
# Agent protocol 2: `membership` requests, and the `hold` answer to `outgoing`.
AGENT_PROTOCOL = 2
ROOM_PREFIX = "#sc-"
LABEL_PREFIX = "weechat/"

DEFAULTS = {
    "socket": ("", "agent socket path; empty: $SEALCHAT_HOME or ~/.sealchat, then agent-<nick>.sock"),
    "servers": ("*", "comma-separated server names to protect, * for all"),
    "timeout": ("3", "seconds to wait for the agent before failing closed"),
    "marker": ("\u2713", "shown before a decrypted message whose signature verified"),
}

# socket path -> AgentConn
conns = {}
# server name -> set of casefolded rooms known to be encrypted (to fail closed without the agent)
encrypted = {}
# raw lines waiting to be sent for the agent: [(server, line)]
pending_sends = []
# (server, command, folded target, text) -> count: lines the agent asked us to send, which our own
# outgoing hook passes as they are (they are ciphertext already, or a keybot command)
agent_lines = {}
# server name -> last time we told the user the agent is unreachable
last_down_notice = {}


def casefold(name):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in name)


def opt(name):
    return weechat.config_get_plugin(name)


# ---- the agent connection -------------------------------------------------------------------


class AgentConn(object):
    """One unix socket to one agent; blocking request/reply with a timeout."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""
        self.next_id = 1
        self.down_until = 0.0
        self.error = ""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except Exception:
                pass
        self.sock = None
        self.buf = b""

    def _timeout(self):
        try:
            return max(0.2, float(opt("timeout") or "3"))
        except ValueError:
            return 3.0

    def call(self, req):
        """Send one request; return the reply dict, or None if the agent cannot be reached."""
        if time.time() < self.down_until:
            return None
        try:
            if self.sock is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self._timeout())
                s.connect(self.path)
                self.sock = s
                self.buf = b""
            rid = self.next_id
            self.next_id += 1
            req = dict(req)
            req["id"] = rid
            self.sock.sendall((json.dumps(req) + "\n").encode("utf-8"))
            deadline = time.time() + self._timeout()
            while True:
                nl = self.buf.find(b"\n")
                if nl >= 0:
                    line = self.buf[:nl]
                    self.buf = self.buf[nl + 1:]
                    reply = json.loads(line.decode("utf-8"))
                    if reply.get("id") == rid:
                        self.error = ""
                        return reply
                    continue  # a late reply to an earlier request: skip it
                left = deadline - time.time()
                if left <= 0:
                    raise socket.timeout("no reply within %ss" % self._timeout())
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise IOError("the agent closed the connection")
                self.buf += chunk
        except (socket.timeout, OSError, IOError, ValueError) as e:
            self.error = str(e) or e.__class__.__name__
            # A hung agent would freeze WeeChat on every line: back off for a while.
            self.down_until = time.time() + (5.0 if isinstance(e, socket.timeout) else 0.5)
            self.close()
            return None


def socket_path(server):
    configured = opt("socket")
    if configured:
        return os.path.expanduser(configured)
    home = os.environ.get("SEALCHAT_HOME") or os.path.join(os.path.expanduser("~"), ".sealchat")
    nick = weechat.info_get("irc_nick", server) or ""
    return os.path.join(home, "agent-%s.sock" % nick)


def conn_for(server):
    path = socket_path(server)
    c = conns.get(path)
    if c is None:
        c = AgentConn(path)
        conns[path] = c
    return c


def protected(server):
    servers = [s.strip() for s in (opt("servers") or "*").split(",") if s.strip()]
    return "*" in servers or server in servers


def label(server):
    return LABEL_PREFIX + server


STATUSMSG_PREFIXES = "@%+~&"


def is_encrypted(server, target):
    """True if text to `target` could reach an encrypted room: the rule for an unreachable agent
    (docs/PROTOCOL.md "Faults"). A target that is none (a line we could not parse), any part of a
    comma list, and a STATUSMSG target (@#room) count, so nothing gets past as plaintext."""
    if target == "" or " " in target:
        return True
    for part in target.split(","):
        t = casefold(part.lstrip(STATUSMSG_PREFIXES))
        if t == "" or t.startswith(ROOM_PREFIX) or t in encrypted.get(server, set()):
            return True
    return False


def server_address(server):
    host, port = "", 0
    il = weechat.infolist_get("irc_server", "", server)
    if il:
        if weechat.infolist_next(il):
            host = weechat.infolist_string(il, "current_address") or ""
            port = weechat.infolist_integer(il, "current_port")
        weechat.infolist_free(il)
    return host, port


def joined_channels(server):
    rooms = []
    il = weechat.infolist_get("irc_channel", "", server)
    if il:
        while weechat.infolist_next(il):
            if weechat.infolist_integer(il, "type") == 0:
                rooms.append(weechat.infolist_string(il, "name"))
        weechat.infolist_free(il)
    return rooms


def connected_request(server, fresh):
    host, port = server_address(server)
    req = {"op": "connected", "server": label(server), "nick": weechat.info_get("irc_nick", server),
           "host": host, "port": port, "fresh": fresh, "protocol": AGENT_PROTOCOL}
    if not fresh:
        req["rooms"] = joined_channels(server)
    return req


def request(server, req):
    """Ask the agent about `server`; re-announce the connection once if the agent lost it."""
    c = conn_for(server)
    reply = c.call(req)
    if reply is not None and not reply.get("ok") and reply.get("code") == "unknown-server":
        again = c.call(connected_request(server, False))
        if again is not None:
            effects(again)
            if again.get("ok"):
                reply = c.call(req)
    if reply is not None:
        effects(reply)
    return reply


# ---- showing things -------------------------------------------------------------------------


def buffer_for(server, target):
    buf = ""
    if target:
        buf = weechat.info_get("irc_buffer", "%s,%s" % (server, target))
    return buf or weechat.info_get("irc_buffer", server) or ""


def irc_colors(text):
    """IRC formatting codes (bold, colours: all that sanitised text keeps) as WeeChat shows them."""
    return weechat.hook_modifier_exec("irc_color_decode", "1", text)


def say(server, target, text, level="info"):
    prefix = weechat.prefix("error") if level in ("warn", "error") else weechat.prefix("network")
    weechat.prnt(buffer_for(server, target), "%ssealchat: %s" % (prefix, irc_colors(text)))


def agent_down(server, target, what):
    c = conn_for(server)
    now = time.time()
    why = c.error or "not running"
    last_down_notice[server] = now
    say(server, target, "%s: the sealchat agent at %s is not reachable (%s). Start it with: sealchat agent --account %s"
        % (what, c.path, why, weechat.info_get("irc_nick", server)), "error")


def server_of_label(lbl):
    return lbl[len(LABEL_PREFIX):] if lbl.startswith(LABEL_PREFIX) else None


def with_marker(text, verified, warning):
    if verified:
        tag = opt("marker")
    elif warning:
        tag = "[%s]" % warning
    else:
        return text
    if not tag:
        return text
    if text.startswith("\x01ACTION "):
        return "\x01ACTION %s %s" % (tag, text[len("\x01ACTION "):])
    return "%s %s" % (tag, text)


def show_message(server, ev):
    target, nick = ev.get("target", ""), ev.get("from", "")
    buf = buffer_for(server, target)
    text = irc_colors(with_marker(ev.get("text", ""), ev.get("verified"), None))
    tags = "irc_privmsg,notify_message,nick_%s,log1" % nick
    if text.startswith("\x01ACTION "):
        body = text[len("\x01ACTION "):].rstrip("\x01")
        weechat.prnt_date_tags(buf, 0, tags + ",irc_action", "%s%s%s %s" % (
            weechat.prefix("action"), weechat.info_get("nick_color", nick), nick, weechat.color("reset") + body))
    else:
        weechat.prnt_date_tags(buf, 0, tags, "%s%s\t%s" % (weechat.info_get("nick_color", nick), nick, text))


def effects(reply):
    """Show the events of a reply; queue its sends (sent from a timer, outside any modifier)."""
    for ev in reply.get("events") or []:
        server = server_of_label(ev.get("server", ""))
        if server is None:
            continue
        kind = ev.get("type")
        if kind == "message":
            show_message(server, ev)
            continue
        if kind == "key" and ev.get("room"):
            encrypted.setdefault(server, set()).add(casefold(ev["room"]))
        say(server, ev.get("target", ""), ev.get("text", ""), ev.get("level", "info"))
    sends = reply.get("send") or []
    if sends:
        if not pending_sends:
            weechat.hook_timer(1, 0, 1, "flush_sends_cb", "")
        if len(agent_lines) > 1000:
            agent_lines.clear()  # bounded, should a hook never see its line
        for s in sends:
            server = server_of_label(s.get("server", ""))
            if server is not None and s.get("line"):
                pending_sends.append((server, s["line"]))
                key = agent_line_key(server, s["line"])
                if key is not None:
                    agent_lines[key] = agent_lines.get(key, 0) + 1


def flush_sends_cb(data, remaining):
    items = pending_sends[:]
    del pending_sends[:]
    for server, line in items:
        buf = weechat.info_get("irc_buffer", server)
        if buf:
            weechat.command(buf, "/quote -server %s %s" % (server, line))
    return weechat.WEECHAT_RC_OK


# ---- IRC lines ------------------------------------------------------------------------------


def split_line(line):
    """'@tags :prefix CMD target :text' -> (head, nick, command, target, text); head ends before the text."""
    rest = line
    pos = 0
    if rest.startswith("@"):
        sp = rest.find(" ")
        if sp < 0:
            return None
        pos = sp + 1
    nick = ""
    if line[pos:pos + 1] == ":":
        sp = line.find(" ", pos)
        if sp < 0:
            return None
        prefix = line[pos + 1:sp]
        nick = prefix.split("!", 1)[0].split("@", 1)[0]
        pos = sp + 1
    while line[pos:pos + 1] == " ":
        pos += 1
    sp = line.find(" ", pos)
    if sp < 0:
        return None
    command = line[pos:sp].upper()
    pos = sp + 1
    # Parameters may be separated by more than one space, and the server reads them so (a
    # "PRIVMSG  #sc-room :text" reaches the room): read them the same way.
    while line[pos:pos + 1] == " ":
        pos += 1
    sp = line.find(" ", pos)
    if sp < 0:
        return line, nick, command, line[pos:], ""
    target = line[pos:sp]
    pos = sp + 1
    text = line[pos:]
    if text.startswith(":"):
        text = text[1:]
    head = line[:sp]
    return head, nick, command, target, text


def agent_line_key(server, line):
    parts = split_line(line)
    if parts is None:
        return None
    return (server, parts[2], casefold(parts[3]), parts[4])


def take_agent_line(server, command, target, text):
    """True once for each line the agent asked us to send: it goes out as it is."""
    key = (server, command, casefold(target), text)
    n = agent_lines.get(key, 0)
    if n <= 0:
        return False
    if n == 1:
        del agent_lines[key]
    else:
        agent_lines[key] = n - 1
    return True


def out_cb(data, modifier, server, line):
    """irc_out_privmsg / irc_out_notice: one wire line, after WeeChat split the text."""
    if not protected(server):
        return line
    parts = split_line(line)
    if parts is None:
        return line
    head, _nick, command, target, text = parts
    if take_agent_line(server, command, target, text):
        return line
    reply = request(server, {"op": "outgoing", "server": label(server), "target": target,
                             "command": command, "text": text})
    if reply is None or not reply.get("ok"):
        if not is_encrypted(server, target):
            return line
        if reply is None:
            agent_down(server, target, "NOT SENT to %s" % target)
        else:
            say(server, target, "NOT SENT to %s: %s" % (target, reply.get("error", "the agent refused")), "error")
        return ""
    action = reply.get("action")
    if action == "send":
        return "\n".join("%s :%s" % (head, l) for l in reply.get("lines") or [])
    if action == "refuse":
        say(server, target, "NOT SENT: %s" % reply.get("reason", "refused"), "error")
        return ""
    if action == "hold":
        # Not sent now: the agent sends it under the room's next key (or says NOT SENT).
        say(server, target, "held: %s" % reply.get("reason", "waiting for the room's new key"), "warn")
        return ""
    return line


def topic_cb(data, modifier, server, line):
    """irc_out_topic: a topic is plaintext to the server, so none is set on an encrypted room."""
    if not protected(server):
        return line
    parts = split_line(line)
    if parts is None or parts[0] == line or parts[4] == "":
        return line  # asking for the topic, or clearing it
    target = parts[3]
    reply = request(server, {"op": "check", "server": label(server), "target": target})
    sealed = reply.get("encrypted") if reply is not None and reply.get("ok") else is_encrypted(server, target)
    if not sealed:
        return line
    say(server, target, "NOT SENT: the topic of %s would not be encrypted" % target, "error")
    return ""


def in_cb(data, modifier, server, line):
    """irc_in2_privmsg / irc_in2_notice: rewrite, hide or pass one received line."""
    if not protected(server):
        return line
    parts = split_line(line)
    if parts is None:
        return line
    head, nick, command, target, text = parts
    if not nick:
        return line
    reply = request(server, {"op": "incoming", "server": label(server), "from": nick, "target": target,
                             "command": command, "text": text})
    if reply is None or not reply.get("ok"):
        # Fail closed: never show sealchat traffic as if it were text, flag plaintext in a room.
        if text.startswith("SC1"):
            if text.startswith("SC1M ") or " 1/" in text[:30]:
                if reply is None:
                    # One note per few seconds: a busy room would otherwise flood the buffer.
                    if time.time() - last_down_notice.get(server, 0) > 5:
                        agent_down(server, target, "cannot decrypt a message from %s" % nick)
                else:
                    say(server, target, "cannot decrypt a message from %s: %s" % (nick, reply.get("error", "")), "error")
            return ""
        if is_encrypted(server, target):
            return "%s :%s" % (head, with_marker(text, False, "NOT ENCRYPTED, NOT VERIFIED"))
        return line
    action = reply.get("action")
    if action == "hide":
        return ""
    if action == "show":
        return "%s :%s" % (head, with_marker(reply.get("text", ""), reply.get("verified"), reply.get("warning")))
    return line


def refused_before_echo(server, target):
    """True (and says why) if text for `target` would not be sent: checked before WeeChat echoes it."""
    if not server or not target or not protected(server):
        return False
    reply = request(server, {"op": "check", "server": label(server), "target": target})
    if reply is None:
        if is_encrypted(server, target):
            agent_down(server, target, "NOT SENT to %s" % target)
            return True
        return False
    if reply.get("ok") and reply.get("encrypted") and not reply.get("canSend"):
        say(server, target, "NOT SENT: %s" % reply.get("reason", "no key"), "error")
        return True
    return False


def input_cb(data, modifier, buffer_ptr, text):
    """input_text_for_buffer: refuse text for a room without a key before WeeChat echoes it."""
    if weechat.buffer_get_string(buffer_ptr, "plugin") != "irc":
        return text
    if weechat.buffer_get_string(buffer_ptr, "localvar_type") != "channel":
        return text
    if text.startswith("/") and not text.startswith("//"):
        return text
    server = weechat.buffer_get_string(buffer_ptr, "localvar_server")
    channel = weechat.buffer_get_string(buffer_ptr, "localvar_channel")
    return "" if refused_before_echo(server, channel) else text


def msg_cmd_cb(data, buffer_ptr, command):
    """/msg [-server NAME] TARGET TEXT: the same check, before WeeChat sends and echoes it."""
    words = command.split(" ")[1:]
    server = weechat.buffer_get_string(buffer_ptr, "localvar_server")
    if words[:1] == ["-server"] and len(words) > 1:
        server = words[1]
        words = words[2:]
    if len(words) < 2:
        return weechat.WEECHAT_RC_OK
    target = words[0]
    if target == "*":
        target = weechat.buffer_get_string(buffer_ptr, "localvar_channel")
    return weechat.WEECHAT_RC_OK_EAT if refused_before_echo(server, target) else weechat.WEECHAT_RC_OK


def membership_cb(data, signal, line):
    """*,irc_in2_join/part/kick/quit: who came or went, for the agent's keys (ours are wiped when we leave)."""
    server = signal.split(",", 1)[0]
    if not protected(server):
        return weechat.WEECHAT_RC_OK
    parts = split_line(line)
    if parts is None:
        return weechat.WEECHAT_RC_OK
    _head, nick, command, target, text = parts
    req = {"op": "membership", "server": label(server), "me": weechat.info_get("irc_nick", server) or ""}
    if command == "QUIT":
        req.update(kind="quit", nick=nick)
    else:
        room = target.lstrip(":")
        if not is_encrypted(server, room):
            return weechat.WEECHAT_RC_OK
        if command == "KICK":
            # "KICK #room victim :reason": the victim is the first word of what follows the room.
            req.update(kind="kick", room=room, nick=text.split(" ", 1)[0].lstrip(":"))
        elif command in ("JOIN", "PART"):
            req.update(kind=command.lower(), room=room, nick=nick)
        else:
            return weechat.WEECHAT_RC_OK
    if req.get("nick"):
        request(server, req)
    return weechat.WEECHAT_RC_OK


def connected_cb(data, signal, server):
    if not protected(server):
        return weechat.WEECHAT_RC_OK
    encrypted[server] = set()
    reply = request(server, connected_request(server, True))
    if reply is None:
        agent_down(server, "", "encrypted rooms are refused")
    elif not reply.get("ok"):
        say(server, "", "the agent refused this connection: %s" % reply.get("error", ""), "error")
    return weechat.WEECHAT_RC_OK


def disconnected_cb(data, signal, server):
    if protected(server):
        conn_for(server).call({"op": "disconnected", "server": label(server)})
    return weechat.WEECHAT_RC_OK


def timer_cb(data, remaining):
    """About once a second: collect what the agent wants shown or sent (keys, late messages)."""
    seen = set()
    il = weechat.infolist_get("irc_server", "", "")
    if il:
        while weechat.infolist_next(il):
            server = weechat.infolist_string(il, "name")
            if not weechat.infolist_integer(il, "is_connected") or not protected(server):
                continue
            c = conn_for(server)
            if c.path in seen:
                continue
            seen.add(c.path)
            reply = c.call({"op": "poll"})
            if reply is not None:
                effects(reply)
        weechat.infolist_free(il)
    return weechat.WEECHAT_RC_OK


def command_cb(data, buffer_ptr, args):
    """/sealchat: what the agent holds for this server."""
    server = weechat.buffer_get_string(buffer_ptr, "localvar_server")
    if not server:
        weechat.prnt(buffer_ptr, "sealchat: run /sealchat in a buffer of a sealchat server")
        return weechat.WEECHAT_RC_OK
    reply = request(server, {"op": "status", "server": label(server)})
    if reply is None:
        agent_down(server, "", "status unknown")
        return weechat.WEECHAT_RC_OK
    for s in reply.get("servers") or []:
        kb = s.get("keybot", {})
        say(server, "", "agent for %s; keybot key: %s %s" % (reply.get("account"), kb.get("status"), kb.get("fingerprint", "")))
        for r in s.get("rooms") or []:
            say(server, "", "  %s: %s (epoch %s) members: %s" % (
                r.get("room"), "key held" if r.get("hasKey") else "no key", r.get("epoch", "-"), ", ".join(r.get("members") or [])))
    return weechat.WEECHAT_RC_OK


def unload_cb():
    for c in conns.values():
        c.close()
    return weechat.WEECHAT_RC_OK


if weechat.register(SCRIPT_NAME, "sealchat", SCRIPT_VERSION, "MIT",
                    "End-to-end encrypted sealchat rooms through the local sealchat agent", "unload_cb", ""):
    for name, (default, desc) in DEFAULTS.items():
        if not weechat.config_is_set_plugin(name):
            weechat.config_set_plugin(name, default)
        weechat.config_set_desc_plugin(name, desc)
    for m in ("irc_out_privmsg", "irc_out_notice"):
        weechat.hook_modifier(m, "out_cb", "")
    weechat.hook_modifier("irc_out_topic", "topic_cb", "")
    for m in ("irc_in2_privmsg", "irc_in2_notice"):
        weechat.hook_modifier(m, "in_cb", "")
    weechat.hook_modifier("input_text_for_buffer", "input_cb", "")
    weechat.hook_command_run("/msg", "msg_cmd_cb", "")
    for m in ("join", "part", "kick", "quit"):
        weechat.hook_signal("*,irc_in2_%s" % m, "membership_cb", "")
    weechat.hook_signal("irc_server_connected", "connected_cb", "")
    weechat.hook_signal("irc_server_disconnected", "disconnected_cb", "")
    weechat.hook_timer(1000, 0, 0, "timer_cb", "")
    weechat.hook_command("sealchat", "sealchat status: keybot's pinned key and the rooms the agent holds keys for",
                         "", "", "", "command_cb", "")
    # Loaded while already connected: re-attach to the agent's sessions (keys kept).
    il = weechat.infolist_get("irc_server", "", "")
    if il:
        while weechat.infolist_next(il):
            name = weechat.infolist_string(il, "name")
            if weechat.infolist_integer(il, "is_connected") and protected(name):
                r = request(name, connected_request(name, False))
                if r is None:
                    agent_down(name, "", "encrypted rooms are refused")
        weechat.infolist_free(il)
