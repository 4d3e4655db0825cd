"""What the Python package serves: a DataFrame only a session can make (a join with a Python UDF,
repartitioned to 3) read as Arrow and summed against Spark's own aggregate; the same as row
batches; an RDD of Python dicts; empty partitions; `partitions=` repartitioning."""

from common import SUM_SERVER, emit, session
from pyspark.sql import functions as F
from pyspark.sql.types import LongType
from spark_partition_server import Cluster

# Up to 4 servers run at once (one task slot each).


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    sc = spark.sparkContext

    @F.udf(returnType=LongType())
    def weight(k):
        return k * 3 + 1

    left = spark.range(0, 5000).withColumn("k", F.col("id") % 50)
    right = spark.range(0, 50).withColumnRenamed("id", "k").withColumn("w", weight(F.col("k")))
    df = left.join(right, "k").withColumn("v", F.col("id") * F.col("w")).repartition(3)
    expected = df.agg(F.sum("v").alias("s"), F.count("*").alias("n")).collect()[0]
    found = {"expected": {"sum": expected["s"], "count": expected["n"]}}

    def serve(data, config, **options):
        with Cluster(spark, data, SUM_SERVER, config=config, start_timeout_ms=120000, **options) as c:
            summary = c.request_all("summary")
            echo = c.request(0, "echo", {"a": [1, 2.5, "x"]})
        return {"partitions": len(summary), "summary": summary, "results": c.results, "echo": echo}

    found["arrow"] = serve(df, {"column": "v", "arrow": True})
    found["rows"] = serve(df, {"column": "v"})
    dicts = sc.parallelize([{"name": "r%d" % i, "v": i} for i in range(100)], 2)
    found["dicts"] = serve(dicts, {"column": "v"})
    found["empty_df"] = serve(spark.range(0, 2, numPartitions=4).withColumnRenamed("id", "v"), {"column": "v", "arrow": True})
    found["empty_rdd"] = serve(sc.parallelize([], 3), {"column": "v"})
    found["repartitioned"] = serve(df, {"column": "v", "arrow": True}, partitions=2)
    return found


if __name__ == "__main__":
    spark = session("local[4]")
    emit(main(spark))
    spark.stop()
