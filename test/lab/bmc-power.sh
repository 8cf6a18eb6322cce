#!/bin/sh
# Lab helper: the "power" of a lab host, run by its simulated BMC (ipmi_sim's startcmd, see
# ipmi-bmc.ts). ipmi_sim counts the host as powered on while this process lives; an IPMI power
# off (fence_ipmilan -o off) makes it send SIGTERM, and then this script does to the host what
# losing power does: its link goes down and every process in its namespace is SIGKILLed (the
# lab's own observers, listed in KEEP, excepted), as NetLab.killHost() does. It notes when the
# link went down and when the last process was gone (DIR/link-down-at, DIR/powered-off-at, in
# ms since the epoch), then exits, which ipmi_sim reports as power off.
# Usage: bmc-power.sh NAMESPACE DIR KEEP
set -u
ns=$1; dir=$2; keep=$3
parent=$PPID
power_off() {
  ip -n "$ns" link set eth0 down
  date +%s%3N > "$dir/link-down-at"
  round=0
  while [ $round -lt 50 ]; do
    pids=$(ip netns pids "$ns" | grep -vxF -f "$keep")
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086 # one argument per pid
    kill -9 $pids 2>/dev/null
    sleep 0.01
    round=$((round + 1))
  done
  date +%s%3N > "$dir/powered-off-at"
  exit 0
}
trap power_off TERM
date +%s%3N > "$dir/powered-on-at"
# Ends with its simulator (the test's cleanup): a powered host without a BMC is not a thing here.
while kill -0 "$parent" 2>/dev/null; do sleep 0.1; done
