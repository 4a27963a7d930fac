#!/usr/bin/env python3
"""Broken on purpose: closes after every response, even for HTTP/1.1 (and
without saying Connection: close). Fails http_keep_alive."""

from broken import lab_server


class NoKeepAlive(lab_server.LabServer):
    async def answer(self, connection, request):
        await super().answer(connection, request)
        return False  # the bug


lab_server.main(NoKeepAlive)
