#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 300 seconds each; `fuzz/run.sh 600`
# or `fuzz/run.sh 60 ews_xml`), with corpora seeded from ../shared/fixtures and the
# examples. Not part of CI's time budget. cargo fuzz asks for nightly-only flags; on
# this stable toolchain RUSTC_BOOTSTRAP=1 allows them. Findings land in
# fuzz/artifacts/<target>/; each one fixed gets a regression test in its crate.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-300}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(ews_xml graph_json ics_import rules_toml notification_bodies)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${KALSYNC_FUZZ_TARGET_DIR:-$HOME/.cache/kalsync-fuzz-target}"
export RUSTC_BOOTSTRAP=1
shared=../../shared/fixtures
[ -d "$shared" ] || echo "note: $shared is missing; the corpora start from the examples only" >&2
seed() {
  local target=$1
  shift
  mkdir -p "corpus/$target"
  for f in "$@"; do
    if [ -f "$f" ]; then cp "$f" "corpus/$target/"; fi
  done
}
seed ews_xml "$shared"/ews/responses/* "$shared"/ews/errors/* "$shared"/ews/notifications/*
seed graph_json "$shared"/graph/*.json
seed ics_import "$shared"/ics/*.ics ../examples/*.ics
seed rules_toml ../examples/rules/*.toml
seed notification_bodies "$shared"/graph/lifecycle_*.json "$shared"/graph/notification_*.json \
  "$shared"/ews/notifications/*.xml
status=0
for t in "${targets[@]}"; do
  echo "== $t for ${seconds} s"
  if ! cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
      | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|artifact_prefix|Test unit written)"; then
    status=1
  fi
    if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/timeout-*" >/dev/null \
      || compgen -G "artifacts/$t/oom-*" >/dev/null; then
    echo "!! $t found: $(ls "artifacts/$t")"
    status=1
  fi
done
exit "$status"
