#!/usr/bin/env bash
# HexChat through `sealchat proxy`: a scripted check, run by hand (CI does not depend on it).
#
# HexChat is a GTK program without a scripting hook we can drive from outside, so this check
# runs it under Xvfb and steers it with its own configuration: a network entry that logs in with
# a server password (PASS) through the proxy, connect commands that ask keybot for a room and
# later say something in every channel (/timer + /allchan), and channel logs to read back.
# Everything else uses the real commands a user and an administrator would run:
#
#   sealchatd ircd          the server, on a free loopback port, in a temporary data dir
#   sealchatd user add      accounts alice and bob, with keys from `sealchat keygen`
#   sealchatd keybot        the key service
#   sealchat proxy          alice's proxy, which HexChat connects to
#   sealchat chat           bob, in the terminal client, fed through a FIFO
#
# It checks that HexChat (alice) gets the room without /join, sees keybot's key notice from the
# proxy, shows bob's encrypted message as plain text (non-ASCII included), and that bob reads
# what HexChat said; and that a plaintext send to a room without a key is refused.
#
# Needs: node (with this repo's npm install), hexchat, Xvfb (Debian: apt-get install hexchat xvfb).
# Usage: scripts/hexchat-check.sh [--keep]   (--keep leaves the work directory for a look)
# Exit 0 when every check passed, 1 when one failed, 2 when something needed is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

for cmd in node hexchat Xvfb; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "hexchat-check: $cmd is not installed (apt-get install hexchat xvfb)" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sealchat-hexchat.XXXXXX")"
PIDS=()
cleanup() {
  # Only what this script started, newest first.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "hexchat-check: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export SEALCHAT_LOG=warn
SC=(node --import tsx "$ROOT/src/cli/sealchat.ts")
SCD=(node --import tsx "$ROOT/src/cli/sealchatd.ts")
FAILED=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; FAILED=1; }

