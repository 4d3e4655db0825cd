"""The Node driver, a child process of this Python process: it runs the TypeScript Cluster
(supervisor, secured bus, credentials) while this process hosts the Spark runner. They talk JSON
lines over the child's stdin and stdout (see src/driver/python-driver.ts); secrets travel only
there. The child ends when its stdin does, so it cannot outlive this process, even a SIGKILLed one."""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
from collections import deque
from typing import Any, Callable

from .errors import SparkPartitionServerError, from_reply
from .node import DRIVER_ENTRY

log = logging.getLogger("spark_partition_server")

# Longest answer line taken from the driver (results of a stop come in one line).
MAX_LINE_BYTES = 256 * 1024 * 1024
# Driver log lines kept for the message of a driver that died.
TAIL_LINES = 40
# pino's numeric levels, as Python logging's.
LEVELS = {10: logging.DEBUG, 20: logging.DEBUG, 30: logging.INFO, 40: logging.WARNING, 50: logging.ERROR, 60: logging.CRITICAL}

Message = dict[str, Any]


class NodeDriver:
    """One Node driver process; `call` sends an order and waits for its answer, while events
    (`runner`, `progress`) go to `on_event` as they come."""

    def __init__(self, node: str, package: str, on_event: Callable[[Message], None]) -> None:
        self.on_event = on_event
        self.answers: queue.Queue[Message | None] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        # `lock`: one order at a time; `write_lock`: whole lines on stdin, also from `notify`.
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.proc = subprocess.Popen(
            [node, os.path.join(package, DRIVER_ENTRY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group: a Ctrl-C meant for Python reaches Python, which stops the run.
            start_new_session=True,
        )
        threading.Thread(target=self._read_answers, name="sps-driver-out", daemon=True).start()
        threading.Thread(target=self._read_logs, name="sps-driver-err", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES:
                self.tail.append("an answer line exceeds %d bytes" % MAX_LINE_BYTES)
                self.proc.kill()
                break
            try:
                message = json.loads(line)
            except ValueError:
                self.tail.append(line.decode("utf-8", "replace").rstrip())
                continue
            if message.get("t") in ("runner", "progress"):
                try:
                    self.on_event(message)
                except Exception:  # noqa: BLE001
                    log.exception("handling the driver's %s event", message.get("t"))
            else:
                self.answers.put(message)
        self.answers.put(None)

    def _read_logs(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            level, text = logging.INFO, line
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                    level, text = LEVELS.get(record.get("level"), logging.INFO), str(record.get("msg", line))
                except ValueError:
                    pass
            self.tail.append(text)
            log.log(level, "%s", text)

    def call(self, op: str, expect: str, **fields: Any) -> Message:
        """Sends one order and returns its answer of type `expect`; raises the driver's error."""
        with self.lock:
            try:
                self._write(op, fields)
            except (BrokenPipeError, ValueError) as err:
                raise self._gone(op) from err
            answer = self.answers.get()
            if answer is None:
                self.answers.put(None)
                raise self._gone(op)
            if answer.get("t") == "error":
                raise from_reply(answer)
            if answer.get("t") != expect:
                raise SparkPartitionServerError("SPS_PYTHON_DRIVER", "the Node driver answered %r with %r" % (op, answer.get("t")))
            return answer

    def _write(self, op: str, fields: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        with self.write_lock:
            self.proc.stdin.write((json.dumps(dict(fields, op=op)) + "\n").encode("utf-8"))
            self.proc.stdin.flush()

    def notify(self, op: str, **fields: Any) -> None:
        """Sends an order that has no answer, even while a `call` waits for its own (the driver
        takes it at once); nothing happens when the driver is gone already."""
        try:
            self._write(op, fields)
        except (BrokenPipeError, ValueError, OSError):
            pass

    def _gone(self, op: str) -> SparkPartitionServerError:
        code = self.proc.wait()
        said = "\n".join(self.tail)
        return SparkPartitionServerError(
            "SPS_COMPONENT_LOST", "the Node driver (pid %d) exited with %s during %r%s" % (self.proc.pid, code, op, ("\n" + said) if said else "")
        )

    def close(self, timeout: float = 30.0) -> None:
        """Ends the driver: closing its stdin makes it end everything it started."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
