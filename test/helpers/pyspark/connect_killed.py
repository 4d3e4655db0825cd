"""A Cluster on a Spark Connect client session (to the server of connect_server.py, port in argv),
three partitions serving; prints the pids of what it started (Node driver, its children, the Node
workers) and the run's tag, then waits to be SIGKILLed by the test."""

import json
import sys
import time

from common import SUM_SERVER
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from spark_partition_server import Cluster

spark = SparkSession.builder.remote("sc://127.0.0.1:%s" % sys.argv[1]).getOrCreate()
df = spark.range(0, 30).withColumn("v", F.col("id")).repartition(3)
c = Cluster(spark, df, SUM_SERVER, config={"column": "v"}, show_progress=False, start_timeout_ms=240000)
c.start()
driver = c.application.driver.pid
with open("/proc/%d/task/%d/children" % (driver, driver)) as f:
    children = [int(p) for p in f.read().split()]
pids = {"driver": driver, "children": children, "workers": [m["pid"] for m in c.members()], "tag": "sps-%s" % c.id}
sys.stdout.write("SPS-PIDS " + json.dumps(pids) + "\n")
sys.stdout.flush()
while True:
    time.sleep(60)
