#!/usr/bin/env python3
"""Broken on purpose: keeps every connection open, whatever the client
asked (Connection: close, HTTP/1.0). Fails http_connection_close_is_honoured."""

from broken import lab_server


class IgnoresClose(lab_server.LabServer):
    def wants_keep_alive(self, request):
        return True  # the bug


lab_server.main(IgnoresClose)
