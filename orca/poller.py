"""`Poller`: a daemon thread that reads something every few seconds until stopped, then once more."""

from __future__ import annotations

import threading


class Poller(threading.Thread):
    """Calls `poll()` every `interval` seconds until `stop()`, which waits for the thread and polls once more,
    so nothing that happened meanwhile is lost."""

    def __init__(self, name: str, interval: float, join_timeout: float):
        super().__init__(name=name, daemon=True)
        self.interval, self.join_timeout = interval, join_timeout
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=self.join_timeout)
        self.poll()

    def poll(self) -> None:
        raise NotImplementedError
