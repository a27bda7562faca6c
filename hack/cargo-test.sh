#!/usr/bin/env bash
# Runs `cargo test --no-fail-fast` with the given arguments, so that one
# failing test binary never hides the ones after it, keeps the whole output
# in target/test-output.log, and ends with one summary line across the
# workspace: tests passed, failed and ignored, and which failed. The exit
# status is cargo's: non-zero on any failure.
#
#   hack/cargo-test.sh --workspace
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
log="${CARGO_TARGET_DIR:-target}/test-output.log"
mkdir -p "$(dirname "$log")"
started=$(date +%s)

"${CARGO:-cargo}" test --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# cargo prints `Running tests/x.rs (…)` / `Doc-tests x` before each binary,
# `test NAME ... FAILED` per failed test, `test result: …` per binary that
# ran to the end, and `error: N targets failed:` with one `--test x` line
# each when a binary failed (a crash before `test result` shows only there).
awk -v status="$status" -v secs="$(( $(date +%s) - started ))" '
  /^ +Running / { binaries++; bin = $2 }
  /^ +Doc-tests / { binaries++; bin = "doc-tests " $2 }
  /^test .* \.\.\. FAILED$/ { failed_names = failed_names "\n  " bin ": " $2 }
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      n = $(i - 1) + 0
      if ($i ~ /^passed;?$/) passed += n
      else if ($i ~ /^failed;?$/) failed += n
      else if ($i ~ /^ignored;?$/) ignored += n
    }
    finished++
  }
  /^error: [0-9]+ targets? failed:/ { in_targets = 1; next }
  in_targets && /^ +`/ { t = $0; gsub(/^ +|`/, "", t); targets = targets " [" t "]"; next }
  { in_targets = 0 }
  END {
    line = sprintf("test summary: %d passed, %d failed, %d ignored in %d test binaries (%d ran to the end), %d s",
      passed, failed, ignored, binaries, finished, secs)
    if (targets != "") line = line "; failed binaries:" targets
    print ""
    print line
    if (failed_names != "") print "failed tests:" failed_names
    if (status != 0 && failed == 0 && targets == "") print "cargo exited with " status " before any test failed (a build error?)"
  }
' "$log"
exit "$status"
