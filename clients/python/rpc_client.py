"""The RPC homework's client, in Python with the standard library only.

    >>> c = RPCClient("127.0.0.1", 9090)   # a server started with --mode rpc
    >>> c.func1(1, 2, 3)
    9
    >>> c.func1(x=1, y=2, z=3)
    9
    >>> c.divide(1, 0)
    Traceback (most recent call last):
    ZeroDivisionError: integer division by zero
    >>> dir(c)        # the remote functions, from rpc.list_methods
    >>> help(c.func1) # signature and doc, from rpc.describe

The wire format is JSON-RPC 2.0, one JSON object per line. Nothing received
is ever executed: there is no eval, exec, pickle or marshal here. A remote
method is a Python function made by a closure, and its signature is built
from the *names* the server describes ("int", "list[int]"), looked up in a
fixed table, not evaluated.
"""

import inspect
import itertools
import json
import socket
import typing

__all__ = ["RPCClient", "RemoteError", "ConnectionClosed"]


class RemoteError(Exception):
    """The server answered with an error that has no built-in match
    (-32601 no such method, -32600 invalid request, ...)."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{code} {message}: {data}")
        self.code = code
        self.message = message
        self.data = data


class ConnectionClosed(ConnectionError):
    """The server closed the connection (or this client was closed)."""


# ANCHOR: exceptions
# A remote failure's data.type -> the built-in exception to raise. Only
# these names: a server cannot make the client raise anything else.
_BUILTIN_EXCEPTIONS = {
    "ZeroDivisionError": ZeroDivisionError,
    "OverflowError": OverflowError,
    "TypeError": TypeError,
    "ValueError": ValueError,
}

# The server's type names -> Python annotations, for help() and signatures.
_TYPES = {"int": int, "str": str, "bool": bool, "dict": dict, "any": typing.Any}


def _annotation(type_name):
    """'list[int]' -> list[int], by parsing the name, never evaluating it."""
    if type_name.startswith("list[") and type_name.endswith("]"):
        return list[_annotation(type_name[5:-1])]
    return _TYPES.get(type_name, type_name)


def _exception(error):
    """The exception for a JSON-RPC error object."""
    code = error.get("code")
    message = error.get("message", "")
    data = error.get("data") or {}
    kind = data.get("type") if isinstance(data, dict) else None
    builtin = _BUILTIN_EXCEPTIONS.get(kind)
    if builtin is None:
        return RemoteError(code, message, data)
    exception = builtin(data.get("message", message))
    exception.code, exception.data = code, data
    return exception
# ANCHOR_END: exceptions


class RPCClient:
    """One connection to a JSON-RPC server; remote functions are attributes."""

    def __init__(self, host, port, timeout=30.0):
        self._address = f"{host}:{port}"
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._socket.makefile("rb")  # reads lines; writes use sendall
        self._ids = itertools.count(1)
        self._names = None  # rpc.list_methods, asked once
        self._methods = {}  # name -> function, described once

    def call(self, name, *args, **kwargs):
        """Calls remote function `name`: c.call("func1", 1, 2, 3)."""
        if args and kwargs:
            raise TypeError("JSON-RPC takes positional or named params, not both")
        request_id = next(self._ids)
        request = {"jsonrpc": "2.0", "method": name, "params": kwargs or list(args), "id": request_id}
        reply = self._exchange(json.dumps(request) + "\n")
        if "error" in reply:
            # An error with a null id (the line was unreadable) is still the
            # answer to our only request in flight.
            raise _exception(reply["error"])
        if reply.get("id") != request_id:
            raise RemoteError(None, "reply to another request", reply)
        return reply.get("result")

    def _exchange(self, line):
        if self._file is None:
            raise ConnectionClosed("this client is closed")
        closed = f"the server at {self._address} closed the connection"
        try:
            self._socket.sendall(line.encode("utf-8"))
            reply = self._file.readline()
        except (BrokenPipeError, ConnectionResetError) as error:
            raise ConnectionClosed(closed) from error
        if not reply:  # a clean close (EOF) instead of a reset
            raise ConnectionClosed(closed)
        return json.loads(reply)

    # ANCHOR: proxy
    def __getattr__(self, name):
        # Called only for names that are not real attributes: c.func1.
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is None:
            if name not in self._remote_names():
                raise AttributeError(f"the server at {self._address} has no function {name!r}")
            method = self._methods[name] = self._make_method(name)
        return method

    def _remote_names(self):
        if self._names is None:
            self._names = self.call("rpc.list_methods")
        return self._names

    def _make_method(self, name):
        """A real function (so help() shows it), calling `name` remotely."""
        description = self.call("rpc.describe", name)
        client = self

        def method(*args, **kwargs):
            return client.call(name, *args, **kwargs)

        method.__name__ = method.__qualname__ = name
        method.__doc__ = description.get("doc", "")
        method.__signature__ = inspect.Signature(
            [
                inspect.Parameter(param["name"], inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                  annotation=_annotation(param["type"]))
                for param in description.get("params", [])
            ],
            return_annotation=_annotation(description.get("returns", "any")),
        )
        return method
    # ANCHOR_END: proxy

    def __dir__(self):
        # Names with a dot (rpc.describe) are no attributes; use call().
        remote = [name for name in self._remote_names() if name.isidentifier()]
        return sorted(set(super().__dir__()) | set(remote))

    def close(self):
        if self._file is not None:
            self._file.close()
            self._socket.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
