"""A Node worker SIGKILLed on a local master with task retries (local[N,4]): Spark retries its
task, the new attempt serves, and stop() collects every partition's result once."""

from common import DEMO_SERVER, emit, kill_and_wait_retry, session
from spark_partition_server import Cluster


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    c = Cluster(spark, spark.sparkContext.parallelize(range(1000), 2), DEMO_SERVER, start_timeout_ms=120000)
    c.start()
    before, after = kill_and_wait_retry(c, 1)
    found = {"attempts": [before["attempt"], after["attempt"]], "state": after["state"], "served": c.request(1, "get_list")[:3]}
    c.stop()
    found["results"] = c.results
    return found


if __name__ == "__main__":
    spark = session("local[2,4]")
    emit(main(spark))
    spark.stop()
