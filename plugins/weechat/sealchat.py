# -*- coding: utf-8 -*-
#
# sealchat for WeeChat: end-to-end encrypted sealchat rooms in your usual client.
#
# A pure adapter. Every PRIVMSG, NOTICE and TOPIC WeeChat sends, and every PRIVMSG, NOTICE, JOIN,
# PART, KICK and QUIT it receives, on a sealchat server is handed as it is to the local
# `sealchat agent` (JSON lines over a unix socket, agent protocol 3), which holds your key, does
# all the crypto and decides; this script applies its answer: pass the line, hide it, show
# another line instead, send other lines instead, or drop it (refused, or held for the room's
# next key). What the agent wants shown or sent by itself comes with its answers.
#
# When the agent cannot answer, the script FAILS CLOSED by the one rule in the sealchat
# repository's docs/PROTOCOL.md ("Faults", "Targets"), which the irssi script follows too:
# nothing goes to an encrypted room (#sc-*, or any room the agent gave a key for), sealchat
# ciphertext is hidden, and it says so.
#
# Install: copy to ~/.local/share/weechat/python/autoload/ (or <weechat -d DIR>/python/autoload/),
# or /python load /path/to/sealchat.py; run `sealchat agent --account NICK` first. See
# docs/COMPANIONS.md ("Plugins") in the sealchat repository.
#
# Options (/set plugins.var.python.sealchat.*):
#   socket   agent socket; "" = $SEALCHAT_HOME or ~/.sealchat, then agent-<nick>.sock
#   servers  comma-separated WeeChat server names to protect; "*" = all (default)
#   timeout  seconds to wait for the agent (default 3)
#   marker   shown before verified messages (default "✓"; a change applies from the next connection)
#
# Python standard library only.

import json
import os
import re
import socket
import time

import weechat

SCRIPT_NAME = "sealchat"
SCRIPT_VERSION = "0.3.0"
AGENT_PROTOCOL = 3
LABEL_PREFIX = "weechat/"

DEFAULTS = {
    "socket": ("", "agent socket path; empty: $SEALCHAT_HOME or ~/.sealchat, then agent-<nick>.sock"),
    "servers": ("*", "comma-separated server names to protect, * for all"),
    "timeout": ("3", "seconds to wait for the agent before failing closed"),
    "marker": ("\u2713", "shown before a decrypted message whose signature verified (from the next connection)"),
}

# socket path -> AgentConn
conns = {}
# server name -> rooms the agent named in `key` events (casefolded), for the rule below
encrypted = {}
# raw lines the agent asked us to send: [(server, line)]
pending_sends = []
# server name -> when we last said a received line was hidden without the agent
last_down_notice = {}


def opt(name):
    return weechat.config_get_plugin(name)


# ---- without the agent: docs/PROTOCOL.md "Targets", the same in sealchat.pl -----------------

LINE_RE = re.compile(r"^ *(?:@[^ ]* +)?(?::([^ ]*) +)?([^ ]+) *([^ ]*) *(.*)$")
ROOM_PREFIX = "#sc-"
STATUSMSG_PREFIXES = "@%+~&"
SEALED_PREFIX = "SC1"
NOT_SEALED = "[NOT ENCRYPTED, NOT VERIFIED] "


def casefold(name):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in name)


def sealed(server, target):
    if target == "" or target.startswith(":"):
        return True
    for part in target.split(","):
        t = casefold(part.lstrip(STATUSMSG_PREFIXES))
        if t == "" or t.startswith(ROOM_PREFIX) or t in encrypted.get(server, ()):
            return True
    return False


