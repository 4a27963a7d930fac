#!/usr/bin/env python3
"""Broken on purpose: the fake DB waits with time.sleep inside the event
loop, which then serves nobody else meanwhile.
Fails concurrency_shape (--shape unlimited)."""

import time

from broken import lab_server


class BlocksTheLoop(lab_server.LabServer):
    async def fake_db(self):
        time.sleep(self.args.db_latency)  # the bug: not awaited, blocks the loop


lab_server.main(BlocksTheLoop)
