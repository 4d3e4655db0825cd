"""`Cluster`: Node partition servers on the partitions of the user's own DataFrame or RDD, run as
the tasks of a job in the user's own session: a classic one's SparkContext, or a Spark Connect
session (DataFrames only; the job is a mapInArrow there).

What runs where: this process hosts the library's Spark runner (its code, loaded from the Node
library) on the user's session, in a thread with its own event loop; a Node driver child process
runs the TypeScript Cluster (the secured bus, credentials, the supervisor) and submits the job to
that runner; Spark's tasks start one Node worker per partition and feed it the partition's rows.
Requests go from here to the partitions over the bus, with the client credentials the driver
hands out."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import threading
from concurrent.futures import Future
from types import ModuleType, TracebackType
from typing import Any, Coroutine, TypeVar

from .driver import Message, NodeDriver, log
from .errors import BadKeyError, InvalidOptionError, RequestError, SparkPartitionServerError, UnsupportedError, from_reply
from .node import RUNNER_ENTRY, load_runner, node_executable, node_package
from .progress import Progress

T = TypeVar("T")

# How long a cluster master may take to offer enough task slots for a run.
SLOT_WAIT_S = 30.0
# Spark settings the Node driver needs: where executors reach this driver (for the bus's address).
DRIVER_CONF = ("spark.driver.host", "spark.driver.bindAddress")
ENDPOINT = re.compile(r"^[A-Za-z0-9_-]+$")


def _session_of(spark: Any, data: Any) -> Any:
    """The SparkSession to run in: the DataFrame's own, else the one of `spark` (a session or a
    SparkContext)."""
    own = getattr(data, "sparkSession", None)
    if own is not None:
        return own
    if is_connect(spark) or hasattr(spark, "sparkContext"):
        return spark
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if isinstance(spark, SparkContext):
        return SparkSession(spark)
    raise InvalidOptionError("spark", "must be a SparkSession or SparkContext, got %s" % type(spark).__name__)


def is_connect(session: Any) -> bool:
    """True for a Spark Connect client session (SparkSession.builder.remote): it has no
    SparkContext, and its DataFrames are plans the Connect server runs."""
    return type(session).__module__.startswith("pyspark.sql.connect.")


def _kind_of(data: Any) -> str:
    from pyspark import RDD
    from pyspark.sql import DataFrame

    if isinstance(data, DataFrame):
        return "dataframe"
    if isinstance(data, RDD):
        return "rdd"
    raise InvalidOptionError("data", "must be a PySpark DataFrame or RDD, got %s" % type(data).__name__)


async def _bus_error(err: Exception) -> None:
    """A bus connection's error (a reconnect, the bus gone at the end of a run): a debug record."""
    log.debug("bus: %s", err)


def _conf(session: Any, key: str, default: str | None = None) -> str | None:
    """A Spark setting of the session: its SparkContext's, or on Spark Connect the server's."""
    if is_connect(session):
        value = session.conf.get(key, default)
        return None if value is None else str(value)
    return session.sparkContext.getConf().get(key, default)  # type: ignore[no-any-return]


def _max_failures(session: Any) -> int:
    """Task attempts per partition, as the session retries them: F of local[N,F], once on another
    local master (local mode never retries), else spark.task.maxFailures."""
    master = _conf(session, "spark.master", "") or ""
    m = re.match(r"^local(?:\[(?:\*|\d+)(?:\s*,\s*(\d+))?\])?$", master.strip())
    if m:
        return int(m.group(1)) if m.group(1) else 1
    return int(_conf(session, "spark.task.maxFailures", "4") or "4")


def _partitions_of(df: Any) -> int:
    """A Connect DataFrame's partitions (it has no RDD to ask): one small job, the highest partition
    id holding a row, plus one."""
    from pyspark.sql import functions as F

    top = df.select(F.spark_partition_id().alias("p")).agg(F.max("p").alias("p")).first()
    if top is None or top["p"] is None:
        raise InvalidOptionError("partitions", "the DataFrame has no rows to tell its partitions by; give option partitions")
    return int(top["p"]) + 1


