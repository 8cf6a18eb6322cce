#!/bin/sh
# Lab helper: a `command` resource whose stop can be made to fail on one host, as a database's
# stop script fails when the database will not go down. The hosts share the filesystem, so its
# state is in DIR, one file per network namespace (`ip netns identify`):
#   running-NS     it runs on that host (start creates it, a successful stop removes it)
#   stop-fails-NS  stop exits 1 on that host and leaves it running
#   calls          one line per start or stop: `start NS`, `stop NS`, `stop-failed NS`
# usage: stubborn-resource.sh start|stop|monitor DIR
set -u
[ $# -eq 2 ] || { echo "usage: stubborn-resource.sh start|stop|monitor DIR" >&2; exit 2; }
dir=$2
ns=$(ip netns identify) && [ -n "$ns" ] || { echo "not in a named network namespace" >&2; exit 1; }
case $1 in
  start)
    echo "start $ns" >> "$dir/calls"
    : > "$dir/running-$ns" ;;
  stop)
    if [ -e "$dir/stop-fails-$ns" ]; then
      echo "stop-failed $ns" >> "$dir/calls"
      echo "scripted: will not stop on $ns" >&2
      exit 1
    fi
    echo "stop $ns" >> "$dir/calls"
    rm -f "$dir/running-$ns" ;;
  monitor)
    [ -e "$dir/running-$ns" ] || { echo "not running on $ns"; exit 7; } ;;
  *) echo "usage: stubborn-resource.sh start|stop|monitor DIR" >&2; exit 2 ;;
esac
