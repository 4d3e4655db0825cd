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
from types import TracebackType
from typing import Any, Coroutine, TypeVar

from .application import Application, bus_error
from .errors import BadKeyError, InvalidOptionError, RequestError, SparkPartitionServerError, UnsupportedError, from_reply
from .node import RUNNER_ENTRY, load_runner
from .progress import Progress
from .session import is_connect, session_of

T = TypeVar("T")

ENDPOINT = re.compile(r"^[A-Za-z0-9_-]+$")


def _kind_of(data: Any) -> str:
    from pyspark import RDD
    from pyspark.sql import DataFrame

    if isinstance(data, DataFrame):
        return "dataframe"
    if isinstance(data, RDD):
        return "rdd"
    raise InvalidOptionError("data", "must be a PySpark DataFrame or RDD, got %s" % type(data).__name__)


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
    rows), in the session of `spark`: a SparkSession or SparkContext (the cluster starts its own
    Node driver, bus and runner, and ends them at `stop()`), or an `Application` from `attach`
    (the cluster runs on it and leaves it open for the next one).

    `server` is the path of the server module (`.ts` or `.js`, as for the TypeScript Cluster);
    `config` reaches every server as its config; `cache_result` keeps the results persisted in the
    session. Other keyword options are the TypeScript ClusterOptions in snake_case (`partitions`,
    `barrier`, `tls`, `start_timeout_ms`, …); a wrong one raises InvalidOptionError naming it.
    Subclass it to add query methods, as the seed's DemoCluster does."""

    def __init__(self, spark: Any, data: Any, server: str, cache_result: bool = False, config: Any = None, show_progress: bool = True, **options: Any) -> None:
        self.kind = _kind_of(data)
        self.data = data
        self._shared = spark if isinstance(spark, Application) else None
        self.session = session_of(self._shared.session if self._shared is not None else spark, data)
        if self._shared is not None and not _same_session(self._shared.session, self.session):
            raise InvalidOptionError("data", "belongs to another session than the application's; attach an application to the data's session")
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
        # The Node executable and library are looked for now: a missing one fails before any Spark job.
        self._app = self._shared if self._shared is not None else Application(self.session)
        self.package = self._app.package
        self.id: str | None = None
        self.results: dict[int, list[Any]] = {}
        self._source_id = "py-%s" % secrets.token_hex(6)
        self._running = False
        self._nc: Any = None
        self._dataset: Any = None
        self._request_timeout_s = 30.0
        self._connect_partitions: int | None = None

    @property
    def application(self) -> Application:
        """The application the cluster runs on: the one it was given, or its own."""
        return self._app

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
        app = self._app
        if self._running:
            raise SparkPartitionServerError("SPS_STATE", "start() called while the cluster runs; stop() it first")
        if self._shared is not None:
            if not app.is_open:
                raise SparkPartitionServerError("SPS_STATE", "the application is closed; attach again")
            if app.running is not None:
                raise SparkPartitionServerError("SPS_STATE", "another cluster runs on this application; stop() it first")
        self.results = {}
        self._dataset = None
        progress = Progress("spark-partition-server", self.show_progress)
        self._running = True
        try:
            app.open()
            app.running = self
            app.on_progress = progress.update
            app.sources[self._source_id] = self.data
            started = app.call(
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
            runner = app.runner_module
            assert runner is not None
            self._nc = app.run(runner.nats_connect(started["client"], "sps-python-client-%s" % self.id, error_cb=bus_error))
        except SparkPartitionServerError:
            # The driver answered: the run is over and the application, if shared, still serves the next one.
            self._teardown(close_app=self._shared is None or not app.is_open)
            raise
        except BaseException:
            # Interrupted, or the driver is gone: what the run left cannot be known, so everything goes.
            self._teardown(close_app=True)
            raise

    def stop(self) -> None:
        """Stops every server and collects each partition's result once (see `get_result_rdd`,
        `result`, `results`); raises what failed the run, after collecting the others."""
        if not self._running:
            return
        app = self._app
        failure: BaseException | None = None
        try:
            # The client leaves before the run's bus goes away under it.
            self._close_client()
            stopped = app.call("stop", "stopped")
            self.results = {int(p): records for p, records in stopped["results"].items()}
            if stopped.get("dataset") and app.runner is not None:
                self._dataset = app.runner.datasets.get(stopped["dataset"])
            if stopped.get("error"):
                failure = from_reply(stopped["error"])
        finally:
            self._teardown(close_app=self._shared is None, graceful=True)
        if failure is not None:
            raise failure

    def _teardown(self, close_app: bool, graceful: bool = False) -> None:
        """Ends what the run started: the client, and the application (with it the Node driver, the
        bus, the supervisor and the runner's jobs) when it is the cluster's own or its state is unknown."""
        app = self._app
        self._close_client()
        app.sources.pop(self._source_id, None)
        if app.running is self:
            app.running = None
            app.on_progress = None
        if close_app:
            app.close(graceful=graceful)
        self._running = False

    def _close_client(self) -> None:
        if self._nc is not None and self._app.loop is not None and not self._nc.is_closed:
            try:
                self._app.run(self._nc.close(), timeout=5)
            except Exception:  # noqa: BLE001
                pass
        self._nc = None

    def __enter__(self) -> "Cluster":
        if not self._running:
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
        return self._app.run(coro, timeout)

    def get_hosts(self) -> dict[int, tuple[str, int | None]]:
        """Partition → (host, port) of its HTTP server (port None for servers without HTTP)."""
        if not self._running:
            return {}
        hosts = self._app.call("hosts", "hosts")["hosts"]
        return {int(p): (h[0], h[1]) for p, h in hosts.items()}

    def members(self) -> list[dict[str, Any]]:
        """Every partition's current member, as the supervisor sees it: partition, attempt, state,
        host, port, pid (of its Node worker) and endpoints."""
        if not self._running:
            return []
        return list(self._app.call("members", "members")["members"])

    async def _request(self, partition: int, endpoint: str, payload: Any, timeout: float) -> Any:
        from nats.errors import NoRespondersError, TimeoutError

        runner = self._app.runner_module
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
        runner = self._app.runner_module or load_runner(os.path.join(self.package, RUNNER_ENTRY))
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
            runner = self._app.runner_module or load_runner(os.path.join(self.package, RUNNER_ENTRY))
            return runner.records_df(self.session, [r for p in sorted(self.results) for r in self.results[p]])
        lines = self.get_result_rdd().map(lambda r: json.dumps(r if isinstance(r, dict) else {"value": r}, default=str))
        return self.session.read.json(lines)


def _same_session(a: Any, b: Any) -> bool:
    """Whether two sessions run in one Spark application (a DataFrame's session may be another
    SparkSession object of the same SparkContext)."""
    if a is b:
        return True
    if is_connect(a) or is_connect(b):
        return False
    return a.sparkContext is b.sparkContext
