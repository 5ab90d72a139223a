"""Whether a call lets other Python threads run while it is in progress."""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable


def progress_during(call: Callable[[], object]) -> int:
    """How often a second Python thread ran while ``call`` was in progress.

    The interpreter's forced thread switches are disabled for the measurement (a huge
    switch interval), so threads change hands only when the GIL is released on purpose:
    by the spinner's ``sleep(0)``, or by ``call`` itself. The worker reads the counter
    just before and just after the call: if the call kept the GIL, the spinner cannot run
    in between and the difference is exactly zero.
    """
    counter = [0]
    window: list[int] = []
    done = threading.Event()

    def work() -> None:
        before = counter[0]
        call()
        window.append(counter[0] - before)
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        while not done.is_set():
            counter[0] += 1
            time.sleep(0)  # hand the GIL back so the worker can finish
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    return window[0]
