#!/usr/bin/env bash
# Criterion benches (ALB builder+planner, DNS planner) of two commits, optimised
# (--profile bench), one after the other, sharing one target directory outside the
# checkout so the dependencies build once. Run it on an otherwise idle machine.
#   hack/bench-compare.sh <before-rev> [<after-rev>]    (after defaults to HEAD)
set -euo pipefail
before=$1; after=${2:-HEAD}
repo=$(git rev-parse --show-toplevel)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/causeway/bench-target}
for rev in "$before" "$after"; do
  wt=$(mktemp -d)
  git -C "$repo" worktree add -f --detach "$wt" "$rev" >/dev/null
  (
    cd "$wt"
    feat=""; grep -q '^testing = ' Cargo.toml && feat="--features testing"
    echo "# $rev ($(git rev-parse --short HEAD))"
    cargo bench --bench alb $feat -- --noplot 2>/dev/null | grep -E "^alb|time:"
    cargo bench --bench dns_plan -- --noplot 2>/dev/null | grep -E "^plan|time:"
  )
  git -C "$repo" worktree remove --force "$wt"
done
