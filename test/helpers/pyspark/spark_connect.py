"""A Cluster from a Spark Connect client session: a real Connect server (pyspark's own
sbin/start-connect-server.sh, local[2], on a free port) in this script's process group, a client
session to it (SparkSession.builder.remote), and what Cluster does with that session. The server
is stopped by the pids this script started, also when a step fails."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pyspark
from common import SUM_SERVER, emit
from spark_partition_server import Cluster, SparkPartitionServerError

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
            "local[2]",
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


found = {}
port = free_port()
with tempfile.TemporaryDirectory(prefix="sps-connect-") as work:
    server = start_connect_server(port, work)
    try:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.remote("sc://127.0.0.1:%d" % port).getOrCreate()
        df = spark.range(0, 100, 1, 2).selectExpr("id AS n")
        found["session"] = type(spark).__module__
        found["count"] = df.count()
        try:
            Cluster(spark, df, SUM_SERVER, partitions=2)
            found["error"] = None
        except SparkPartitionServerError as err:
            found["error"] = {"type": type(err).__name__, "code": err.code, "message": str(err)}
        spark.stop()
    finally:
        pids = stop_connect_server(server)
    found["server_pids"] = len(pids)
    found["server_left"] = [pid for pid in pids if running(pid)]
emit(found)
