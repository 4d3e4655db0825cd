"""A Node worker SIGKILLed on local[2,4]: Spark retries its task, the new attempt serves, and
stop() collects every partition's result once."""

import os
import signal
import time

from common import DEMO_SERVER, emit, session
from spark_partition_server import Cluster

spark = session("local[2,4]")
c = Cluster(spark, spark.sparkContext.parallelize(range(1000), 2), DEMO_SERVER, start_timeout_ms=120000)
c.start()
before = {m["partition"]: m for m in c.members()}
os.kill(before[1]["pid"], signal.SIGKILL)
# Until the supervisor sees partition 1's next attempt serving (bounded).
deadline = time.monotonic() + 120
after = before
while time.monotonic() < deadline:
    after = {m["partition"]: m for m in c.members()}
    if after[1]["attempt"] > before[1]["attempt"] and after[1]["state"] == "serving":
        break
    time.sleep(0.2)
found = {"attempts": [before[1]["attempt"], after[1]["attempt"]], "state": after[1]["state"], "served": c.request(1, "get_list")[:3]}
c.stop()
found["results"] = c.results
emit(found)
spark.stop()
