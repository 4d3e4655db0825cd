"""How `start()` shows its progress: one line that says how many partitions serve, updated in
place — a display in a Jupyter kernel, a carriage-returned line on a terminal."""

from __future__ import annotations

import sys
from typing import Any


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return get is not None and get() is not None and "IPKernelApp" in getattr(get(), "config", {})


class Progress:
    """Partitions serving k/N, shown while a cluster starts."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self.handle: Any = None
        self.kernel = enabled and _in_kernel()

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        text = "%s: partitions serving %d/%d" % (self.label, done, total)
        if self.kernel:
            import IPython.display

            # IPython's display is untyped: called through Any.
            display: Any = IPython.display.display
            # Raw text/plain: the line itself, not the repr of a str (quoted).
            shown = {"text/plain": text}
            if self.handle is None:
                self.handle = display(shown, raw=True, display_id=True)
            else:
                self.handle.update(shown, raw=True)
        elif sys.stderr.isatty():
            sys.stderr.write("\r" + text + ("\n" if done >= total else ""))
            sys.stderr.flush()
