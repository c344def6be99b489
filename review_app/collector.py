"""What the cyclic garbage collector walks in the server's process: not what it loaded once.

The modules the app imports (their functions, classes and tables: hundreds of thousands of
objects with Streamlit, pandas and SciPy) live until the process ends, yet every full collection
walked them all again, on whichever render or vote happened to trigger it: about 50 ms of CPU
per collection for the 100,000 objects of the command line alone. Frozen (`gc.freeze`), they are
left out of every later collection; they are still freed as usual when their last reference
goes.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_modules_when_frozen = 0


def freeze_loaded() -> None:
    """Leave every object alive now out of later collections, when modules were imported since
    the last call (else nothing: what a request allocates must stay collectable).

    The app calls it after a page's run, in the server's own process only (a page opened for
    the first time imports its own services). Whatever else is alive at that moment is frozen
    too: a bounded amount, since the process freezes only as often as it meets modules it had
    not imported yet."""
    global _modules_when_frozen
    with _lock:
        if len(sys.modules) != _modules_when_frozen:
            gc.freeze()
            _modules_when_frozen = len(sys.modules)
