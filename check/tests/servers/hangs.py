#!/usr/bin/env python3
"""Broken on purpose: says it listens, accepts, and never answers. For the
checker's own tests: a check against it must end at its deadline, and no
run may leave it behind. Writes its pid to $HANGS_PID_FILE, then waits
$HANGS_START_DELAY seconds (default 0) before its start-up line."""

import os
import socket
import time

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
host, port = listener.getsockname()
if "HANGS_PID_FILE" in os.environ:
    with open(os.environ["HANGS_PID_FILE"] + ".part", "w") as file:
        file.write(str(os.getpid()))
    os.rename(os.environ["HANGS_PID_FILE"] + ".part", os.environ["HANGS_PID_FILE"])
time.sleep(float(os.environ.get("HANGS_START_DELAY", "0")))
print(f"listening on {host}:{port} model=hangs mode=any pid={os.getpid()}", flush=True)
connections = []
while True:
    connection, _ = listener.accept()
    connections.append(connection)  # kept open, never read, never answered
    time.sleep(0)
