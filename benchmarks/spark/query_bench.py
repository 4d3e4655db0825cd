"""Spark side of benchmark 1: the same rows and questions as the partition servers, as Spark actions.

Run with spark-submit --master local[4] query_bench.py <rows> <partitions> <reps> <lt>.
Builds rows (id, v = id * 7919 % 1000) as a cached DataFrame and a cached RDD, then times
<reps> repetitions of: count where v < lt, and lookup by key, both ways. Prints one line
"BENCH_JSON {...}" with the samples in milliseconds.
"""
import json
import sys
import time

t_launch = time.time()
from pyspark.sql import SparkSession, functions as F  # noqa: E402

rows, parts, reps, lt = (int(a) for a in sys.argv[1:5])
spark = (
    SparkSession.builder.appName("sps-bench-query")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", str(parts))
    .getOrCreate()
)
sc = spark.sparkContext
sc.setLogLevel("ERROR")
t_up = time.time()


def timed(fn, n, warmup=3):
    for _ in range(warmup):
        fn(0)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def key(i):
    return (i * 104729) % rows


t0 = time.perf_counter()
df = spark.range(0, rows, 1, parts).withColumn("v", (F.col("id") * 7919) % 1000).cache()
df_rows = df.count()
rdd = sc.parallelize(range(rows), parts).map(lambda i: (i, (i * 7919) % 1000)).cache()
rdd_rows = rdd.count()
cache_ms = (time.perf_counter() - t0) * 1000.0

df_count = df.filter(F.col("v") < lt).count()
rdd_count = rdd.filter(lambda r: r[1] < lt).count()
samples = {
    "trivial_job": timed(lambda i: sc.parallelize([1], 1).count(), reps),
    "df_count": timed(lambda i: df.filter(F.col("v") < lt).count(), reps),
    "df_lookup": timed(lambda i: df.filter(F.col("id") == key(i)).collect(), reps),
    "rdd_count": timed(lambda i: rdd.filter(lambda r: r[1] < lt).count(), max(3, reps // 3), 1),
    "rdd_lookup": timed(lambda i: rdd.filter(lambda r, k=key(i): r[0] == k).collect(), max(3, reps // 3), 1),
}
print("BENCH_JSON " + json.dumps({
    "spark_version": spark.version,
    "master": sc.master,
    "rows": [df_rows, rdd_rows],
    "answers": {"df_count": df_count, "rdd_count": rdd_count},
    "app_up_ms": (t_up - t_launch) * 1000.0,
    "cache_ms": cache_ms,
    "samples": samples,
}), flush=True)
spark.stop()
