"""The seed's demo in Python: a DemoCluster subclass with its own query method (over HTTP, as the
seed's), on 1000 numbers in 2 partitions of an RDD, then request, request_all, stop and results."""

import urllib.request

from common import DEMO_SERVER, emit, session
from spark_partition_server import Cluster


class DemoCluster(Cluster):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    def get_partition_list(self, ind):
        host, port = self.get_hosts()[ind]
        with urllib.request.urlopen("http://%s:%d/app/get_list" % (host, port), timeout=30) as rsp:
            return list(map(int, rsp.read().decode().split(",")))


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    sc = spark.sparkContext
    rdd = sc.parallelize(range(1000), 2)
    c = DemoCluster(sc, rdd, DEMO_SERVER, cache_result=True, start_timeout_ms=120000, register_timeout_ms=120000)
    c.start()
    found = {
        "hosts": {p: [h, isinstance(port, int)] for p, (h, port) in c.get_hosts().items()},
        "http0": c.get_partition_list(0),
        "nats0": c.request(0, "get_list"),
        "all": c.request_all("get_list"),
        "attempts": [m["attempt"] for m in c.members()],
    }
    c.stop()
    found["results"] = c.results
    found["result_rdd"] = sorted(c.get_result_rdd().collect(), key=lambda r: r["partition"])
    found["result_df"] = sorted((r.asDict() for r in c.result().collect()), key=lambda r: r["partition"])
    c.unpersist()

    # Started again, as the seed's cluster can be, and stopped by a with block.
    with DemoCluster(spark, rdd, DEMO_SERVER, start_timeout_ms=120000, register_timeout_ms=120000) as again:
        found["again"] = again.request(1, "get_list")[:3]
    found["again_results"] = again.results
    return found


if __name__ == "__main__":
    spark = session()
    emit(main(spark))
    spark.stop()
