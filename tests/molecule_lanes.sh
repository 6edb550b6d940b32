#!/usr/bin/env bash
# Run molecule scenarios in concurrent lanes: `molecule_lanes.sh <lanes> <scenario>...`.
#
# Why: the scenarios are independent labs (each has its own container names and subnet, see
# molecule/<scenario>/inventory.yml), so on a machine with spare cores several run at once. On the 2-core
# machine this project is built on they are CPU-bound: two at once each ran about twice as slowly and the whole
# took longer, so the Makefile's default is one lane (the logs and the time table are the same). Every scenario
# still runs in full; nothing is skipped. The heaviest scenarios are dealt out first, each to the lane
# with the least work so far (weights below: rough minutes on a calm 2-core machine; update them from
# the table this script prints). A lane runs its scenarios one after another.
#
# Each scenario's output goes to <logdir>/<scenario>.log (the interleaved output of two labs would be
# unreadable); when a scenario ends its status and time are printed, its whole log when it failed. The
# end is a table of every scenario's time and status; the exit status is non-zero if any failed.
set -uo pipefail

lanes=$1; shift
scenarios=("$@")
logdir=${FEDIOPS_MOLECULE_LOGDIR:-$PWD/.cache/molecule-logs}
mkdir -p "$logdir"

declare -A weight=([fleet]=50)

# Deal the scenarios out: heaviest first, to the lane with the least weight.
mapfile -t ordered < <(for s in "${scenarios[@]}"; do echo "${weight[$s]:-5} $s"; done | sort -k1,1nr -k2 | awk '{print $2}')
declare -a lane_load lane_list
for ((i = 0; i < lanes; i++)); do lane_load[i]=0; lane_list[i]=""; done
for s in "${ordered[@]}"; do
  best=0
  for ((i = 1; i < lanes; i++)); do ((lane_load[i] < lane_load[best])) && best=$i; done
  lane_load[best]=$((lane_load[best] + ${weight[$s]:-5}))
  lane_list[best]="${lane_list[best]} $s"
done

run_lane() {
  local lane=$1; shift
  local s t0 rc
  for s in "$@"; do
    echo "=== lane $lane: molecule test -s $s (log $logdir/$s.log) ==="
    t0=$(date +%s)
    # Each scenario its own fact cache: two labs at once both have a host named db1.
    ANSIBLE_CACHE_PLUGIN_CONNECTION="$PWD/.cache/facts-$s" molecule test -s "$s" >"$logdir/$s.log" 2>&1
    rc=$?
    echo "$s $rc $(($(date +%s) - t0)) $lane" >>"$logdir/results"
    if ((rc != 0)); then
      echo "=== lane $lane: $s FAILED (rc $rc) after $(($(date +%s) - t0)) s; its log follows ==="
      cat "$logdir/$s.log"
      echo "=== end of $s's log ==="
    else
      echo "=== lane $lane: $s passed in $(($(date +%s) - t0)) s ==="
    fi
  done
}

: >"$logdir/results"
start=$(date +%s)
pids=()
for ((i = 0; i < lanes; i++)); do
  [ -n "${lane_list[i]}" ] || continue
  echo "=== lane $((i + 1)):${lane_list[i]} (weight ${lane_load[i]}) ==="
  # shellcheck disable=SC2086
  run_lane $((i + 1)) ${lane_list[i]} &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

echo
echo "=== molecule scenarios in $lanes lanes: $(($(date +%s) - start)) s wall ==="
failed=0
while read -r s rc secs lane; do
  printf '  %-16s lane %s  %5d s  %3d min %02d s  %s\n' "$s" "$lane" "$secs" $((secs / 60)) $((secs % 60)) \
    "$([ "$rc" = 0 ] && echo passed || echo "FAILED rc $rc")"
  [ "$rc" = 0 ] || failed=1
done <"$logdir/results"
ran=$(wc -l <"$logdir/results")
if ((ran != ${#scenarios[@]})); then echo "  only $ran of ${#scenarios[@]} scenarios reported a result"; failed=1; fi
exit $failed
