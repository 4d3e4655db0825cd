"""A runner that cannot start in the session it is given (the user stopped it): start() raises why,
at once, instead of the driver waiting out the runner's ready timeout."""

from common import SUM_SERVER, emit, session
from spark_partition_server import Cluster, SparkPartitionServerError


def main(spark):
    """The findings of this script on `spark`, which it stops (in a shared session: the last script)."""
    rdd = spark.sparkContext.parallelize(range(10), 2)
    spark.stop()
    found = {"type": None}
    try:
        Cluster(spark, rdd, SUM_SERVER, partitions=2).start()
    except SparkPartitionServerError as err:
        found = {"type": type(err).__name__, "code": err.code, "message": str(err)}
    return found


if __name__ == "__main__":
    emit(main(session()))
