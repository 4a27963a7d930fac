#!/usr/bin/env python3
"""Broken on purpose: reads once and takes what came as the whole request.
A request that arrives in pieces is then garbage. Fails http_split_request."""

import asyncio

from broken import lab_server


class ReadsOnce(lab_server.LabServer):
    async def read_request(self, connection):
        try:
            if not await connection.receive(self.idle_timeout):
                return None
        except asyncio.TimeoutError:
            return None
        # The bug: one recv is assumed to hold the whole request.
        head, _, _ = bytes(connection.buffer).partition(b"\r\n\r\n")
        connection.buffer.clear()
        return self.parse_head(head)


lab_server.main(ReadsOnce)
