"""Starts a cluster, prints the pids of what it started (Node driver, its children, the Node
workers), then waits to be SIGKILLed by the test."""

import json
import sys
import time

from common import DEMO_SERVER, session
from spark_partition_server import Cluster

spark = session()
c = Cluster(spark, spark.sparkContext.parallelize(range(10), 2), DEMO_SERVER, start_timeout_ms=120000)
c.start()
driver = c.application.driver.pid
with open("/proc/%d/task/%d/children" % (driver, driver)) as f:
    children = [int(p) for p in f.read().split()]
pids = {"driver": driver, "children": children, "workers": [m["pid"] for m in c.members()]}
sys.stdout.write("SPS-PIDS " + json.dumps(pids) + "\n")
sys.stdout.flush()
while True:
    time.sleep(60)
