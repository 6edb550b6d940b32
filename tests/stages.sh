#!/usr/bin/env bash
# Run make targets one after another, timing each; print a table of stage times and the total at the
# end, also when a stage fails (then exit with its status). `make test` and `make molecule-all` use it,
# so CI's log always ends with where the time went.
#
# A stage written `background:<a>,<b>,...` starts the targets a, b, ... one after another in a background lane
# and goes straight on to the next stage. Why: the molecule scenarios leave much of this 2-core machine idle
# (containers waiting on health checks, timed load phases, cooldowns), and the lint, sanity and unit stages only
# need CPU. The lane runs at the lowest CPU and I/O priority (SCHED_IDLE, nice 19, ionice idle), so it takes only
# what the scenarios leave: their containers and controllers preempt it whenever they want the CPU. Its output goes to
# .cache/stage-logs/background.log and is printed once the foreground stages end; its stages are in the table
# like the others, and a failure there fails the run. The whole run waits for it.
set -uo pipefail
declare -a names=() secs=()
start_all=$(date +%s)
logdir=${FEDIOPS_STAGE_LOGDIR:-$PWD/.cache/stage-logs}
bg_pid="" bg_stages="" bg_t0=0

report() {
  local status=$1 total=$(( $(date +%s) - start_all ))
  echo
  echo "=== stage times ($(date -u +%FT%TZ)) ==="
  for i in "${!names[@]}"; do printf '  %-28s %5d s  %3d min %02d s\n' "${names[i]}" "${secs[i]}" $(( secs[i] / 60 )) $(( secs[i] % 60 )); done
  printf '  %-28s %5d s  %3d min %02d s  (%s)\n' "total" "$total" $(( total / 60 )) $(( total % 60 )) "$status"
}

# Wait for the background lane, print its log, and add its stages (from its results file) to the table.
# Returns its exit status.
finish_background() {
  [ -n "$bg_pid" ] || return 0
  local rc name sec
  echo "=== waiting for the background lane ($bg_stages) ==="
  wait "$bg_pid"; rc=$?
  echo "=== background lane log ($logdir/background.log) ==="
  cat "$logdir/background.log"
  echo "=== end of the background lane log ==="
  while read -r name sec; do names+=("$name (background)"); secs+=("$sec"); done <"$logdir/background.results"
  names+=("background lane (its wall)"); secs+=("$(cat "$logdir/background.results.wall" 2>/dev/null || echo $(( $(date +%s) - bg_t0 )))")
  bg_pid=""
  return "$rc"
}

# Run one stage in this shell; with $1 = --results FILE, append "<stage> <seconds>" to FILE as well.
run_stage() {
  local stage=$1 t0 rc
  echo "=== stage $stage ==="
  t0=$(date +%s)
  # A stage is a make target, or molecule:<scenario> for one scenario.
  case $stage in
    molecule:*) molecule test -s "${stage#molecule:}"; rc=$? ;;
    *) make --no-print-directory "$stage"; rc=$? ;;
  esac
  last_secs=$(( $(date +%s) - t0 ))
  return "$rc"
}

# The background lane itself (this script run again as `--lane FILE stage...`): stages in order, each
# line "<stage> <seconds>" to FILE, stop at the first failure.
if [ "${1:-}" = "--lane" ]; then
  results=$2; shift 2
  : >"$results"
  lane_t0=$(date +%s)
  for stage in "$@"; do
    run_stage "$stage"; rc=$?
    echo "$stage $last_secs" >>"$results"
    if [ "$rc" -ne 0 ]; then echo "=== background stage $stage FAILED, rc $rc ==="; break; fi
  done
  # The lane's own wall time (it usually ends long before the foreground stages).
  echo "$(( $(date +%s) - lane_t0 ))" >"$results.wall"
  exit "$rc"
fi

for stage in "$@"; do
  case $stage in
    background:*)
      bg_stages=${stage#background:}
      mkdir -p "$logdir"
      echo "=== background lane: ${bg_stages//,/ } (SCHED_IDLE, nice 19, ionice idle; log $logdir/background.log) ==="
      bg_t0=$(date +%s)
      # shellcheck disable=SC2046
      chrt --idle 0 nice -n 19 ionice -c 3 bash "$0" --lane "$logdir/background.results" $(tr ',' ' ' <<<"$bg_stages") \
        >"$logdir/background.log" 2>&1 </dev/null &
      bg_pid=$!
      continue ;;
  esac
  run_stage "$stage"; rc=$?
  names+=("$stage"); secs+=("$last_secs")
  if [ "$rc" -ne 0 ]; then
    finish_background
    report "FAILED at $stage, rc $rc"; exit "$rc"
  fi
done
if ! finish_background; then
  report "FAILED in the background lane (see its log above)"; exit 1
fi
report "passed"
