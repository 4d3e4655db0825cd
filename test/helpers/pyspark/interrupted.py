"""Ctrl-C (KeyboardInterrupt) in start(), once the job runs: what started is stopped."""

import _thread
import os
import threading
import time

from common import SUM_SERVER, emit, session
from spark_partition_server import Cluster


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    sc = spark.sparkContext
    c = Cluster(spark, sc.parallelize(range(10), 2), SUM_SERVER, config={"column": "v"}, start_timeout_ms=600000)
    seen = {}

    def interrupt_when_running():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runner, driver = c.application.runner, c.application.driver
            if runner is not None and runner.jobs and driver is not None:
                seen["driver"] = driver.pid
                _thread.interrupt_main()
                return
            time.sleep(0.05)

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    found = {}
    try:
        c.start()
        found["interrupted"] = False
    except KeyboardInterrupt:
        found["interrupted"] = True
    deadline = time.monotonic() + 60
    while sc.statusTracker().getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    found["active_jobs"] = list(sc.statusTracker().getActiveJobsIds())
    try:
        os.kill(seen["driver"], 0)
        found["driver_alive"] = True
    except ProcessLookupError:
        found["driver_alive"] = False
    # The session goes on: the next job runs.
    found["next_job"] = sc.parallelize(range(4), 2).sum()
    return found


if __name__ == "__main__":
    spark = session()
    emit(main(spark))
    spark.stop()
