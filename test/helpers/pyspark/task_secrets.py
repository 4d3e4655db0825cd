"""What a Spark task of a run carries: the runner builds a job of three partitions with known
secrets; the findings are which partitions' secrets appear in the task function PySpark ships to
every executor of the stage, in each partition's own task (the JVM partition Spark serializes into
that task alone), and what each task reads as its own."""

import asyncio
import os
import secrets

from common import ROOT, emit, session
from spark_partition_server.node import RUNNER_ENTRY, load_runner

runner = load_runner(os.path.join(ROOT, RUNNER_ENTRY))
spark = session("local[2]")
sc = spark.sparkContext
N = 3
keys = {p: secrets.token_hex(32) for p in range(N)}
seeds = {p: "SU" + secrets.token_hex(24).upper() for p in range(N)}
job = {
    "clusterId": "secrets-probe",
    "partitions": N,
    "source": {"kind": "range", "end": 12},
    "argv": ["node", "server.js"],
    "env": {},
    "secrets": {str(p): {"bus": '{"seed":"%s"}' % seeds[p], "partitionKey": keys[p]} for p in range(N)},
}


def holders(blob):
    """The partitions whose key or bus seed is in `blob`."""
    return sorted(p for p in range(N) if keys[p].encode() in blob or seeds[p].encode() in blob)


async def build():
    return runner.Runner(spark, "probe", None, "/nonexistent", 0).build_job(job)


tagged, _ = asyncio.run(build())
from pyspark.rdd import _prepare_for_python_RDD  # noqa: E402

# The command every executor running a task of the stage receives (as PySpark's _wrap_function makes it).
command, _, _, _ = _prepare_for_python_RDD(sc, (tagged.func, None, tagged._prev_jrdd_deserializer, tagged._jrdd_deserializer))
utils = sc._jvm.org.apache.spark.util.Utils
per_task = [holders(bytes(utils.serialize(part))) for part in tagged._jrdd.rdd().partitions()]


own_secret = runner._own_secret


def read_own(index, rows):
    own = own_secret(index, rows)
    yield index, own["partitionKey"] + own["bus"], sorted(rows)


read = [[p, holders(own.encode()), rows] for p, own, rows in tagged.prev.mapPartitionsWithIndex(read_own).collect()]
emit({"function": holders(bytes(command)), "tasks": per_task, "read": read})
spark.stop()
