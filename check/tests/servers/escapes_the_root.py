#!/usr/bin/env python3
"""Broken on purpose: joins the URL path to the root without checking where
it leads, so /../secret.txt is served from outside. Fails files_refusals."""

import os
import urllib.parse

from broken import lab_server


class EscapesTheRoot(lab_server.LabServer):
    def resolve(self, path):
        relative = urllib.parse.unquote(path).lstrip("/")
        return 200, os.path.join(self.args.root, relative)  # the bug: no check


lab_server.main(EscapesTheRoot)
