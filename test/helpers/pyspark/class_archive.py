"""Runs the kinds of Spark work the test suite runs (SQL with a shuffle, Python rows, an RDD with a
Python worker, Arrow batches, Parquet) in one local session, so that a JVM started with
-XX:ArchiveClassesAtExit writes the classes they load into an archive the suite's JVMs start from
(`scripts/setup.sh --jvm-archive`)."""

import os
import sys
import tempfile
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import SparkSession


def double(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        yield pa.RecordBatch.from_arrays([pa.compute.multiply(b.column(0), 2)], names=["id"])


def main() -> None:
    # The Python workers run this interpreter (the venv's, with pyarrow).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
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
        spark.stop()


if __name__ == "__main__":
    main()
    sys.exit(0)
