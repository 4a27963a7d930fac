#!/usr/bin/env python3
"""Broken on purpose: lets a client's reset (ConnectionResetError) escape
its connection's task; the TaskGroup that owns every connection then ends,
and the server with it. Fails reset_client_does_not_hurt_next."""

from broken import lab_server


class DiesOnReset(lab_server.LabServer):
    async def serve_connection(self, connection):
        try:  # the bug: no `except OSError`
            if self.args.mode == "echo":
                await self.echo(connection)
            else:
                await self.http(connection)
        finally:
            connection.sock.close()


lab_server.main(DiesOnReset)
