"""A Cluster on a Spark Connect client session: a real Connect server (pyspark's own
sbin/start-connect-server.sh, local[4,4], on a free port) in this script's process group, a client
session to it (SparkSession.builder.remote), a DataFrame of that session served by three partitions
(requests compared with Spark's own aggregate, a SIGKILLed worker retried by Spark, results
collected once), a run cancelled by its tag, and an RDD refused. The server is stopped by the pids
this script started, also when a step fails."""

import tempfile

from common import SUM_SERVER, emit, kill_and_wait_retry
from connect_server import descendants, running, start_connect_server, stop_connect_server
from spark_partition_server import Cluster, SparkPartitionServerError, attach

# How long a partition may take to serve again after its worker is killed (bounded polling).
RETRY_WAIT_S = 180.0


def error_of(call):
    """What `call` raised, as findings (None when it raised nothing)."""
    try:
        call()
    except SparkPartitionServerError as err:
        return {"type": type(err).__name__, "code": err.code, "message": str(err)}
    return None


def processes_of(cluster):
    """The pids a run started on this host: its Node driver (and under it the nats-server) and every
    partition's Node worker."""
    driver = cluster.application.driver.pid
    return [driver] + descendants(driver) + [m["pid"] for m in cluster.members()]


def serve_and_kill(spark, found):
    from pyspark.sql import functions as F

    df = spark.range(0, 3000).withColumn("v", (F.col("id") * 7) % 1000).repartition(3)
    # Spark's own answer, on the same session: the count and sum of column v.
    found["spark_total"] = df.agg(F.count("*").alias("count"), F.sum("v").alias("sum")).first().asDict()
    c = Cluster(spark, df, SUM_SERVER, config={"column": "v", "arrow": True}, show_progress=False, start_timeout_ms=240000)
    found["partitions"] = c.partitions
    c.start()
    found["all"] = c.request_all("summary")
    found["each"] = {p: c.request(p, "summary") for p in range(3)}
    found["echo"] = c.request(2, "echo", {"from": "connect"})
    before, after = kill_and_wait_retry(c, 1, RETRY_WAIT_S)
    found["attempts"] = [before["attempt"], after["attempt"]]
    found["state"] = after["state"]
    found["served_again"] = c.request(1, "summary")
    found["killed_pid_left"] = running(before["pid"])
    pids = processes_of(c)
    tag = "sps-%s" % c.id
    c.stop()
    found["results"] = c.results
    found["result_df"] = sorted([r.asDict() for r in c.result().collect()], key=lambda r: r["partition"])
    found["result_rdd"] = error_of(c.get_result_rdd)
    # Nothing of the run is left: its job in the session (no operation holds its tag), its processes.
    found["tagged_after_stop"] = spark.interruptTag(tag)
    found["left"] = [pid for pid in pids if running(pid)]


def cancel_by_tag(spark, found):
    """A run whose job is interrupted by its tag while it serves: the interrupt reaches the job (one
    operation), stop() reports the run's failure, and nothing of it is left."""
    from pyspark.sql import functions as F

    df = spark.range(0, 40).withColumn("v", F.col("id")).repartition(2)
    c = Cluster(spark, df, SUM_SERVER, config={"column": "v"}, show_progress=False, start_timeout_ms=240000)
    c.start()
    pids = processes_of(c)
    found["cancel_interrupted"] = len(spark.interruptTag("sps-%s" % c.id))
    found["cancel_stop"] = error_of(c.stop)
    found["cancel_left"] = [pid for pid in pids if running(pid)]


def barrier_cached_attached(spark, found):
    """A barrier run with cache_result, on an application attached to the Connect session, twice:
    every partition serves, result() is the persisted DataFrame of the session, and the second run
    reuses the first one's Node driver."""
    from pyspark.sql import functions as F

    df = spark.range(0, 600).withColumn("v", F.col("id") % 7).repartition(3)
    runs = []
    with attach(spark) as app:
        driver = app.driver.pid
        for _ in range(2):
            with Cluster(
                app, df, SUM_SERVER, config={"column": "v", "arrow": True}, barrier=True, cache_result=True, show_progress=False, start_timeout_ms=240000
            ) as c:
                summary = c.request_all("summary")
            rows = sorted([r.asDict() for r in c.result().collect()], key=lambda r: r["partition"])
            c.unpersist()
            runs.append({"summary": summary, "result_df": rows, "same_driver": app.driver is not None and app.driver.pid == driver})
    found["barrier_cached"] = runs
    found["barrier_driver_left"] = running(driver)


found = {}
with tempfile.TemporaryDirectory(prefix="sps-connect-") as work:
    server, port, _ = start_connect_server(work)
    try:
        from pyspark import RDD
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.remote("sc://127.0.0.1:%d" % port).getOrCreate()
        found["session"] = type(spark).__module__
        serve_and_kill(spark, found)
        cancel_by_tag(spark, found)
        barrier_cached_attached(spark, found)
        # An RDD cannot exist on Connect: refused at once, naming what works instead.
        found["rdd"] = error_of(lambda: Cluster(spark, RDD.__new__(RDD), SUM_SERVER))
        found["after"] = spark.range(0, 10).count()
        spark.stop()
    finally:
        pids = stop_connect_server(server)
    found["server_pids"] = len(pids)
    found["server_left"] = [pid for pid in pids if running(pid)]
emit(found)
