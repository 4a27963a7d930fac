#!/usr/bin/env python3
"""Broken on purpose: never checks where a path leads, so /../secret.txt
(and a symlink out) is served from outside the root. Fails files_refusals."""

from broken import lab_server


class EscapesTheRoot(lab_server.LabServer):
    def inside(self, root, full):
        return True  # the bug


lab_server.main(EscapesTheRoot)
