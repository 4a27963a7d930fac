#!/usr/bin/env python3
"""Broken on purpose: writes once and ignores how much the kernel took.
What did not fit is lost, and the server never waits for a slow reader.
Fails echo_backpressure_bounds_unread_output."""

from broken import lab_server


class WritesOnce(lab_server.Connection):
    async def send(self, data):
        try:
            self.sock.send(data)  # the bug: the count it returns is ignored
        except BlockingIOError:
            pass


class Server(lab_server.LabServer):
    connection_class = WritesOnce


lab_server.main(Server)
