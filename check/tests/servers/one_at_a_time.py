#!/usr/bin/env python3
"""Broken on purpose: one lock around every conversation, so clients are
served one at a time although the server claims `unlimited`.
Fails concurrency_shape (--shape unlimited)."""

import asyncio

from broken import lab_server


class OneAtATime(lab_server.LabServer):
    lock = None

    async def serve_connection(self, connection):
        self.lock = self.lock or asyncio.Lock()
        async with self.lock:  # the bug
            await super().serve_connection(connection)


lab_server.main(OneAtATime)
