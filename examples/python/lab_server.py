#!/usr/bin/env python3
"""The lab's asyncio server, written to keep the workspace's contract.

One event loop, one task per connection, non-blocking sockets driven with
`loop.sock_recv` and `loop.sock_sendall` (the lecture's select loop, with
asyncio doing the waiting). Three modes:

  --mode http   the fake-DB page: GET / waits --db-latency, then the lab's page
  --mode files  the static-file assignment: serves --root
  --mode echo   every byte back

Check it with the workspace's checker (see the book's "Your own server"):

  cargo run --release --bin check -- --mode http,echo,files --shape unlimited \\
      --exe examples/python/lab_server.py

Standard library only (Python 3.11 or newer, for asyncio.TaskGroup).
"""

import argparse
import asyncio
import email.utils
import os
import re
import resource
import signal
import socket
import stat
import sys
import time
import urllib.parse

PAGE = b"<html><head><title>Success</title></head><body>Index page</body></html>"
MAX_HEAD = 8 * 1024
MAX_HEADERS = 64
MAX_BODY = 1024 * 1024
CHUNK = 64 * 1024
# How long a SIGTERM waits for requests in flight.
GRACE = 5.0
TYPES = {
    ".html": "text/html", ".htm": "text/html", ".css": "text/css",
    ".js": "application/javascript", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".png": "image/png", ".gif": "image/gif", ".txt": "text/plain",
    ".swf": "application/x-shockwave-flash",
}


def duration(text):
    """`300ms`, `2s` -> seconds. A bare number is refused: which unit?"""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 300ms or 2s")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


class HttpError(Exception):
    """A request the server refuses: answered with `status`, then closed."""

    def __init__(self, status, reason, close=True):
        super().__init__(reason)
        self.status, self.reason, self.close = status, reason, close


class Request:
    def __init__(self, method, target, version, headers):
        self.method, self.target, self.version = method, target, version
        self.headers = headers  # [(lower-case name, value)]

    def all(self, name):
        return [value for key, value in self.headers if key == name]

    def keep_alive(self):
        tokens = ",".join(self.all("connection")).lower()
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


class Connection:
    """One client: its socket and the bytes received but not yet used."""

    def __init__(self, server, sock):
        self.server, self.sock = server, sock
        self.buffer = bytearray()
        self.busy = False  # a request is being answered (SIGTERM waits for it)
        self.method = None  # of the request being read: an error to HEAD has no body

    async def receive(self, timeout):
        """Appends what arrives within `timeout` seconds; False on EOF."""
        data = await asyncio.wait_for(self.server.loop.sock_recv(self.sock, CHUNK), timeout)
        self.server.debug(f"recv {len(data)} bytes")
        self.buffer += data
        return bool(data)

    async def send(self, data):
        # sock_sendall waits until every byte is out: while it waits we do
        # not read, so a client that does not read is not read from either.
        # A client that takes nothing for an idle timeout is given up.
        await asyncio.wait_for(
            self.server.loop.sock_sendall(self.sock, data), self.server.idle_timeout)


