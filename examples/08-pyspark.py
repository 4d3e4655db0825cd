"""The seed's demo from PySpark: Node partition servers (examples/demo-server.ts) on the two
partitions of an RDD made in this session, queried over NATS, stopped, and their results read
back as an RDD. Needs the Python package (pip install -e python in a clone, after npm run setup
and npm run build) and, outside a clone, SPS_NODE_PACKAGE or the npm package in the folder.

    .venv/bin/python examples/08-pyspark.py
"""

import os

from pyspark.sql import SparkSession
from spark_partition_server import Cluster

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo-server.ts")


class DemoCluster(Cluster):
    """The seed's DemoCluster: a query method of its own."""

    def get_partition_list(self, ind):
        return self.request(ind, "get_list")


def main():
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    rdd = spark.sparkContext.parallelize(range(1000), 2)
    c = DemoCluster(spark, rdd, SERVER, cache_result=True)
    c.start()
    print("hosts:", c.get_hosts())
    print("partition 0 holds", len(c.get_partition_list(0)), "numbers, from", c.get_partition_list(0)[0])
    print("every partition's count:", {p: len(v) for p, v in c.request_all("get_list").items()})
    c.stop()
    print("results:", sorted(c.get_result_rdd().collect(), key=lambda r: r["partition"]))
    c.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
