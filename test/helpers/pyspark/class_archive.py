"""Runs the kinds of Spark work the test suite runs (SQL with a shuffle, Python rows, an RDD with a
Python worker, Arrow batches, Parquet) in one local session whose driver JVM writes the classes
they load into the archive named by $SPS_CLASS_ARCHIVE (-XX:ArchiveClassesAtExit), which the
suite's JVMs start from (`scripts/setup.sh --jvm-archive`). Only the driver JVM is given the
option (spark-submit's launcher JVM would write its own few classes there first), and this script
ends only once that JVM has exited, so its archive is whole when the script's caller reads it."""

import os
import sys
import tempfile
from collections.abc import Iterator

import pyarrow as pa
from pyspark import SparkContext
from pyspark.sql import SparkSession


def double(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        yield pa.RecordBatch.from_arrays([pa.compute.multiply(b.column(0), 2)], names=["id"])


def main() -> None:
    # The Python workers run this interpreter (the venv's, with pyarrow).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    archive = os.environ["SPS_CLASS_ARCHIVE"]
    os.environ["PYSPARK_SUBMIT_ARGS"] = "--driver-java-options -XX:ArchiveClassesAtExit=%s pyspark-shell" % archive
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sps-class-archive")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        df = spark.range(10_000).selectExpr("id", "id % 7 AS k")
        df.groupBy("k").count().collect()
        spark.createDataFrame([{"a": i, "b": str(i)} for i in range(100)]).repartition(3).collect()
        spark.sparkContext.parallelize(range(1_000), 2).map(lambda x: x * 2).sum()
        df.select("id").mapInArrow(double, "id long").agg({"id": "sum"}).collect()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "t.parquet")
            df.write.parquet(path)
            spark.read.parquet(path).createOrReplaceTempView("t")
            spark.sql("SELECT k, sum(id) FROM t GROUP BY k").collect()
    finally:
        gateway = SparkContext._gateway
        spark.stop()
        # The JVM writes its archive as it exits, which it does once its stdin closes.
        proc = getattr(gateway, "proc", None)
        if gateway is not None and proc is not None:
            gateway.shutdown()
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=600)


if __name__ == "__main__":
    main()
    sys.exit(0)
