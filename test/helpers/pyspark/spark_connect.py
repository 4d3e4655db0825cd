"""A Cluster on a Spark Connect client session: a real Connect server (pyspark's own
sbin/start-connect-server.sh, local[4,4], on a free port) in this script's process group, a client
session to it (SparkSession.builder.remote), a DataFrame of that session served by three partitions
(requests compared with Spark's own aggregate, a SIGKILLed worker retried by Spark, results
collected once), a run cancelled by its tag, and an RDD refused. The server is stopped by the pids
this script started, also when a step fails."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pyspark
from common import SUM_SERVER, emit, kill_and_wait_retry
from spark_partition_server import Cluster, SparkPartitionServerError

# How long a partition may take to serve again after its worker is killed (bounded polling).
RETRY_WAIT_S = 180.0

# How long the Connect server (a JVM, on a loaded machine) may take to listen.
LISTEN_WAIT_S = 240.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid):
    """The pids under `pid` (the server script's bash, spark-submit's JVM), deepest last."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(entry))
                todo.append(int(entry))
    return found


def start_connect_server(port, work):
    home = os.path.dirname(pyspark.__file__)
    env = dict(
        os.environ,
        SPARK_HOME=home,
        SPARK_LOG_DIR=work,
        SPARK_PID_DIR=work,
        # The server's Python workers (mapInArrow's) run this venv's Python, with pyarrow.
        PYSPARK_PYTHON=sys.executable,
    )
    log = open(os.path.join(work, "connect-server.log"), "wb")
    # --wait: in the foreground, so it stays in this process group (the test kills the group if
    # this script is killed) instead of being daemonized away from it.
    proc = subprocess.Popen(
        [
            os.path.join(home, "sbin", "start-connect-server.sh"),
            "--wait",
            "--master",
            # Four task slots for three partitions, and four attempts per task (local mode retries
            # only with local[N,F]).
            "local[4,4]",
            "--conf",
            "spark.connect.grpc.binding.port=%d" % port,
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.sql.shuffle.partitions=4",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + LISTEN_WAIT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the Connect server exited with %s:\n%s" % (proc.returncode, open(log.name).read()[-4000:]))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the Connect server did not listen on %d:\n%s" % (port, open(log.name).read()[-4000:])) from None
            time.sleep(0.5)


def running(pid):
    """True while `pid` exists and is not a zombie (a killed child its parent has not reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_connect_server(proc):
    """Kills the server script and everything under it (spark-submit's JVM); returns their pids."""
    pids = [proc.pid] + descendants(proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 60
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pids


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
    driver = cluster._driver.pid
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


found = {}
port = free_port()
with tempfile.TemporaryDirectory(prefix="sps-connect-") as work:
    server = start_connect_server(port, work)
    try:
        from pyspark import RDD
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.remote("sc://127.0.0.1:%d" % port).getOrCreate()
        found["session"] = type(spark).__module__
        serve_and_kill(spark, found)
        cancel_by_tag(spark, found)
        # An RDD cannot exist on Connect: refused at once, naming what works instead.
        found["rdd"] = error_of(lambda: Cluster(spark, RDD.__new__(RDD), SUM_SERVER))
        found["after"] = spark.range(0, 10).count()
        spark.stop()
    finally:
        pids = stop_connect_server(server)
    found["server_pids"] = len(pids)
    found["server_left"] = [pid for pid in pids if running(pid)]
emit(found)
