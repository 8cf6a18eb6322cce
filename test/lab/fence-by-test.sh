#!/bin/sh
# Lab helper: a fence agent that the test answers. Like a fence-agents agent it takes no
# arguments and reads key=value lines on standard input; `dir=DIR` (a param in haoscar.yaml)
# says where to talk to the test. It keeps what it was sent in DIR/fence-request, then waits
# until the test has powered the victim off and created DIR/fence-done (exit 0: fenced), or
# created DIR/fence-failed (exit 1), for at most 120 s.
set -u
input=$(cat)
dir=$(printf '%s\n' "$input" | sed -n 's/^dir=//p' | tail -n 1)
[ -d "$dir" ] || { echo "no dir= line naming a directory on stdin" >&2; exit 1; }
printf '%s\n' "$input" > "$dir/fence-request.tmp" && mv "$dir/fence-request.tmp" "$dir/fence-request"
i=0
while [ $i -lt 1200 ]; do
  if [ -e "$dir/fence-done" ]; then echo "powered off by the test"; exit 0; fi
  if [ -e "$dir/fence-failed" ]; then echo "the test failed the fence" >&2; exit 1; fi
  sleep 0.1
  i=$((i + 1))
done
echo "no answer from the test" >&2
exit 1
