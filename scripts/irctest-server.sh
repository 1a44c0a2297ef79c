#!/bin/sh
# Start one sealchatd for one irctest test (the generic controller runs this per test; see
# scripts/conformance.sh and docs/OPERATIONS.md "IRC conformance"). Guests mode
# (requireAccount=false), server name My.Little.Server and info "test server" (as irctest's own
# controllers configure theirs; links.py checks it), oper operuser/operpassword, and flood
# limits raised the way irctest's own controllers raise ngircd's and InspIRCd's (recvq too:
# sasl.py sends 400 kB at once and expects 904, not an Excess Flood that depends on TCP chunking).
# forceNickEqualsAccount off, as irctest runs Ergo (nick reservation, force-nick-equals-account
# left off): the services tests log in under a nick other than the account, and log guests in
# with SASL after registration.
#   scripts/irctest-server.sh CONFIG_DIR HOST PORT [PASSWORD]
# Needs SEALCHAT (a built checkout) and OPER_HASH (sealchatd hash-password of "operpassword").
set -eu
dir=$1 host=$2 port=$3 pass=${4:-}
SCD="${SEALCHAT:?set SEALCHAT to a built checkout}/dist/cli/sealchatd.js"
sph=null
if [ -n "$pass" ]; then sph="\"$(printf '%s' "$pass" | node "$SCD" hash-password --stdin)\""; fi
cat > "$dir/sealchat.json" <<CONF
{ "serverName": "My.Little.Server", "serverInfo": "test server", "dataDir": "$dir/data", "requireAccount": false, "utf8Only": true,
  "forceNickEqualsAccount": false,
  "serverPasswordHash": $sph,
  "listen": [{ "host": "$host", "port": $port }],
  "operators": [{ "name": "operuser", "passwordHash": "${OPER_HASH:?}" }],
  "limits": { "commandBurst": 1000, "commandsPerSecond": 1000, "loginAttemptsPerIpPerMinute": 1000,
              "loginAttemptsPerAccountPerMinute": 1000, "recvqBytes": 1048576 } }
CONF
SEALCHAT_LOG=${SEALCHAT_LOG:-silent} exec node "$SCD" ircd --config "$dir/sealchat.json"
