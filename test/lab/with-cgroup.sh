#!/bin/sh
# Lab helper: `ip netns exec` gives the command a mount namespace of its own with a fresh /sys,
# in which the cgroup hierarchy is not mounted; a real node has it at /sys/fs/cgroup. This
# mounts cgroup v2 there (in that private namespace only, the machine's one hierarchy) so the
# agent puts its process services in cgroups as it would on a node, then runs the command.
# usage: with-cgroup.sh COMMAND [ARGS...]
set -eu
if ! grep -q ' /sys/fs/cgroup .* - cgroup2 ' /proc/self/mountinfo 2>/dev/null && [ -d /sys/fs/cgroup ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "with-cgroup.sh: could not mount cgroup2 on /sys/fs/cgroup; running without" >&2
fi
exec "$@"
