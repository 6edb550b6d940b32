#!/usr/bin/env bash
# Run make targets one after another, timing each; print a table of stage times and the total at the
# end, also when a stage fails (then exit with its status). `make test` and `make molecule-all` use it,
# so CI's log always ends with where the time went.
set -uo pipefail
declare -a names=() secs=()
start_all=$(date +%s)
report() {
  local status=$1 total=$(( $(date +%s) - start_all ))
  echo
  echo "=== stage times ($(date -u +%FT%TZ)) ==="
  for i in "${!names[@]}"; do printf '  %-28s %5d s  %3d min %02d s\n' "${names[i]}" "${secs[i]}" $(( secs[i] / 60 )) $(( secs[i] % 60 )); done
  printf '  %-28s %5d s  %3d min %02d s  (%s)\n' "total" "$total" $(( total / 60 )) $(( total % 60 )) "$status"
}
for stage in "$@"; do
  echo "=== stage $stage ==="
  t0=$(date +%s)
  # A stage is a make target, or molecule:<scenario> for one scenario.
  case $stage in
    molecule:*) molecule test -s "${stage#molecule:}"; rc=$? ;;
    *) make --no-print-directory "$stage"; rc=$? ;;
  esac
  names+=("$stage"); secs+=($(( $(date +%s) - t0 )))
  if [ "$rc" -ne 0 ]; then report "FAILED at $stage, rc $rc"; exit "$rc"; fi
done
report "passed"
