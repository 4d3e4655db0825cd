"""Bad input to the Python package's Cluster: each a clear Python exception, before any Spark job."""

import os

from common import SUM_SERVER, emit, session
from spark_partition_server import Cluster, SparkPartitionServerError


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    sc = spark.sparkContext
    rdd = sc.parallelize(range(10), 2)

    def last_job():
        """Runs a job of its own and returns its id: ids are consecutive, so a gap is a job in between."""
        sc.parallelize([1], 1).count()
        return max(sc.statusTracker().getJobIdsForGroup(None))

    def failure(make):
        before = last_job()
        try:
            make()
        except SparkPartitionServerError as err:
            return {"type": type(err).__name__, "code": err.code, "message": str(err), "jobs": last_job() - before - 1}
        return {"type": None}

    def without(name, value, make):
        saved = os.environ.get(name)
        os.environ[name] = value
        try:
            return failure(make)
        finally:
            if saved is None:
                del os.environ[name]
            else:
                os.environ[name] = saved

    found = {
        "server": failure(lambda: Cluster(spark, rdd, "no-such-server.ts")),
        "data": failure(lambda: Cluster(spark, [1, 2, 3], SUM_SERVER)),
        "unknown": failure(lambda: Cluster(spark, rdd, SUM_SERVER, no_such_option=1).start()),
        "session_owned": failure(lambda: Cluster(spark, rdd, SUM_SERVER, max_failures=3).start()),
        "bad_value": failure(lambda: Cluster(spark, rdd, SUM_SERVER, start_timeout_ms=-5).start()),
        "node": without("SPS_NODE", "/nonexistent/node", lambda: Cluster(spark, rdd, SUM_SERVER)),
        "library": without("SPS_NODE_PACKAGE", "/nonexistent/package", lambda: Cluster(spark, rdd, SUM_SERVER)),
    }
    return found


if __name__ == "__main__":
    spark = session()
    emit(main(spark))
    spark.stop()
