#!/usr/bin/env bash
# A short demonstration against a running local VC (VCPCTL_VC must be set).
# Called by scripts/run_local_vc.sh --demo; usage: demo.sh PATH/TO/vcpctl
set -euo pipefail
VCPCTL=${1:-vcpctl}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "status of every VCP"
"$VCPCTL" status
