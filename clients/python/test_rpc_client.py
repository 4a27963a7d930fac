"""Tests of rpc_client.py against a real server binary (standard library only).

    cargo build --bin 07-epoll
    cd clients/python && python3 -m unittest -v

RPC_SERVER=path/to/binary picks another model (default: target/debug/07-epoll,
found from this file's folder). Each test class starts the server once with
--mode rpc on a free port and kills it, by pid, when the class is done.
"""

import inspect
import os
import pydoc
import signal
import socket
import subprocess
import threading
import time
import unittest
from pathlib import Path

from rpc_client import ConnectionClosed, RemoteError, RPCClient

ROOT = Path(__file__).resolve().parents[2]
DB_LATENCY = 0.05


def server_binary():
    binary = os.environ.get("RPC_SERVER") or str(ROOT / "target" / "debug" / "07-epoll")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"no server binary {binary}: run `cargo build --bin 07-epoll` or set RPC_SERVER")
    return binary


class RealServer(unittest.TestCase):
    """One server for the class; one fresh client per test (01-blocking
    serves one connection at a time, so a test never holds two)."""

    @classmethod
    def setUpClass(cls):
        command = [server_binary(), "--addr", "127.0.0.1:0", "--mode", "rpc",
                   "--db-latency", f"{int(DB_LATENCY * 1000)}ms"]
        # Its own session, so that the kill reaches forked children (04, 05).
        cls.server = subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)
        try:
            line = cls.server.stdout.readline().decode()
            if not line.startswith("listening on "):
                raise RuntimeError(f"{command[0]} did not start: {line!r}")
            host, port = line.split()[2].rsplit(":", 1)
            cls.address = (host, int(port))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        os.killpg(cls.server.pid, signal.SIGKILL)
        cls.server.wait()
        cls.server.stdout.close()

    def setUp(self):
        self.c = RPCClient(*self.address)

    def tearDown(self):
        self.c.close()

    def test_func1_is_the_homeworks_example(self):
        self.assertEqual(self.c.func1(1, 2, 3), 9)
        self.assertEqual(self.c.func1(x=1, y=2, z=3), 9)
        self.assertEqual(self.c.call("func1", 1, 2, 3), 9)

    def test_strings_ints_lists_and_maps(self):
        self.assertEqual(self.c.upper("hello"), "HELLO")
        self.assertEqual(self.c.add("ab", "cd"), "abcd")
        self.assertEqual(self.c.add([1, "a"], [None]), [1, "a", None])
        self.assertEqual(self.c.add(a=2, b=3), 5)
        self.assertEqual(self.c.sum([1, 2, 3, 4]), 10)
        self.assertEqual(self.c.echo({"k": [1, {"n": None}]}), {"k": [1, {"n": None}]})
        self.assertEqual(self.c.divide(-7, 2), -7 // 2)

    def test_remote_failures_raise_the_matching_exception(self):
        with self.assertRaisesRegex(ZeroDivisionError, "division by zero") as caught:
            self.c.divide(1, 0)
        self.assertEqual(caught.exception.code, -32000)
        with self.assertRaises(OverflowError):
            self.c.func1(1, 2, 100)
        with self.assertRaisesRegex(TypeError, r"func1\(x: int, y: int, z: int\)"):
            self.c.func1(1, 2)
        with self.assertRaisesRegex(TypeError, "`z` must be int"):
            self.c.func1(1, 2, "3")
        with self.assertRaises(RemoteError) as caught:
            self.c.call("no_such_function")
        self.assertEqual(caught.exception.code, -32601)
        self.assertEqual(caught.exception.data["type"], "MethodNotFound")
        # The connection is still usable after every failure.
        self.assertEqual(self.c.func1(1, 2, 3), 9)

    def test_unknown_attributes_are_attribute_errors(self):
        with self.assertRaisesRegex(AttributeError, "no_such_function"):
            self.c.no_such_function(1)

    def test_positional_and_named_together_are_refused_locally(self):
        with self.assertRaises(TypeError):
            self.c.func1(1, 2, z=3)

    def test_dir_lists_the_remote_functions(self):
        names = dir(self.c)
        for name in ["func1", "echo", "add", "sum", "upper", "divide", "query"]:
            self.assertIn(name, names)
        self.assertIn("call", names)

    def test_help_shows_signature_and_doc(self):
        self.assertEqual(str(inspect.signature(self.c.func1)), "(x: int, y: int, z: int) -> int")
        self.assertEqual(str(inspect.signature(self.c.sum)), "(values: list[int]) -> int")
        text = pydoc.render_doc(self.c.func1, renderer=pydoc.plaintext)
        self.assertIn("func1(x: int, y: int, z: int) -> int", text)
        self.assertIn("func1(1, 2, 3) == 9", text)

    def test_query_answers_after_the_db_latency(self):
        started = time.monotonic()
        self.assertEqual(self.c.query("user:1"), "row for user:1")
        self.assertGreaterEqual(time.monotonic() - started, DB_LATENCY * 0.9)

    def test_a_line_over_one_mebibyte_ends_the_connection(self):
        with self.assertRaises((RemoteError, ConnectionClosed)) as caught:
            self.c.echo("x" * (2 * 1024 * 1024))
        if isinstance(caught.exception, RemoteError):
            self.assertEqual(caught.exception.code, -32600)
        with self.assertRaisesRegex(ConnectionClosed, "closed the connection"):
            self.c.func1(1, 2, 3)

    def test_a_closed_client_says_so(self):
        self.c.close()
        with self.assertRaisesRegex(ConnectionClosed, "this client is closed"):
            self.c.func1(1, 2, 3)


class FakeServer(unittest.TestCase):
    """What the client does with answers no correct server gives."""

    def serve(self, reply):
        """A one-connection server that reads a line, sends `reply`
        (bytes, maybe empty) and closes."""
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def run():
            connection, _ = listener.accept()
            with connection:
                connection.makefile("rb").readline()
                connection.sendall(reply)

        thread = threading.Thread(target=run)
        thread.start()
        self.addCleanup(thread.join)
        return RPCClient(*listener.getsockname())

    def test_a_server_that_closes_is_a_clear_error(self):
        with self.serve(b"") as c:
            with self.assertRaisesRegex(ConnectionClosed, "closed the connection"):
                c.call("func1", 1, 2, 3)

    def test_only_known_exception_types_are_raised(self):
        # A server cannot make the client raise (or run) anything else.
        reply = b'{"jsonrpc":"2.0","error":{"code":-32000,"message":"x","data":{"type":"SystemExit","message":"bye"}},"id":1}\n'
        with self.serve(reply) as c:
            with self.assertRaises(RemoteError) as caught:
                c.call("func1", 1, 2, 3)
        self.assertEqual(caught.exception.data["type"], "SystemExit")


if __name__ == "__main__":
    unittest.main()
