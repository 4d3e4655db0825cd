"""Node partition servers (spark-partition-server) on your own PySpark DataFrame or RDD, in your
own SparkSession: `Cluster(spark, df_or_rdd, "server.ts").start()`, then query the partitions
with `request`/`request_all`, `stop()`, and read the results with `get_result_rdd()`/`result()`."""

from .cluster import Cluster
from .errors import DependencyMissingError, InvalidOptionError, RequestError, SparkPartitionServerError, UnsupportedError

__all__ = ["Cluster", "DependencyMissingError", "InvalidOptionError", "RequestError", "SparkPartitionServerError", "UnsupportedError"]
