"""What the deliberately broken servers share: the lab's example server
(examples/python/lab_server.py), which each of them changes in one place."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "examples", "python"))

import lab_server  # noqa: E402  (found through the path above)
