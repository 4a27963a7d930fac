#!/usr/bin/env python3
"""Broken on purpose: waits for a client's next bytes forever, so idle
connections pile up. Fails idle_connection_is_closed."""

from broken import lab_server


class NeverClosesIdle(lab_server.LabServer):
    async def echo(self, connection):
        while await connection.receive(None):  # the bug: no idle timeout
            data = bytes(connection.buffer)
            connection.buffer.clear()
            await connection.send(data)


lab_server.main(NeverClosesIdle)
