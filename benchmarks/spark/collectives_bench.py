"""Spark's own collectives and aggregation, for the collectives benchmark.

spark-submit --master local[P] collectives_bench.py <partitions> <reps> <vector_len> <gather_bytes> <aggregate_reps>
  * barrier: BarrierTaskContext.barrier() in a barrier stage, timed call by call inside task 0;
  * allGather: BarrierTaskContext.allGather() of <gather_bytes> per task, timed the same way;
  * treeAggregate: the element-wise sum of one float32 numpy vector of <vector_len> per partition
    (cached, materialized first), timed on the driver, job by job, <aggregate_reps> times.
Prints one line "BENCH_JSON {...}" (milliseconds).
"""

import json
import sys
import time

parts, reps, vector_len, gather_bytes, aggregate_reps = (int(x) for x in sys.argv[1:6])

import numpy as np  # noqa: E402
from pyspark import BarrierTaskContext  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

spark = SparkSession.builder.appName("sps-bench-collectives").config("spark.ui.enabled", "false").getOrCreate()
sc = spark.sparkContext
sc.setLogLevel("ERROR")
warmup = max(2, reps // 10)


def timed(call):
    def run(it):
        ctx = BarrierTaskContext.get()
        for _ in range(warmup):
            call(ctx)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            call(ctx)
            times.append((time.perf_counter() - t0) * 1000.0)
        yield (ctx.partitionId(), times)

    return run


def barrier_series(call):
    out = sc.parallelize(range(parts), parts).barrier().mapPartitions(timed(call)).collect()
    return dict(out)[0]


barrier_ms = barrier_series(lambda ctx: ctx.barrier())
payload = "x" * gather_bytes
all_gather_ms = barrier_series(lambda ctx: ctx.allGather(payload))

vectors = sc.parallelize(range(parts), parts).map(lambda i: np.full(vector_len, i + 1, dtype=np.float32)).cache()
vectors.count()
zero = np.zeros(vector_len, dtype=np.float32)
tree_ms = []
for i in range(2 + aggregate_reps):
    t0 = time.perf_counter()
    total = vectors.treeAggregate(zero, lambda acc, v: acc + v, lambda a, b: a + b)
    if i >= 2:
        tree_ms.append((time.perf_counter() - t0) * 1000.0)
expected = parts * (parts + 1) / 2
assert float(total[0]) == expected and float(total[-1]) == expected, "treeAggregate gave a wrong sum"
print("BENCH_JSON " + json.dumps({"spark_version": spark.version, "barrier_ms": barrier_ms, "all_gather_ms": all_gather_ms, "tree_aggregate_ms": tree_ms}))
spark.stop()
