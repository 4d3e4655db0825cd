"""Node partition servers (spark-partition-server) on your own PySpark DataFrame or RDD, in your
own SparkSession: `Cluster(spark, df_or_rdd, "server.ts").start()`, then query the partitions
with `request`/`request_all` (or by key: `partition_by=` and `request_by_key`), `stop()`, and
read the results with `get_result_rdd()`/`result()`. `attach(spark)` keeps the Node driver, the
bus and the runner open for cluster after cluster on one session."""

from .application import Application, attach
from .cluster import Cluster
from .errors import BadKeyError, DependencyMissingError, InvalidOptionError, RequestError, SparkPartitionServerError, UnsupportedError

__all__ = [
    "Application",
    "BadKeyError",
    "Cluster",
    "DependencyMissingError",
    "InvalidOptionError",
    "RequestError",
    "SparkPartitionServerError",
    "UnsupportedError",
    "attach",
]
