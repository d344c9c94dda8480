#!/usr/bin/env bash
# Bring up a local vcpd Virtual Cloud: one daemon per VCP on 127.0.0.1.
#
#   scripts/run_local_vc.sh [--dir DIR] [--parties N] [--base-port P]
#                           [--offline dealer|mascot] [--demo]
#
# Creates .venv and installs vcpd if needed, writes a VC into DIR (default
# ./local-vc) unless one is there, starts every daemon (logs in DIR/logs/),
# waits until all are up and linked, prints
#     ready: export VCPCTL_VC=DIR/client.toml
# and stops them all on Ctrl-C or SIGTERM. With --demo it runs a short
# demonstration against the VC (starting it first if it is not running) and exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=./local-vc
PARTIES=3
BASE_PORT=7100
OFFLINE=dealer
DEMO=0

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) DIR=$2; shift 2 ;;
        --parties) PARTIES=$2; shift 2 ;;
        --base-port) BASE_PORT=$2; shift 2 ;;
        --offline) OFFLINE=$2; shift 2 ;;
        --demo) DEMO=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_local_vc.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

VENV=${VCPD_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV" >&2
    python3 -m venv "$VENV"
fi
# (Re)install when vcpd is missing or pyproject.toml changed since the last install.
STAMP="$VENV/.vcpd-installed"
WANT=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! "$VENV/bin/vcpctl" --version >/dev/null 2>&1; then
    echo "installing vcpd into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT" >&2
    echo "$WANT" >"$STAMP"
fi
VCPD="$VENV/bin/vcpd"
VCPCTL="$VENV/bin/vcpctl"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CLIENT="$DIR/client.toml"
if [ ! -f "$CLIENT" ]; then
    "$VCPCTL" vc init --parties "$PARTIES" --dir "$DIR" --base-port "$BASE_PORT" --offline "$OFFLINE" >&2
fi
export VCPCTL_VC="$CLIENT"

run_demo() {
    bash "$ROOT/scripts/demo.sh" "$VCPCTL"
}

# A VC that already answers (started by another run of this script) is used as is.
if [ "$DEMO" = 1 ] && "$VCPCTL" status >/dev/null 2>&1; then
    run_demo
    exit $?
fi

PIDS=()
stop_all() {
    trap - INT TERM EXIT
    if [ ${#PIDS[@]} -gt 0 ]; then
        kill -TERM "${PIDS[@]}" 2>/dev/null || true
        wait "${PIDS[@]}" 2>/dev/null || true
    fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

mkdir -p "$DIR/logs"
for config in "$DIR"/vcp*.toml; do
    name=$(basename "$config" .toml)
    "$VCPD" start --config "$config" >>"$DIR/logs/$name.log" 2>&1 &
    PIDS+=($!)
done

# Wait (up to 60 s) until every VCP answers and all peer links are up.
if ! "$VCPCTL" status --wait 60 >/dev/null 2>"$DIR/logs/status.err"; then
    echo "run_local_vc.sh: the VC did not come up; see $DIR/logs/ and:" >&2
    cat "$DIR/logs/status.err" >&2
    for i in "${!PIDS[@]}"; do
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            echo "--- vcp$i exited; last lines of its log:" >&2
            tail -n 5 "$DIR/logs/vcp$i.log" >&2
        fi
    done
    exit 1
fi

if [ "$DEMO" = 1 ]; then
    status=0
    run_demo || status=$?
    exit $status
fi

echo "ready: export VCPCTL_VC=$CLIENT"
# Wait until a daemon exits or a signal arrives (the traps stop the rest).
wait -n "${PIDS[@]}" || true
echo "run_local_vc.sh: a daemon exited; stopping the VC (see $DIR/logs/)" >&2
exit 1