class Cluster:
    """Node partition servers on the partitions of `data` (a DataFrame or an RDD of picklable
    rows), in the session of `spark` (a SparkSession or SparkContext).

    `server` is the path of the server module (`.ts` or `.js`, as for the TypeScript Cluster);
    `config` reaches every server as its config; `cache_result` keeps the results persisted in the
    session. Other keyword options are the TypeScript ClusterOptions in snake_case (`partitions`,
    `barrier`, `tls`, `start_timeout_ms`, …); a wrong one raises InvalidOptionError naming it.
    Subclass it to add query methods, as the seed's DemoCluster does."""

    def __init__(self, spark: Any, data: Any, server: str, cache_result: bool = False, config: Any = None, show_progress: bool = True, **options: Any) -> None:
        self.kind = _kind_of(data)
        self.data = data
        self.session = _session_of(spark, data)
        # A Spark Connect session has no SparkContext: its job is a mapInArrow of the DataFrame.
        self.connect = is_connect(self.session)
        if self.connect and self.kind == "rdd":
            raise UnsupportedError(
                "an RDD cannot run on a Spark Connect session (SparkSession.builder.remote): it has no SparkContext; "
                "give a DataFrame of the session (spark.createDataFrame, spark.range, spark.read, ...)"
            )
        self.sc = None if self.connect else self.session.sparkContext
        if not isinstance(server, (str, os.PathLike)) or not os.path.isfile(server):
            raise InvalidOptionError("server", "server module %r does not exist (a path to a .ts or .js file)" % (server,))
        self.server = os.path.abspath(server)
        try:
            json.dumps(config)
        except (TypeError, ValueError) as err:
            raise InvalidOptionError("config", "must be JSON-serializable: %s" % err) from err
        self.config = config
        self.cache_result = bool(cache_result)
        self.options = dict(options)
        self.show_progress = show_progress
        self.node = node_executable()
        self.package = node_package()
        self.id: str | None = None
        self.results: dict[int, list[Any]] = {}
        self._source_id = "py-%s" % secrets.token_hex(6)
        self._driver: NodeDriver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner_module: ModuleType | None = None
        self._runner: Any = None
        self._serving: Future[None] | None = None
        self._nc: Any = None
        self._dataset: Any = None
        self._request_timeout_s = 30.0
        self._progress: Progress | None = None
        self._connect_partitions: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def partitions(self) -> int:
        """Partitions of the run: option `partitions`, else the data's own."""
        given = self.options.get("partitions")
        if isinstance(given, int):
            return given
        if self.connect:
            if self._connect_partitions is None:
                self._connect_partitions = _partitions_of(self.data)
            return self._connect_partitions
        rdd = self.data if self.kind == "rdd" else self.data.rdd
        return int(rdd.getNumPartitions())

    def start(self) -> None:
        """Launches a server on every partition and returns once all serve. On any failure, or
        a KeyboardInterrupt, everything it started is stopped before the exception goes on."""
        if self._driver is not None:
            raise SparkPartitionServerError("SPS_STATE", "start() called while the cluster runs; stop() it first")
        self.results = {}
        self._dataset = None
        self._progress = Progress("spark-partition-server", self.show_progress)
        try:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="sps-loop", daemon=True).start()
            self._driver = NodeDriver(self.node, self.package, self._on_event)
            # On Spark Connect the driver's settings are the server's, which is not where the bus runs.
            conf = {} if self.sc is None else {k: v for k, v in self.sc.getConf().getAll() if k in DRIVER_CONF}
            self._driver.call("attach", "attached", pid=os.getpid(), maxFailures=_max_failures(self.session), conf=conf)
            started = self._driver.call(
                "start",
                "started",
                server=self.server,
                config=self.config,
                options=dict(self.options, cache_result=self.cache_result),
                source=self._source_id,
                partitions=self.partitions,
            )
            self.id = started["id"]
            self._request_timeout_s = started["requestTimeoutMs"] / 1000.0
            runner = self._runner_module
            assert runner is not None
            self._nc = self._run(runner.nats_connect(started["client"], "sps-python-client-%s" % self.id, error_cb=_bus_error))
        except BaseException:
            self._teardown()
            raise

    def _on_event(self, message: Message) -> None:
        """Events of the Node driver: host the runner when told to, show the start's progress."""
        if message["t"] == "runner":
            try:
                self._host_runner(message)
            except Exception as err:  # noqa: BLE001
                self._runner_failed(err, self._driver)
        elif message["t"] == "progress" and self._progress is not None:
            self._progress.update(int(message["done"]), int(message["total"]))

    def _host_runner(self, message: Message) -> None:
        """Runs the library's Spark runner on the session, in this process's event loop."""
        runner = load_runner(message["module"])
        runner.load_protocol(message["protocol"])
        self._runner_module = runner
        assert self._loop is not None
        sources = {self._source_id: self.data}

        def keep(r: Any) -> None:
            self._runner = r

        serving = runner.serve_runner(self.session, message["bus"], message["appId"], message["jobDir"], SLOT_WAIT_S, sources, keep, _bus_error)
        self._serving = asyncio.run_coroutine_threadsafe(serving, self._loop)
        # The driver of this run: a runner that ends late must not fail a later start's attach.
        driver = self._driver

        def ended(done: Future[None]) -> None:
            err = None if done.cancelled() else done.exception()
            if err is not None:
                self._runner_failed(err, driver)

        self._serving.add_done_callback(ended)

    def _runner_failed(self, err: BaseException, driver: NodeDriver | None) -> None:
        """The runner could not start (or ended with an error): its run's Node driver is told why,
        so an `attach` waiting for it fails with that reason instead of waiting out its timeout."""
        reason = "%s: %s" % (type(err).__name__, err)
        log.error("the Spark runner failed: %s", reason)
        if driver is not None:
            driver.notify("runnerFailed", message=reason)

    def stop(self) -> None:
        """Stops every server and collects each partition's result once (see `get_result_rdd`,
        `result`, `results`); raises what failed the run, after collecting the others."""
        driver = self._driver
        if driver is None:
            return
        failure: BaseException | None = None
        try:
            # The client leaves before the run's bus goes away under it.
            self._close_client()
            stopped = driver.call("stop", "stopped")
            self.results = {int(p): records for p, records in stopped["results"].items()}
            if stopped.get("dataset") and self._runner is not None:
                self._dataset = self._runner.datasets.get(stopped["dataset"])
            if stopped.get("error"):
                failure = from_reply(stopped["error"])
            # The runner leaves the bus while it still runs, then the driver ends the application.
            self._stop_runner()
            driver.call("close", "closed")
        finally:
            self._teardown()
        if failure is not None:
            raise failure

    def _teardown(self) -> None:
        """Ends what a run started, whatever state it is in: the client, the Node driver (and with
        it the bus and the supervisor), the runner's jobs in the session, the event loop."""
        loop = self._loop
        self._close_client()
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        self._stop_runner()
        if loop is not None:
            # What is left on the loop (a connection retrying a bus that is gone) ends with it.
            async def cancel_rest() -> None:
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            try:
                self._run(cancel_rest(), timeout=5)
            except Exception:  # noqa: BLE001
                pass
            loop.call_soon_threadsafe(loop.stop)
        self._loop = None

    def _close_client(self) -> None:
        if self._nc is not None and self._loop is not None and not self._nc.is_closed:
            try:
                self._run(self._nc.close(), timeout=5)
            except Exception:  # noqa: BLE001
                pass
        self._nc = None

    def _stop_runner(self) -> None:
        """Cancels the runner's jobs in the session and ends its service (its bus connection)."""
        runner, loop, serving = self._runner, self._loop, self._serving
        if runner is None or loop is None or serving is None:
            return
        runner.cancel_jobs()
        loop.call_soon_threadsafe(runner.closed.set)
        try:
            serving.result(10)
        except Exception:  # noqa: BLE001
            pass
        self._serving = None

    def __enter__(self) -> "Cluster":
        if self._driver is None:
            self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.stop()
        else:
            # Stop, but let the block's own exception be the one that is raised.
            try:
                self.stop()
            except Exception:  # noqa: BLE001
                pass

    # -- queries -----------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def get_hosts(self) -> dict[int, tuple[str, int | None]]:
        """Partition → (host, port) of its HTTP server (port None for servers without HTTP)."""
        if self._driver is None:
            return {}
        hosts = self._driver.call("hosts", "hosts")["hosts"]
        return {int(p): (h[0], h[1]) for p, h in hosts.items()}

    def members(self) -> list[dict[str, Any]]:
        """Every partition's current member, as the supervisor sees it: partition, attempt, state,
        host, port, pid (of its Node worker) and endpoints."""
        if self._driver is None:
            return []
        return list(self._driver.call("members", "members")["members"])

    async def _request(self, partition: int, endpoint: str, payload: Any, timeout: float) -> Any:
        from nats.errors import NoRespondersError, TimeoutError

        runner = self._runner_module
        assert runner is not None
        subject = "sps.%s.p.%d.%s" % (self.id, partition, endpoint)
        try:
            msg = await self._nc.request(subject, runner.pack("req", {"body": payload}), timeout=timeout)
        except NoRespondersError as err:
            raise RequestError("SPS_NO_RESPONDER", partition, endpoint, "nobody serves this endpoint (partition not serving, or restarted)") from err
        except TimeoutError as err:
            raise RequestError("SPS_REQUEST_TIMEOUT", partition, endpoint, "no reply within %g s" % timeout) from err
        try:
            reply = runner.unpack(msg.data, "res", subject)
        except runner.MalformedMessage as err:
            raise RequestError("SPS_MALFORMED_MESSAGE", partition, endpoint, str(err)) from err
        if reply["ok"]:
            return reply.get("body")
        error = reply.get("error") or {}
        raise RequestError(str(error.get("code")), partition, endpoint, str(error.get("message")))

    def _check(self, partition: int, endpoint: str) -> None:
        if self._nc is None:
            raise RequestError("SPS_NOT_RUNNING", partition, endpoint, "the cluster is not running")
        if not isinstance(partition, int) or not 0 <= partition < self.partitions:
            raise RequestError(
                "SPS_UNKNOWN_PARTITION", partition if isinstance(partition, int) else -1, endpoint, "no such partition (the cluster has %d)" % self.partitions
            )
        if not isinstance(endpoint, str) or not ENDPOINT.match(endpoint):
            raise RequestError("SPS_UNKNOWN_ENDPOINT", partition, str(endpoint), "an endpoint name holds only letters, digits, '_' and '-'")

    def request(self, partition: int, endpoint: str, payload: Any = None, timeout: float | None = None) -> Any:
        """Calls one endpoint of one partition over the bus and returns its reply.
        Raises RequestError (with the library's code) when it fails."""
        self._check(partition, endpoint)
        t = timeout if timeout is not None else self._request_timeout_s
        return self._run(self._request(partition, endpoint, payload, t))

    def partition_of(self, key: Any) -> int:
        """The partition that owns `key` (a string or an integer), as option `partition_by` placed
        the rows: the one key mapping of the library (docs/keys.md), from its Spark runner. Raises
        BadKeyError (`SPS_BAD_KEY`) for any other key."""
        runner = self._runner_module or load_runner(os.path.join(self.package, RUNNER_ENTRY))
        try:
            return int(runner.partition_of_key(key, self.partitions))
        except ValueError as err:
            raise BadKeyError("key %r: %s" % (key, err)) from None

    def request_by_key(self, key: Any, endpoint: str, payload: Any = None, timeout: float | None = None) -> Any:
        """Calls `endpoint` on the partition that owns `key` (see `partition_of`) and returns its reply."""
        return self.request(self.partition_of(key), endpoint, payload, timeout)

    def request_all(self, endpoint: str, payload: Any = None, timeout: float | None = None) -> dict[int, Any]:
        """Calls `endpoint` on every partition at once: partition → reply, or the RequestError of a
        partition that failed."""
        self._check(0, endpoint)
        t = timeout if timeout is not None else self._request_timeout_s

        async def every() -> list[Any]:
            calls = [self._request(p, endpoint, payload, t) for p in range(self.partitions)]
            return list(await asyncio.gather(*calls, return_exceptions=True))

        return dict(enumerate(self._run(every())))

    # -- results -----------------------------------------------------------------------------

    def get_result_rdd(self) -> Any:
        """The records the partitions returned, as an RDD (persisted in the session with
        `cache_result`; unpersist it before starting again to free it)."""
        if self.sc is None:
            raise UnsupportedError("an RDD cannot exist on a Spark Connect session; result() gives the records as a DataFrame, results as a dict")
        if self._dataset is not None:
            return self._dataset.records()
        return self.sc.parallelize([r for p in sorted(self.results) for r in self.results[p]], max(1, len(self.results)))

    def unpersist(self) -> None:
        """Frees the results `cache_result` kept persisted in the session."""
        if self._dataset is not None:
            self._dataset.unpersist()
            self._dataset = None

    def result(self) -> Any:
        """The records the partitions returned, as a DataFrame: with the Arrow schema of a result
        that has one, else one Spark infers from the records (non-objects become `{value}`)."""
        if self._dataset is not None:
            return self._dataset.df()
        if self.connect:
            runner = self._runner_module or load_runner(os.path.join(self.package, RUNNER_ENTRY))
            return runner.records_df(self.session, [r for p in sorted(self.results) for r in self.results[p]])
        lines = self.get_result_rdd().map(lambda r: json.dumps(r if isinstance(r, dict) else {"value": r}, default=str))
        return self.session.read.json(lines)
