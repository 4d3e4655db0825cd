"""A Cluster on a Spark Connect server on another host ($SPS_CONNECT_URL, a network namespace):
the run's bus listens at this host's address on the route to that server, whose tasks start the
partitions there and reach the bus from there; requests, hosts and results as on a local server."""

import os

from common import SUM_SERVER, emit
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from spark_partition_server import Cluster
from spark_partition_server.session import connect_bus_host

spark = SparkSession.builder.remote(os.environ["SPS_CONNECT_URL"]).getOrCreate()
df = spark.range(0, 900).withColumn("v", F.col("id") % 10).repartition(3)
found = {
    "spark_total": df.agg(F.count("*").alias("count"), F.sum("v").alias("sum")).first().asDict(),
    "bus_host": connect_bus_host(spark),
}
with Cluster(spark, df, SUM_SERVER, config={"column": "v", "arrow": True}, show_progress=False, start_timeout_ms=240000) as c:
    found["summary"] = c.request_all("summary")
    found["hosts"] = sorted({host for host, _ in c.get_hosts().values()})
    found["members"] = [{"partition": m["partition"], "host": m["host"], "state": m["state"]} for m in c.members()]
found["results"] = c.results
spark.stop()
emit(found)