# Poll until `grep -rE PATTERN PATH...` matches (files or directories), for at most SECONDS.
wait_for() {
  local seconds=$1 pattern=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if grep -rqE -- "$pattern" "$@" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

PORT="$(free_port)"
PROXY_PORT="$(free_port)"
DATA="$WORK/data"
mkdir -p "$WORK/keys" "$WORK/home"
export SEALCHAT_HOME="$WORK/home"

echo "hexchat-check: work directory $WORK, server port $PORT, proxy port $PROXY_PORT"

# 1. The server.
"${SCD[@]}" ircd --data "$DATA" --listen "127.0.0.1:$PORT" >"$WORK/ircd.log" 2>&1 &
PIDS+=($!)
wait_for 20 "listening on 127.0.0.1:$PORT" "$WORK/ircd.log" || { cat "$WORK/ircd.log"; echo "hexchat-check: the ircd did not start" >&2; exit 1; }

# 2. Keys and accounts, as the user and the administrator would make them.
for u in alice bob; do
  "${SC[@]}" keygen "$u" --dir "$WORK/keys" --no-passphrase >"$WORK/keygen-$u.log"
  printf 'pw-%s-hexchat\n' "$u" | "${SCD[@]}" user add "$u" --key "$WORK/keys/$u.pub.asc" --password-stdin --data "$DATA" >"$WORK/useradd-$u.log"
done
printf 'pw-bob-hexchat\n' >"$WORK/bob.pw"

# 3. keybot; its fingerprint is what users pin.
"${SCD[@]}" keybot --data "$DATA" --irc "127.0.0.1:$PORT" >"$WORK/keybot.log" 2>&1 &
PIDS+=($!)
wait_for 20 "logged in to" "$WORK/keybot.log" || { cat "$WORK/keybot.log"; echo "hexchat-check: keybot did not start" >&2; exit 1; }
FP="$(sed -n 's/.*key fingerprint \([0-9A-F ]*\).*/\1/p' "$WORK/keybot.log" | tr -d ' ')"
echo "hexchat-check: keybot's fingerprint $FP"

# 4. alice's proxy.
"${SC[@]}" proxy --listen "127.0.0.1:$PROXY_PORT" --server "127.0.0.1:$PORT" --key "$WORK/keys/alice.key.asc" --user alice \
  --keybot-fingerprint "$FP" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
wait_for 20 "listening on 127.0.0.1:$PROXY_PORT" "$WORK/proxy.log" || { cat "$WORK/proxy.log"; echo "hexchat-check: the proxy did not start" >&2; exit 1; }

# 5. bob in the terminal client; his input comes through a FIFO held open by this script.
mkfifo "$WORK/bob.in"
"${SC[@]}" chat --server "127.0.0.1:$PORT" --user bob --key "$WORK/keys/bob.key.asc" --password-file "$WORK/bob.pw" \
  --keybot-fingerprint "$FP" <"$WORK/bob.in" >"$WORK/bob.out" 2>&1 &
PIDS+=($!)
exec 3>"$WORK/bob.in"
wait_for 20 "connected to 127.0.0.1:$PORT as bob" "$WORK/bob.out" || { cat "$WORK/bob.out"; echo "hexchat-check: bob could not log in" >&2; exit 1; }

# 6. HexChat as alice: a network that logs in with PASS through the proxy, opens a room via keybot,
#    and says something in every channel once it is in one. Logs are on; flood throttling is off.
CFG="$WORK/hexchat"
mkdir -p "$CFG"
cat >"$CFG/hexchat.conf" <<EOF
version = 2.16.1
gui_slist_skip = 1
gui_join_dialog = 0
gui_tray = 0
irc_logging = 1
irc_nick1 = alice
irc_nick2 = alice_
irc_user_name = alice
irc_real_name = alice
irc_who_join = 0
net_throttle = 0
text_replay = 0
EOF
# F=8: auto-connect, this entry's own nick. L=7: log in with a server password (PASS).
cat >"$CFG/servlist.conf" <<EOF
v=2.16.1

N=sealtest
I=alice
i=alice_
U=alice
R=alice
P=pw-alice-hexchat
L=7
E=UTF-8 (Unicode)
F=8
D=0
S=127.0.0.1/$PROXY_PORT
C=msg keybot invite bob
C=timer 4 allchan say hello from HexChat, grüße ✓
C=timer 5 msg #sc-aaaaaaaaaa this must not leave
EOF

DISPLAY_NUM=$((90 + RANDOM % 400))
Xvfb ":$DISPLAY_NUM" -screen 0 1024x768x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.1; done
# HexChat run as root stops at a modal "Running IRC as root is stupid!" dialog that nothing here
# can click, so as root it runs as nobody (its config directory handed over to it). `-d DIR` as two
# arguments: HexChat reads hexchat.conf before it parses --cfgdir=.
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$WORK"
  chown -R 65534:65534 "$CFG"
  RUN_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
DISPLAY=":$DISPLAY_NUM" HOME="$CFG" NO_AT_BRIDGE=1 "${RUN_AS[@]}" hexchat -d "$CFG" --no-plugins >"$WORK/hexchat.out" 2>&1 &
PIDS+=($!)

LOGS="$CFG/logs"
# 7. The checks.
if wait_for 30 "opened #sc-[a-z2-7]{10} with bob" "$LOGS"; then pass "alice (HexChat) asked keybot for a room through the proxy"; else fail "no room was opened"; fi
ROOM="$(grep -rhoE 'opened #sc-[a-z2-7]{10}' "$LOGS" | head -1 | cut -d' ' -f2 || true)"
if [ -n "$ROOM" ] && wait_for 20 "key: $ROOM epoch [0-9]+ \(first key\), members alice, bob; verified" "$LOGS"; then
  pass "HexChat shows the proxy's key notice for $ROOM (no /join typed)"
else
  fail "HexChat did not log the key notice for the room"
fi
if wait_for 20 "<alice> hello from HexChat, grüße ✓" "$WORK/bob.out"; then pass "bob read HexChat's message in plain text"; else fail "bob did not read HexChat's message"; fi
wait_for 10 "now talking in $ROOM" "$WORK/bob.out" || true
echo "hallo HexChat, bob hier — ünïcødé ✓" >&3
if wait_for 20 "hallo HexChat, bob hier — ünïcødé ✓" "$LOGS"; then pass "HexChat shows bob's encrypted message in plain text"; else fail "HexChat did not show bob's message"; fi
if wait_for 20 "NOT SENT: no key for #sc-aaaaaaaaaa" "$LOGS" "$WORK/hexchat.out"; then
  pass "a plaintext send to a room without a key was refused with a notice"
else
  fail "no refusal notice for the room without a key"
fi
if grep -q "this must not leave" "$WORK/bob.out"; then fail "the refused text reached someone"; fi

echo "/quit" >&3 || true
exec 3>&-
if [ "$FAILED" = 0 ]; then echo "hexchat-check: all checks passed"; else
  echo "hexchat-check: some checks failed; HexChat's logs:" >&2
  find "$LOGS" -type f -print -exec cat {} \; >&2 2>/dev/null || true
fi
exit "$FAILED"
