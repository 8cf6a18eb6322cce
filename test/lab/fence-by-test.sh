#!/bin/sh
# Lab helper: a fence agent that the test answers. Like a fence-agents agent it takes no
# arguments and reads key=value lines on standard input; `dir=DIR` (a param in haoscar.yaml)
# says where to talk to the test. It keeps what it was sent in DIR/fence-request, then waits
# until the test has powered the victim off and created DIR/fence-done (exit 0: fenced), or
# created DIR/fence-failed (exit 1), for at most 120 s.
# Like fence-agents' fencing.py it describes itself with `-o metadata` and checks its
# parameters with action=validate-all (the agent checks both at start: src/config/fence-check.ts).
set -u
if [ "$#" -eq 2 ] && [ "$1" = "-o" ] && [ "$2" = "metadata" ]; then
  cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence-by-test.sh" shortdesc="Lab fence agent answered by the test" >
<parameters>
	<parameter name="action" unique="0" required="1"><content type="string" default="off" /></parameter>
	<parameter name="dir" unique="0" required="1"><content type="string" /></parameter>
	<parameter name="port" unique="0" required="0"><content type="string" /></parameter>
</parameters>
<actions>
	<action name="off" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
XML
  exit 0
fi
input=$(cat)
dir=$(printf '%s\n' "$input" | sed -n 's/^dir=//p' | tail -n 1)
[ -d "$dir" ] || { echo "no dir= line naming a directory on stdin" >&2; exit 1; }
if printf '%s\n' "$input" | grep -qx 'action=validate-all'; then exit 0; fi
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
