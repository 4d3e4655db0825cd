"""Shared by the Python package's test scripts: a local session and one JSON line of findings."""

import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(HELPERS))
SUM_SERVER = os.path.join(HELPERS, "pyspark-sum-server.ts")
DEMO_SERVER = os.path.join(ROOT, "examples", "demo-server.ts")


def session(master="local[2]"):
    """A session on `master`, or on $SPS_TEST_MASTER when the test gives one (a standalone cluster);
    with $SPS_TEST_DRIVER_HOST, the address executors on other hosts reach the driver at; with
    $SPS_TEST_EXECUTORS, returned once that many executors joined (see `wait_for_executors`)."""
    from pyspark.sql import SparkSession

    master = os.environ.get("SPS_TEST_MASTER", master)

    spark = (
        SparkSession.builder.master(master)
        .appName("sps-python-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
    )
    driver = os.environ.get("SPS_TEST_DRIVER_HOST")
    if driver:
        spark = spark.config("spark.driver.host", driver).config("spark.driver.bindAddress", driver)
    spark = spark.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    wanted = os.environ.get("SPS_TEST_EXECUTORS")
    if wanted:
        wait_for_executors(spark, int(wanted))
    return spark


def wait_for_executors(spark, wanted, timeout_s=180.0):
    """Waits until `wanted` executors joined the application. A cluster master's executors join one
    by one: a job submitted once the first one's cores suffice runs every task there, and a later
    run's task then lands on an executor that never ran one, paying its cold start (the Python
    worker daemon, the jar) inside that run's registration budget."""
    tracker = spark.sparkContext.statusTracker()
    deadline = time.monotonic() + timeout_s
    while True:
        # The driver is listed among the executors.
        joined = len(tracker.getExecutorInfos()) - 1
        if joined >= wanted:
            return
        if time.monotonic() >= deadline:
            raise RuntimeError("%d of %d executors joined the application within %g s" % (joined, wanted, timeout_s))
        time.sleep(0.2)


def emit(findings):
    """The script's findings, as the last line of its stdout."""
    sys.stdout.write("SPS-FINDINGS " + json.dumps(findings, default=str) + "\n")
    sys.stdout.flush()


def kill_and_wait_retry(cluster, partition, wait_s=120.0):
    """SIGKILLs `partition`'s Node worker and waits (bounded polling) until the supervisor sees
    its next attempt serving; returns its member before and after."""
    before = {m["partition"]: m for m in cluster.members()}[partition]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    after = before
    while time.monotonic() < deadline:
        after = {m["partition"]: m for m in cluster.members()}[partition]
        if after["attempt"] > before["attempt"] and after["state"] == "serving":
            break
        time.sleep(0.2)
    return before, after
