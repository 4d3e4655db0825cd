"""The PySpark side of the pyspark benchmark: the Python package's Cluster on a DataFrame of the
user's own session (local[4]), timed as a user would see it. Arguments: the bench server module,
the SQL of the data, its rows, partitions, timed starts, timed requests, the Spark conf (JSON). Prints one line
`SPS-BENCH {json}`: start ms per run (with a new application each start, and on one application
attached once, in turns), load rate per partition (rows/s, measured inside the server), request
round trips (ms)."""

import json
import sys
import time

from pyspark.sql import SparkSession
from spark_partition_server import Cluster, attach


def main():
    server, sql = sys.argv[1], sys.argv[2]
    rows, parts, reps, requests = (int(a) for a in sys.argv[3:7])
    builder = SparkSession.builder.master("local[4]").appName("sps-bench-pyspark").config("spark.ui.enabled", "false")
    for k, v in json.loads(sys.argv[7]).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.sql(sql)
    out = {"startMs": [], "attachedStartMs": [], "loadRowsPerS": [], "requestMs": []}
    app = attach(spark)
    # Run 0 warms up (the server module's compilation, the JIT, Spark's first job) and is not timed.
    # Each run starts a cluster with its own application, then one on the attached one.
    for run in range(reps + 1):
        for on in (spark, app):
            c = Cluster(on, df, server, config={"store": "discard", "read": "arrow"}, show_progress=False, start_timeout_ms=180000)
            t0 = time.perf_counter()
            c.start()
            start_ms = (time.perf_counter() - t0) * 1000
            try:
                stats = c.request_all("stats")
                for p, st in stats.items():
                    if isinstance(st, Exception):
                        raise RuntimeError("stats of partition %d: %s" % (p, st))
                if sum(st["rows"] for st in stats.values()) != rows:
                    raise RuntimeError("loaded %r rows, expected %d" % ([st["rows"] for st in stats.values()], rows))
                if run == 0:
                    for i in range(min(requests, 200)):
                        c.request(i % parts, "stats")
                    continue
                out["startMs" if on is spark else "attachedStartMs"].append(start_ms)
                if on is app:
                    continue
                out["loadRowsPerS"].extend(st["rows"] / st["loadMs"] * 1000 for st in stats.values())
                if run == reps:
                    for i in range(requests):
                        t1 = time.perf_counter()
                        c.request(i % parts, "stats")
                        out["requestMs"].append((time.perf_counter() - t1) * 1000)
            finally:
                c.stop()
    app.close()
    sys.stdout.write("SPS-BENCH " + json.dumps(out) + "\n")
    sys.stdout.flush()
    spark.stop()


main()
