#!/usr/bin/env python3
"""Broken on purpose: counts the CRLF that ends the head into the body's
Content-Length, so a client waits for two bytes that never come.
Fails http_get."""

from broken import lab_server


class WrongLength(lab_server.LabServer):
    def head(self, status, reason, headers, keep_alive, length, version="HTTP/1.1"):
        return super().head(status, reason, headers, keep_alive, length + 2, version)


lab_server.main(WrongLength)
