#!/usr/bin/env bash
# A short demonstration against a running local VC (VCPCTL_VC must be set).
# Called by scripts/run_local_vc.sh --demo; usage: demo.sh PATH/TO/vcpctl
set -euo pipefail
VCPCTL=${1:-vcpctl}
# The offline mode as the VC reports it (an existing VC keeps the mode it was made with).
OFFLINE=$("$VCPCTL" status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["vcps"][0].get("offline", "dealer"))')
case "$OFFLINE" in
    dealer) SOURCE="dealer: development only, one VCP knows every tuple"; COUNT=10000 ;;
    *) SOURCE="$OFFLINE: secure against any N-1 colluding VCPs; slower"; COUNT=2000 ;;
esac
step() { printf '\n== %s\n' "$*"; }

step "status of every VCP"
"$VCPCTL" status

step "tuples: generate multiplication triples, which also check uploads and downloads ($SOURCE)"
"$VCPCTL" tuples generate triple "$COUNT"
"$VCPCTL" tuples stock

step "secrets: verified upload of three integers"
ID=$("$VCPCTL" secrets create --tag demo=yes -- 17 -4 1000000)
echo "secret id: $ID"

step "secrets: verified download"
"$VCPCTL" secrets get "$ID"
"$VCPCTL" secrets list --filter demo=yes

step "program: add two secrets into a new secret (examples/add_two_secrets.mpc)"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=$("$VCPCTL" secrets create 1234)
B=$("$VCPCTL" secrets create -- -34)
SUM=$("$VCPCTL" run "$ROOT/examples/add_two_secrets.mpc" --input "$A" --input "$B" --stats)
echo "result secret: $SUM"
"$VCPCTL" secrets get "$SUM"