def without_agent(server, direction, line, why):
    """The line to use instead of `line` when the agent cannot answer ("" drops it)."""
    m = LINE_RE.match(line)
    if not m:
        return line
    source, command, target, rest = m.group(1) or "", m.group(2).upper(), m.group(3), m.group(4)
    text = rest[1:] if rest.startswith(":") else rest
    if direction == "out":
        if (command in ("PRIVMSG", "NOTICE") or (command == "TOPIC" and text != "")) and sealed(server, target):
            say(server, target, "NOT SENT to %s: %s" % (target, why), "error")
            return ""
        return line
    if command not in ("PRIVMSG", "NOTICE"):
        return line
    if text.startswith(SEALED_PREFIX):
        if time.time() - last_down_notice.get(server, 0) > 5:
            last_down_notice[server] = time.time()
            say(server, target, "cannot decrypt a message from %s: %s" % (source.split("!", 1)[0], why), "error")
        return ""
    if sealed(server, target):
        head = line[:len(line) - len(text)]
        if text.startswith("\x01ACTION "):
            head, text = head + "\x01ACTION ", text[len("\x01ACTION "):]
        return head + NOT_SEALED + text
    return line


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


def server_of_label(lbl):
    return lbl[len(LABEL_PREFIX):] if lbl.startswith(LABEL_PREFIX) else None


def connected_request(server, fresh):
    host, port = "", 0
    il = weechat.infolist_get("irc_server", "", server)
    if il:
        if weechat.infolist_next(il):
            host = weechat.infolist_string(il, "current_address") or ""
            port = weechat.infolist_integer(il, "current_port")
        weechat.infolist_free(il)
    req = {"op": "connected", "server": label(server), "nick": weechat.info_get("irc_nick", server),
           "host": host, "port": port, "fresh": fresh, "protocol": AGENT_PROTOCOL, "marker": opt("marker")}
    if not fresh:
        rooms = []
        il = weechat.infolist_get("irc_channel", "", server)
        if il:
            while weechat.infolist_next(il):
                if weechat.infolist_integer(il, "type") == 0:
                    rooms.append(weechat.infolist_string(il, "name"))
            weechat.infolist_free(il)
        req["rooms"] = rooms
    return req


def ask(server, req):
    """One request about `server`: (reply, None), or (None, why) when the agent cannot answer.
    A restarted agent does not know the connection: it is told again (keys kept), then asked."""
    c = conn_for(server)
    reply = c.call(req)
    if reply is not None and not reply.get("ok") and reply.get("code") == "unknown-server":
        again = c.call(connected_request(server, False))
        if again is not None:
            effects(again)
            if again.get("ok"):
                reply = c.call(req)
    if reply is None:
        return None, "the sealchat agent at %s is not reachable (%s). Start it with: sealchat agent --account %s" % (
            c.path, c.error or "not running", weechat.info_get("irc_nick", server))
    effects(reply)
    if not reply.get("ok"):
        return None, reply.get("error") or "the agent refused"
    return reply, None


def apply_line(server, direction, line):
    """The line WeeChat goes on with: the agent's answer applied, or the rule without it."""
    reply, why = ask(server, {"op": "line", "server": label(server), "dir": direction, "line": line})
    if reply is None:
        return without_agent(server, direction, line, why)
    action = reply.get("action")
    if action == "pass":
        return line
    if action == "show" and direction == "in":
        return reply.get("line", "")
    if action == "send" and direction == "out":
        return "\n".join(reply.get("lines") or [])
    return ""  # hide, refuse, hold, and anything this script does not know


# ---- showing what the agent says ------------------------------------------------------------


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


