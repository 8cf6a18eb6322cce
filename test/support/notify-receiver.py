#!/usr/bin/env python3
# A stand-in for systemd's end of the notification socket (sd_notify), for tests: PID 1 is not
# systemd here. Binds a datagram socket at PATH and prints one JSON line per message on stdout:
# {"t": monotonic seconds, "pid": sender pid from SCM_CREDENTIALS, "fds": n, "fields": {...}}.
# File descriptors passed along (systemd-notify's BARRIER=1) are closed at once, as systemd does
# once it has processed the messages before them, so that the sender's barrier completes.
# usage: notify-receiver.py PATH
import json
import os
import socket
import struct
import sys
import time

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o600)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"bound": path}), flush=True)
CMSG = socket.CMSG_SPACE(struct.calcsize("iII")) + socket.CMSG_SPACE(16 * struct.calcsize("i"))
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, CMSG)
    pid = None
    fds = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[: struct.calcsize("iII")])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(payload) // struct.calcsize("i")
            fds.extend(struct.unpack("%di" % n, payload[: n * struct.calcsize("i")]))
    for fd in fds:
        os.close(fd)
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    print(json.dumps({"t": time.monotonic(), "pid": pid, "fds": len(fds), "fields": fields}), flush=True)
