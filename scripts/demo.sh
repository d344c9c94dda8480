#!/usr/bin/env bash
# A short demonstration against a running local VC (VCPCTL_VC must be set).
# Called by scripts/run_local_vc.sh --demo; usage: demo.sh PATH/TO/vcpctl
set -euo pipefail
VCPCTL=${1:-vcpctl}
step() { printf '\n== %s\n' "$*"; }

step "status of every VCP"
"$VCPCTL" status

step "tuples: generate input masks and multiplication triples (dealer: development only)"
"$VCPCTL" tuples generate mask 10000
"$VCPCTL" tuples generate triple 10000
"$VCPCTL" tuples stock

step "secrets: verified upload of three integers"
ID=$("$VCPCTL" secrets create --tag demo=yes -- 17 -4 1000000)
echo "secret id: $ID"

step "secrets: verified download"
"$VCPCTL" secrets get "$ID"
"$VCPCTL" secrets list --filter demo=yes
