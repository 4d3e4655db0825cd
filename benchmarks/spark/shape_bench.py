"""Bare Spark jobs shaped like a partition-server cluster, for benchmarks 3 and 4.

spark-submit --master <m> shape_bench.py <launch_epoch_ms> <sizes,csv> <reps> <load_rows> <load_parts>
  * app up: from the spark-submit launch to a SparkContext with executors registered;
  * for each size N, <reps> jobs of N tasks (mapPartitionsWithIndex) that each report when they
    started: submit -> all tasks launched, submit -> job done;
  * load: per-task rate of a Python task iterating its partition of small and ~1 KB records;
  * stop: SparkContext.stop().
Prints one line "BENCH_JSON {...}" (milliseconds, rows per second).
"""

import json
import sys
import time

launch_ms = float(sys.argv[1])
sizes = [int(x) for x in sys.argv[2].split(",")]
reps, load_rows, load_parts = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

from pyspark.sql import SparkSession  # noqa: E402

spark = SparkSession.builder.appName("sps-bench-shape").config("spark.ui.enabled", "false").getOrCreate()
sc = spark.sparkContext
sc.setLogLevel("ERROR")
context_ms = time.time() * 1000.0 - launch_ms
spark_version = spark.version
deadline = time.time() + 60
while sc._jsc.sc().getExecutorMemoryStatus().size() < 2 and not sc.master.startswith("local") and time.time() < deadline:
    time.sleep(0.02)
app_up_ms = time.time() * 1000.0 - launch_ms


def task(i, it):
    start = time.time()
    for _ in it:
        pass
    time.sleep(0.05)  # a task that serves briefly
    yield (i, start)


jobs = {}
first_job_ms = None
for n in sizes:
    launched, done = [], []
    for r in range(reps):
        t0 = time.time()
        starts = sc.parallelize(range(n), n).mapPartitionsWithIndex(task).collect()
        t1 = time.time()
        launched.append((max(s for _, s in starts) - t0) * 1000.0)
        done.append((t1 - t0) * 1000.0)
        if first_job_ms is None:
            first_job_ms = done[-1]
    jobs[str(n)] = {"tasks_launched_ms": launched, "job_done_ms": done}


def load_rate(make):
    def run(it):
        t0 = time.perf_counter()
        c = 0
        for _ in it:
            c += 1
        yield c / max(time.perf_counter() - t0, 1e-9)

    rdd = sc.parallelize(range(load_rows), load_parts).map(make)
    return rdd.mapPartitions(run).collect()


PAYLOAD = "x" * 1000
load = {
    "small": load_rate(lambda i: (i, (i * 7919) % 1000)),
    "1kb": load_rate(lambda i: (i, (i * 7919) % 1000, PAYLOAD)),
}
t0 = time.time()
spark.stop()
stop_ms = (time.time() - t0) * 1000.0
print(
    "BENCH_JSON "
    + json.dumps(
        {
            "spark_version": spark_version,
            "context_ms": context_ms,
            "app_up_ms": app_up_ms,
            "first_job_ms": first_job_ms,
            "jobs": jobs,
            "load": load,
            "stop_ms": stop_ms,
        }
    ),
    flush=True,
)
