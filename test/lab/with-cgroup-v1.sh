#!/bin/sh
# Lab helper for slurmd (test/lab/slurm-head.ts): `ip netns exec` gives the command a fresh /sys
# without /sys/fs/cgroup, and Slurm 22.05's slurmd does not start without a cgroup hierarchy it
# knows, even with proctrack/linuxproc and task/none. This mounts, in the command's own mount
# namespace, what its cgroup/v1 plugin looks for (a tmpfs with the named `systemd` hierarchy,
# no controllers: nothing is limited); the cgroup/v2 plugin would refuse a machine with v1
# hierarchies ("Hybrid mode is not supported"). Then runs the command.
# usage: with-cgroup-v1.sh COMMAND [ARGS...]
set -eu
mount -t tmpfs cgroup /sys/fs/cgroup
mkdir /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
exec "$@"