class LabServer:
    connection_class = Connection

    def __init__(self, args):
        self.args = args
        self.idle_timeout = args.idle_timeout
        self.name = os.path.basename(sys.argv[0])
        self.stopping = False
        self.connections = {}  # task -> Connection

    def debug(self, message):
        if self.args.log == "debug":
            print(f"pid={os.getpid()} {message}", file=sys.stderr, flush=True)

    # ---- accepting -------------------------------------------------------

    def listen(self):
        host, _, port = self.args.addr.rpartition(":")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, int(port)))
        except OSError as error:
            print(f"error: cannot listen on {self.args.addr}: {error.strerror}",
                  file=sys.stderr)
            sys.exit(1)
        listener.listen(self.args.backlog)
        listener.setblocking(False)
        return listener

    async def run(self):
        self.loop = asyncio.get_running_loop()
        listener = self.listen()
        host, port = listener.getsockname()
        print(f"listening on {host}:{port} model={self.name} mode={self.args.mode} "
              f"pid={os.getpid()}", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, stop.set)
        # A TaskGroup owns every connection's task: an exception that a task
        # lets escape would end the whole group, so serve_connection must
        # catch what a client can cause.
        async with asyncio.TaskGroup() as group:
            accepter = group.create_task(self.accept_forever(listener, group))
            await stop.wait()
            self.stopping = True
            accepter.cancel()
            listener.close()
            for task, connection in list(self.connections.items()):
                if not connection.busy:
                    task.cancel()
            busy = list(self.connections)
            if busy:
                await asyncio.wait(busy, timeout=GRACE)
            for task in self.connections:
                task.cancel()

    async def accept_forever(self, listener, group):
        while True:
            try:
                sock, _ = await self.loop.sock_accept(listener)
            except OSError as error:  # EMFILE: back off rather than spin
                print(f"accept failed: {error}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.05)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = self.connection_class(self, sock)
            task = group.create_task(self.serve_connection(connection))
            self.connections[task] = connection
            task.add_done_callback(self.connections.pop)

    async def serve_connection(self, connection):
        try:
            if self.args.mode == "echo":
                await self.echo(connection)
            else:
                await self.http(connection)
        except (OSError, asyncio.TimeoutError) as error:
            # A reset, a vanished client, a client that never reads: this
            # connection ends, the server goes on.
            self.debug(f"connection ended: {error!r}")
        finally:
            connection.sock.close()

    # ---- echo ------------------------------------------------------------

    async def echo(self, connection):
        while await connection.receive(self.idle_timeout):
            data = bytes(connection.buffer)
            connection.buffer.clear()
            await connection.send(data)
        # EOF: everything received was sent back; close.

    # ---- HTTP ------------------------------------------------------------

    async def http(self, connection):
        while not self.stopping:
            try:
                request = await self.read_request(connection)
                if request is None:
                    return  # EOF or idle between requests: a silent close
                connection.busy = True
                keep_alive = await self.answer(connection, request)
                connection.busy = False
            except HttpError as error:
                await self.refuse(connection, error, head_only=connection.method == "HEAD")
                return
            if not keep_alive:
                return

    async def read_request(self, connection):
        """Reads a whole request (head and body) and returns it; None if
        the client closes or stays silent between requests."""
        # Blank lines before a request line are not a request.
        while True:
            while connection.buffer[:2] == b"\r\n":
                del connection.buffer[:2]
            if connection.buffer and connection.buffer != b"\r":
                break
            try:
                if not await connection.receive(self.idle_timeout):
                    return None
            except asyncio.TimeoutError:
                return None
        # The request's first byte is here: all of it must arrive within
        # the idle timeout from now, however slowly it trickles (slowloris).
        deadline = time.monotonic() + self.idle_timeout
        while (end := connection.buffer.find(b"\r\n\r\n")) < 0:
            if len(connection.buffer) > MAX_HEAD:
                raise HttpError(431, "Request Header Fields Too Large")
            await self.receive_by(connection, deadline)
        if end > MAX_HEAD:
            raise HttpError(431, "Request Header Fields Too Large")
        head = bytes(connection.buffer[:end])
        del connection.buffer[:end + 4]
        connection.method = None
        request = self.parse_head(head)
        connection.method = request.method
        await self.skip_body(connection, request, deadline)
        return request

    async def receive_by(self, connection, deadline):
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            if not await connection.receive(remaining):
                raise HttpError(400, "Bad Request: the request ended early")
        except asyncio.TimeoutError:
            raise HttpError(408, "Request Timeout") from None

    def parse_head(self, head):
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[0].isalpha():
            raise HttpError(400, "Bad Request: malformed request line")
        if len(lines) - 1 > MAX_HEADERS:
            raise HttpError(431, "Request Header Fields Too Large")
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or " " in name:
                raise HttpError(400, "Bad Request: malformed header")
            headers.append((name.lower(), value.strip()))
        request = Request(parts[0], parts[1], parts[2], headers)
        hosts = request.all("host")
        if request.version == "HTTP/1.1" and (
                len(hosts) != 1 or not re.fullmatch(r"[A-Za-z0-9.:\[\]_-]+", hosts[0])):
            raise HttpError(400, "Bad Request: HTTP/1.1 needs exactly one valid Host")
        return request

    async def skip_body(self, connection, request, deadline):
        """Reads the body and throws it away, so the next request starts
        where this one ends."""
        codings = [c.strip().lower() for c in ",".join(request.all("transfer-encoding")).split(",")
                   if c.strip()]
        lengths = request.all("content-length")
        if codings:
            if lengths or request.version == "HTTP/1.0" or "chunked" in codings[:-1]:
                raise HttpError(400, "Bad Request: ambiguous body framing")
            if codings != ["chunked"]:
                raise HttpError(501, "Not Implemented: unknown transfer coding")
            await self.skip_chunked(connection, deadline)
            return
        if len(set(lengths)) > 1 or (lengths and not lengths[0].isdigit()):
            raise HttpError(400, "Bad Request: bad Content-Length")
        length = int(lengths[0]) if lengths else 0
        if length > MAX_BODY:
            raise HttpError(413, "Content Too Large")
        while len(connection.buffer) < length:
            await self.receive_by(connection, deadline)
        del connection.buffer[:length]

    async def skip_chunked(self, connection, deadline):
        total = 0
        while True:
            line = await self.read_line(connection, deadline)
            size = line.split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size):
                raise HttpError(400, "Bad Request: bad chunk size")
            size = int(size, 16)
            total += size
            if total > MAX_BODY:
                raise HttpError(413, "Content Too Large")
            if size == 0:
                while await self.read_line(connection, deadline):
                    pass  # trailer fields, up to the empty line
                return
            while len(connection.buffer) < size + 2:
                await self.receive_by(connection, deadline)
            if connection.buffer[size:size + 2] != b"\r\n":
                raise HttpError(400, "Bad Request: bad chunk end")
            del connection.buffer[:size + 2]

    async def read_line(self, connection, deadline):
        while (end := connection.buffer.find(b"\r\n")) < 0:
            if len(connection.buffer) > MAX_HEAD:
                raise HttpError(400, "Bad Request: line too long")
            await self.receive_by(connection, deadline)
        line = bytes(connection.buffer[:end])
        del connection.buffer[:end + 2]
        return line

    def head(self, status, reason, headers, keep_alive, length, version="HTTP/1.1"):
        lines = [f"HTTP/1.1 {status} {reason}",
                 f"Server: {self.name}",
                 f"Date: {email.utils.formatdate(usegmt=True)}",
                 f"X-Worker: pid={os.getpid()} thread=event-loop",
                 f"Content-Length: {length}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if not keep_alive:
            lines.append("Connection: close")
        elif version == "HTTP/1.0" or self.args.mode == "files":
            lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def refuse(self, connection, error, head_only):
        body = f"{error.status} {error.reason}\n".encode()
        reason = error.reason.split(":")[0]
        await connection.send(
            self.head(error.status, reason, [("Content-Type", "text/plain")], False, len(body))
            + (b"" if head_only else body))
        # Lingering close: stop sending, then read what the client still
        # sends for a moment, so the kernel does not answer it with a
        # reset that could destroy our response before it is read.
        try:
            connection.sock.shutdown(socket.SHUT_WR)
            while await connection.receive(2.0):
                connection.buffer.clear()
        except (OSError, asyncio.TimeoutError):
            pass

    def wants_keep_alive(self, request):
        return request.keep_alive()

    # ANCHOR: fake_db
    async def fake_db(self):
        # Awaited: the loop serves the other connections meanwhile.
        await asyncio.sleep(self.args.db_latency)
    # ANCHOR_END: fake_db

    async def answer(self, connection, request):
        """Sends the response; True if the connection stays open."""
        keep_alive = self.wants_keep_alive(request)
        head_only = request.method == "HEAD"
        path = request.target.split("?")[0]
        if self.args.mode == "http" and path != "/":
            body = b"404 Not Found\n"
            status, reason, headers = 404, "Not Found", [("Content-Type", "text/plain")]
        elif request.method not in ("GET", "HEAD"):
            body = b"405 Method Not Allowed\n"
            status, reason = 405, "Method Not Allowed"
            headers = [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")]
        elif self.args.mode == "files":
            return await self.send_file(connection, request, path, keep_alive)
        else:
            await self.fake_db()
            body = PAGE
            status, reason = 200, "OK"
            headers = [("Content-Type", "text/html; charset=utf-8")]
        keep_alive = keep_alive and not self.stopping
        await connection.send(
            self.head(status, reason, headers, keep_alive, len(body), request.version)
            + (b"" if head_only else body))
        return keep_alive

    # ---- files -----------------------------------------------------------

    def resolve(self, path):
        """URL path -> (status, file system path or None)."""
        if re.search(r"%(?![0-9A-Fa-f]{2})", path):
            return 400, None
        decoded = urllib.parse.unquote_to_bytes(path)
        if b"\0" in decoded:
            return 400, None
        try:
            relative = decoded.decode("utf-8").lstrip("/")
        except UnicodeDecodeError:
            return 400, None
        root = os.path.realpath(self.args.root)
        full = os.path.realpath(os.path.join(root, relative))
        if not self.inside(root, full):
            return 403, None
        return 200, full

    @staticmethod
    def stat_of(full):
        """(status, st_mode): stat(2) refused is 403, absent is 404."""
        try:
            return 200, os.stat(full).st_mode
        except PermissionError:
            return 403, None
        except OSError:  # ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP
            return 404, None

    def inside(self, root, full):
        # realpath has resolved `..` and symlinks: what is left must still
        # be under the root.
        return full == root or full.startswith(root + os.sep)

    async def send_file(self, connection, request, path, keep_alive):
        status, full = self.resolve(path)
        headers = [("Content-Type", "text/plain")]
        # os.path.isfile would say False for a file behind a directory we may
        # not search (EACCES): that is a refusal (403), not an absence (404).
        mode = None
        if status == 200:
            status, mode = self.stat_of(full)
        if status == 200 and stat.S_ISDIR(mode):
            index_status, index_mode = self.stat_of(os.path.join(full, "index.html"))
            if not path.endswith("/"):
                status, headers = 301, headers + [("Location", path + "/")]
            elif index_status == 200 and stat.S_ISREG(index_mode):
                full = os.path.join(full, "index.html")
            else:
                status = 403
        elif status == 200 and (path.endswith("/") or not stat.S_ISREG(mode)):
            status = 404
        try:
            file = open(full, "rb") if status == 200 else None
        except OSError:
            file, status = None, 403
        keep_alive = keep_alive and status != 400 and not self.stopping
        if file is None:
            reasons = {301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden",
                       404: "Not Found"}
            body = f"{status} {reasons[status]}\n".encode()
            await connection.send(self.head(status, reasons[status], headers, keep_alive,
                                             len(body)) + (b"" if request.method == "HEAD" else body))
            return keep_alive
        with file:
            length = os.fstat(file.fileno()).st_size
            kind = TYPES.get(os.path.splitext(full)[1].lower(), "application/octet-stream")
            await connection.send(self.head(200, "OK", [("Content-Type", kind)], keep_alive, length))
            if request.method == "HEAD":
                return keep_alive
            # Streamed a chunk at a time: memory stays flat for any size.
            # (A read from disk blocks the loop for a moment; the book's
            # files chapter says when that matters.)
            sent = 0
            while sent < length:
                chunk = file.read(min(CHUNK, length - sent))
                if not chunk:
                    print(f"{path} could not be sent whole: the file shrank after "
                          f"{sent} of {length} bytes; closing the connection",
                          file=sys.stderr, flush=True)
                    return False
                await connection.send(chunk)
                sent += len(chunk)
        return keep_alive


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="The lab's asyncio server, keeping the workspace's contract.")
    parser.add_argument("--version", action="version", version="lab_server 1.0")
    parser.add_argument("--addr", default="127.0.0.1:9090", help="where to listen (port 0: any)")
    parser.add_argument("--mode", choices=["http", "files", "echo"], default="echo")
    parser.add_argument("--root", default=".", help="files mode: the document root")
    parser.add_argument("--db-latency", type=duration, default=0.3,
                        help="http mode: the fake DB's wait per request (e.g. 300ms)")
    parser.add_argument("--idle-timeout", type=duration, default=10.0,
                        help="close a connection silent this long (e.g. 10s)")
    parser.add_argument("--log", choices=["error", "warn", "info", "debug"], default="info",
                        help="debug: log every recv")
    parser.add_argument("--backlog", type=int, default=4096, help="listen queue length")
    args = parser.parse_args(argv)
    if args.mode == "files" and not (os.path.isdir(args.root) and os.access(args.root, os.R_OK)):
        print(f"error: --root {args.root}: not a readable directory", file=sys.stderr)
        sys.exit(2)
    return args


def main(server_class=LabServer):
    args = parse_args()
    # Many connections need many descriptors: take what the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(server_class(args).run())


if __name__ == "__main__":
    main()
