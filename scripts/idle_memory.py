"""Where an idle connection's memory goes, by kind of mapping.

Opens N connections to a running server (echo mode), waits until the last
one echoes (so every earlier one is accepted and waiting), and compares the
server's RSS and /proc/PID/smaps before and after. Mappings are grouped by
what they are in these servers: 2 MiB thread stacks (std's default size),
small fixed-size stacks (may's coroutines, --stack-size), the main heap,
and other anonymous memory (glibc's per-thread malloc arenas, 64 MiB each,
where a thread's buffers live). Used by scripts/idle-memory.sh.

    python3 scripts/idle_memory.py PID PORT N [STACK_KIB [CSV MODEL]]

With CSV and MODEL it also appends `MODEL.per_connection_bytes,B` and one
`MODEL.KIND_bytes,B` line per kind to CSV (scripts/lib.sh's `measured`).
"""

import collections
import re
import socket
import sys
import time

MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$")


DESCRIBED = {
    "main_heap": "main heap",
    "files": "files and other named",
    "thread_stacks": "thread stacks (2 MiB each)",
    "coroutine_stacks": "coroutine stacks ({stack_kib} KiB each)",
    "malloc_arenas": "other anonymous (malloc arenas)",
}


def by_kind(pid, stack_kib):
    """RSS bytes per kind of mapping."""
    kinds = collections.Counter()
    kind = "files"
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            mapping = MAPPING.match(line)
            if mapping:
                size_kib = (int(mapping[2], 16) - int(mapping[1], 16)) // 1024
                name = mapping[3].strip()
                if name == "[heap]":
                    kind = "main_heap"
                elif name:
                    kind = "files"
                elif size_kib in (2048, 2052):
                    kind = "thread_stacks"
                elif stack_kib and stack_kib <= size_kib <= stack_kib + 8:
                    kind = "coroutine_stacks"
                else:
                    kind = "malloc_arenas"
            elif line.startswith("Rss:"):
                kinds[kind] += int(line.split()[1]) * 1024
    return kinds


def echoes(connection, byte):
    connection.sendall(byte)
    return connection.recv(1) == byte


def main():
    pid, port, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    stack_kib = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    first = socket.create_connection(("127.0.0.1", port))
    if not echoes(first, b"a"):
        raise SystemExit("the server does not echo: start it with --mode echo")
    kinds_before = by_kind(pid, stack_kib)
    idle = []
    for index in range(count):
        idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        if index % 500 == 499:
            time.sleep(0.01)  # a connect pace the listen queue keeps up with
    # Accepts happen in order: once the last one echoes, all are served.
    if not echoes(idle[-1], b"b"):
        raise SystemExit("the last connection did not echo")
    kinds_after = by_kind(pid, stack_kib)
    # The total is the sum of the parts: VmRSS comes from counters the
    # kernel updates lazily, and once read 3.7 KiB per connection less
    # than the mappings' own Rss lines for 08.
    before, after = sum(kinds_before.values()), sum(kinds_after.values())
    each = (after - before) / count
    print(f"{count} idle connections: RSS {before // 1024} -> {after // 1024} KiB,"
          f" {each:.0f} B each")
    rows = [("per_connection", each)]
    for kind in sorted(kinds_after, key=lambda k: kinds_before[k] - kinds_after[k]):
        grown = (kinds_after[kind] - kinds_before[kind]) / count
        if abs(grown) >= 1:
            print(f"  {DESCRIBED[kind].format(stack_kib=stack_kib):34} {grown:7.0f} B each")
            rows.append((kind, grown))
    if len(sys.argv) > 6:
        with open(sys.argv[5], "a") as csv:
            for kind, grown in rows:
                csv.write(f"{sys.argv[6]}.{kind}_bytes,{grown:.0f}\n")


if __name__ == "__main__":
    main()
