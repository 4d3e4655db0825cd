"""Node partition servers (spark-partition-server) on your own PySpark DataFrame or RDD, in your
own SparkSession: `Cluster(spark, df_or_rdd, "server.ts").start()`, then query the partitions
with `request`/`request_all` (or by key: `partition_by=` and `request_by_key`), `stop()`, and read the results with `get_result_rdd()`/`result()`."""

from .cluster import Cluster
from .errors import BadKeyError, DependencyMissingError, InvalidOptionError, RequestError, SparkPartitionServerError, UnsupportedError

__all__ = ["BadKeyError", "Cluster", "DependencyMissingError", "InvalidOptionError", "RequestError", "SparkPartitionServerError", "UnsupportedError"]
