"""`Application`: what a run needs beside its partitions — the Node driver child process (the
secured bus, credentials, the supervisor) and the library's Spark runner hosted on the user's
session in this process. A `Cluster` given a session makes its own and ends it at `stop()`; one
given an `Application` (from `attach`) runs on it, so cluster after cluster on one session skip
starting the driver, the bus and the runner again, as a notebook re-running a cell does."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from types import ModuleType, TracebackType
from typing import Any, Callable, Coroutine, TypeVar

from .driver import Message, NodeDriver, log
from .errors import SparkPartitionServerError
from .node import load_runner, node_executable, node_package
from .session import DRIVER_CONF, connect_bus_host, is_connect, max_failures, session_of

T = TypeVar("T")

# How long a cluster master may take to offer enough task slots for a run.
SLOT_WAIT_S = 30.0


async def bus_error(err: Exception) -> None:
    """A bus connection's error (a reconnect, the bus gone at the end of a run): a debug record."""
    log.debug("bus: %s", err)


class Application:
    """The Node driver, the run's bus and the Spark runner for one session (a SparkSession, a
    SparkContext or a Spark Connect session), hosted by this process. `open()` starts them,
    `close()` ends them; as a context manager it does both. One cluster runs on it at a time."""

    def __init__(self, spark: Any) -> None:
        self.session = session_of(spark, None)
        self.connect = is_connect(self.session)
        self.node = node_executable()
        self.package = node_package()
        self.driver: NodeDriver | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner_module: ModuleType | None = None
        self.runner: Any = None
        # The DataFrames and RDDs the runner may serve, by source id: each cluster adds its own.
        self.sources: dict[str, Any] = {}
        # Where the driver's `progress` events go: the starting cluster's display.
        self.on_progress: Callable[[int, int], None] | None = None
        # The cluster running on it, if any (one at a time: the Node driver runs one).
        self.running: object | None = None
        self._serving: Future[None] | None = None

    @property
    def is_open(self) -> bool:
        return self.driver is not None

    def open(self) -> "Application":
        """Starts the Node driver, the bus and the runner; returns self. On any failure, or a
        KeyboardInterrupt, what it started is ended before the exception goes on."""
        if self.driver is not None:
            return self
        try:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="sps-loop", daemon=True).start()
            self.driver = NodeDriver(self.node, self.package, self._on_event)
            # On Spark Connect the driver's settings are the server's, which is not where the bus runs.
            conf = {} if self.connect else {k: v for k, v in self.session.sparkContext.getConf().getAll() if k in DRIVER_CONF}
            # A Connect server on another host runs its executors there: they reach the bus at this host's address.
            bus_host = connect_bus_host(self.session) if self.connect else None
            remote = {"busHost": bus_host} if bus_host else {}
            self.driver.call("attach", "attached", pid=os.getpid(), maxFailures=max_failures(self.session), conf=conf, **remote)
        except BaseException:
            self.close(graceful=False)
            raise
        return self

    def _on_event(self, message: Message) -> None:
        """Events of the Node driver: host the runner when told to, pass the start's progress on."""
        if message["t"] == "runner":
            try:
                self._host_runner(message)
            except Exception as err:  # noqa: BLE001
                self._runner_failed(err, self.driver)
        elif message["t"] == "progress" and self.on_progress is not None:
            self.on_progress(int(message["done"]), int(message["total"]))

    def _host_runner(self, message: Message) -> None:
        """Runs the library's Spark runner on the session, in this application's event loop."""
        runner = load_runner(message["module"])
        runner.load_protocol(message["protocol"])
        self.runner_module = runner
        assert self.loop is not None

        def keep(r: Any) -> None:
            self.runner = r

        serving = runner.serve_runner(self.session, message["bus"], message["appId"], message["jobDir"], SLOT_WAIT_S, self.sources, keep, bus_error)
        self._serving = asyncio.run_coroutine_threadsafe(serving, self.loop)
        # This application's driver: a runner that ends late must not fail a later application's attach.
        driver = self.driver

        def ended(done: Future[None]) -> None:
            err = None if done.cancelled() else done.exception()
            if err is not None:
                self._runner_failed(err, driver)

        self._serving.add_done_callback(ended)

    def _runner_failed(self, err: BaseException, driver: NodeDriver | None) -> None:
        """The runner could not start (or ended with an error): its Node driver is told why, so an
        `attach` waiting for it fails with that reason instead of waiting out its timeout."""
        reason = "%s: %s" % (type(err).__name__, err)
        log.error("the Spark runner failed: %s", reason)
        if driver is not None:
            driver.notify("runnerFailed", message=reason)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs `coro` on this application's event loop and waits for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, op: str, expect: str, **fields: Any) -> Message:
        """An order to the Node driver and its answer; SPS_STATE when the application is closed."""
        if self.driver is None:
            raise SparkPartitionServerError("SPS_STATE", "the application is closed; attach again")
        return self.driver.call(op, expect, **fields)

    def close(self, graceful: bool = True) -> None:
        """Ends the runner's jobs and its service, the Node driver (and with it the bus and any
        cluster still on it) and the event loop, whatever state they are in. `graceful`: the driver
        is asked to close first; otherwise (an order may still be running there) its stdin just
        ends, which ends it and everything it started at once."""
        driver, loop = self.driver, self.loop
        self._stop_runner()
        if driver is not None:
            try:
                if graceful and driver.proc.poll() is None:
                    driver.call("close", "closed")
            except Exception:  # noqa: BLE001 - ending it is all that is left to do
                pass
            driver.close()
        self.driver = None
        self.running = None
        if loop is not None:
            # What is left on the loop (a connection retrying a bus that is gone) ends with it.
            async def cancel_rest() -> None:
                rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in rest:
                    task.cancel()
                await asyncio.gather(*rest, return_exceptions=True)

            try:
                self.run(cancel_rest(), timeout=5)
            except Exception:  # noqa: BLE001
                pass
            loop.call_soon_threadsafe(loop.stop)
        self.loop = None

    def _stop_runner(self) -> None:
        """Cancels the runner's jobs in the session and ends its service (its bus connection)."""
        runner, loop, serving = self.runner, self.loop, self._serving
        self._serving = None
        if runner is None or loop is None or serving is None:
            return
        runner.cancel_jobs()
        loop.call_soon_threadsafe(runner.closed.set)
        try:
            serving.result(10)
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "Application":
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close(graceful=kind is None)


def attach(spark: Any) -> Application:
    """An open `Application` on `spark` (a SparkSession, SparkContext or Spark Connect session):
    give it to `Cluster(app, data, server)` in place of the session, for cluster after cluster;
    `close()` it (or use it in a `with` block) when done."""
    return Application(spark).open()