def show_message(server, ev):
    """A room message the agent released (its text marked already), as WeeChat shows one received."""
    nick = ev.get("from", "")
    buf = buffer_for(server, ev.get("target", ""))
    text = irc_colors(ev.get("text", ""))
    tags = "irc_privmsg,notify_message,nick_%s,log1" % nick
    # What was said while we were away: shown at its own time (the agent marked the text already).
    date = int(ev.get("time", 0) // 1000) if ev.get("history") and isinstance(ev.get("time"), (int, float)) else 0
    if ev.get("history"):
        tags = "irc_privmsg,nick_%s,sealchat_history,log1" % nick
    if text.startswith("\x01ACTION "):
        body = text[len("\x01ACTION "):].rstrip("\x01")
        weechat.prnt_date_tags(buf, date, tags + ",irc_action", "%s%s%s %s" % (
            weechat.prefix("action"), weechat.info_get("nick_color", nick), nick, weechat.color("reset") + body))
    else:
        weechat.prnt_date_tags(buf, date, tags, "%s%s\t%s" % (weechat.info_get("nick_color", nick), nick, text))


def effects(reply):
    """Show the events of a reply; queue its sends (sent from a timer, outside any modifier)."""
    for ev in reply.get("events") or []:
        server = server_of_label(ev.get("server", ""))
        if server is None:
            continue
        if ev.get("type") == "message":
            show_message(server, ev)
            continue
        if ev.get("type") == "key" and ev.get("room"):
            encrypted.setdefault(server, set()).add(casefold(ev["room"]))
        say(server, ev.get("target", ""), ev.get("text", ""), ev.get("level", "info"))
    sends = reply.get("send") or []
    if sends and not pending_sends:
        weechat.hook_timer(1, 0, 1, "flush_sends_cb", "")
    for s in sends:
        server = server_of_label(s.get("server", ""))
        if server is not None and s.get("line"):
            pending_sends.append((server, s["line"]))


def flush_sends_cb(data, remaining):
    items = pending_sends[:]
    del pending_sends[:]
    for server, line in items:
        buf = weechat.info_get("irc_buffer", server)
        if buf:
            weechat.command(buf, "/quote -server %s %s" % (server, line))
    return weechat.WEECHAT_RC_OK


# ---- WeeChat's hooks ------------------------------------------------------------------------


def out_cb(data, modifier, server, line):
    """irc_out_privmsg / irc_out_notice / irc_out_topic: one wire line, after WeeChat split the text."""
    return apply_line(server, "out", line) if protected(server) else line


def in_cb(data, modifier, server, line):
    """irc_in2_privmsg / irc_in2_notice (and cap, batch, fail, 005 for the history catch-up): one received line."""
    return apply_line(server, "in", line) if protected(server) else line


def membership_cb(data, signal, line):
    """*,irc_in2_join/part/kick/quit/invite: who came or went, for the agent's keys, and keybot's
    INVITE on an ordinary IRC network, which the agent answers with a JOIN (the line is shown anyway)."""
    server = signal.split(",", 1)[0]
    if protected(server):
        apply_line(server, "in", line)
    return weechat.WEECHAT_RC_OK


def refused_before_echo(server, target):
    """True (the user is told why) if text for `target` would not be sent: asked before WeeChat echoes it."""
    if not server or not target or not protected(server):
        return False
    reply, why = ask(server, {"op": "check", "server": label(server), "target": target})
    if reply is None:
        return without_agent(server, "out", "PRIVMSG %s :" % target, why) == ""
    return reply.get("action") == "refuse"


def input_cb(data, modifier, buffer_ptr, text):
    """input_text_for_buffer: text typed into a channel, before WeeChat sends and echoes it."""
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


def announce(server, fresh):
    encrypted.setdefault(server, set())
    reply, why = ask(server, connected_request(server, fresh))
    if reply is None:
        say(server, "", "encrypted rooms are refused: %s" % why, "error")


def connected_cb(data, signal, server):
    if protected(server):
        encrypted[server] = set()
        announce(server, True)
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
    reply, why = ask(server, {"op": "status", "server": label(server)})
    if reply is None:
        say(server, "", "status unknown: %s" % why, "error")
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
    for m in ("irc_out_privmsg", "irc_out_notice", "irc_out_topic"):
        weechat.hook_modifier(m, "out_cb", "")
    # CAP, BATCH, FAIL and 005 too: the agent's history catch-up (it asks for the capabilities
    # WeeChat 3.8 does not, and hides their answer and the history batch it decrypts).
    for m in ("irc_in2_privmsg", "irc_in2_notice", "irc_in2_cap", "irc_in2_batch", "irc_in2_fail", "irc_in2_005"):
        weechat.hook_modifier(m, "in_cb", "")
    weechat.hook_modifier("input_text_for_buffer", "input_cb", "")
    weechat.hook_command_run("/msg", "msg_cmd_cb", "")
    for m in ("join", "part", "kick", "quit", "invite"):
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
                announce(name, False)
        weechat.infolist_free(il)
