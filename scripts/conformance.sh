#!/usr/bin/env bash
# npm run conformance [-- core|services [pytest arguments, e.g. -k whowas]]
# Runs the public IRC server conformance suite (progval/irctest) against sealchatd, a fresh
# daemon per test. Not part of CI: it needs python3-pytest and a checkout of irctest. How to set
# it up, the counts and every remaining failure or skip: docs/OPERATIONS.md "IRC conformance".
#
#   IRCTEST_DIR      an irctest work tree (default /tmp/irctest), commit in docs/OPERATIONS.md
#   IRCTEST_HARNESS  the harness with run.sh and the generic controller (default ../shared/irctest)
#   JOBS             parallel workers (default 2)
#
#   core      the selection of issue #15: server_tests without services or optional extensions
#   services  accounts and SASL: tests marked `services`, accounts made with `sealchatd user add`
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${IRCTEST_HARNESS:-$ROOT/../shared/irctest}
export IRCTEST_DIR=${IRCTEST_DIR:-/tmp/irctest}
selection=core
case "${1:-}" in core|services) selection=$1; shift ;; esac

[ -x "$HARNESS/run.sh" ] || { echo "conformance: no harness at IRCTEST_HARNESS=$HARNESS (run.sh)" >&2; exit 3; }
[ -f "$ROOT/dist/cli/sealchatd.js" ] || (cd "$ROOT" && npm run build >/dev/null)
SCD="$ROOT/dist/cli/sealchatd.js"
export SEALCHAT=$ROOT
OPER_HASH=$(printf '%s' operpassword | node "$SCD" hash-password --stdin)
export OPER_HASH
export IRCTEST_SERVER_NAME=sealchat
# The two ELIST C/T tests (list.py FaketimeListTestCase) wait three simulated minutes: under
# libfaketime (Debian: faketime) that is 6 s instead of 3 min. Only tests that ask for it run so.
export IRCTEST_SERVER_FAKETIME=${IRCTEST_SERVER_FAKETIME:-1}
# What sealchatd offers, declared so that a regression fails the test instead of skipping it.
export IRCTEST_SERVER_OPTIONAL_BEHAVIORS="BAN_EXCEPTION_MODE CAP_REQ_MINUS INVITE_EXCEPTION_MODE INVITE_LIST INVITE_OVERRIDES_LIMIT MULTI_JOIN MULTI_KICK MULTI_NAMES_COMMAND MULTI_PRIVMSG NO_CTCP SASL_AFTER_REGISTRATION ELIST_M ELIST_N ELIST_U ELIST_C ELIST_T"
# ISUPPORT tokens isupport.py::testValues checks (values without commas: the harness splits on them).
export IRCTEST_SERVER_ISUPPORT="CASEMAPPING=ascii CHANTYPES=# EXCEPTS=e INVEX=I ELIST=CMNTU STATUSMSG=@+ WHOX PREFIX=(ov)@+ MONITOR=100 NICKLEN=30"
START="exec $ROOT/scripts/irctest-server.sh {config_dir} {hostname} {port} {password}"
out=${JUNIT:-/tmp/sealchat-irctest-$selection.xml}

if [ "$selection" = services ]; then
  # An account needs an OpenPGP public key (sealchat's directory); one throwaway key serves all.
  keydir=$(mktemp -d)
  trap 'rm -rf "$keydir"' EXIT
  node "$ROOT/dist/cli/sealchat.js" keygen irctest --dir "$keydir" --no-passphrase >/dev/null
  pub=$keydir/irctest.pub.asc
  export IRCTEST_SERVER_SASL_MECHS=PLAIN
  export IRCTEST_SERVER_REGISTER_CMD="printf '%s' {password} | SEALCHAT_LOG=silent node $SCD user add {username} --key $pub --password-stdin --config {config_dir}/sealchat.json"
  # pytest keeps the last -m: the harness's selection, narrowed to the `services` tests.
  "$HARNESS/run.sh" -n "${JOBS:-2}" --services --junit "$out" --exit-zero "$START" \
    -- -m 'services and not implementation-specific and not deprecated and not strict' "$@"
else
  "$HARNESS/run.sh" -n "${JOBS:-2}" --junit "$out" --exit-zero "$START" ${1+-- "$@"}
fi
"$HARNESS/junit_summary.py" "$out" --modules --failed
