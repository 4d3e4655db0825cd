"""Keys from PySpark (the key field is `id`, as keyed-server looks it up): a DataFrame (a string and a long key column) and an RDD of dicts placed by
`partition_by=`, requests routed with `request_by_key`, each row checked against `partition_of`;
a bad key and a missing column each a clear error."""

import os

from common import HELPERS, emit, session
from spark_partition_server import BadKeyError, Cluster, SparkPartitionServerError

KEYED_SERVER = os.path.join(os.path.dirname(HELPERS), "fixtures", "keyed-server.ts")


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    sc = spark.sparkContext
    found = {}

    def serve(data, column, probes):
        with Cluster(spark, data, KEYED_SERVER, partition_by=column, partitions=3, start_timeout_ms=120000, show_progress=False) as c:
            owners = {str(k): {"partition_of": c.partition_of(k), "answer": c.request_by_key(k, "owner", {"key": k})} for k in probes}
            try:
                c.request_by_key(1.5, "owner", {})
                bad = None
            except BadKeyError as err:
                bad = {"code": err.code, "message": err.message, "is_value_error": isinstance(err, ValueError)}
        placed = {p: [[row[column], c.partition_of(row[column])] for row in rows] for p, rows in c.results.items()}
        return {"owners": owners, "bad": bad, "placed": placed}

    strings = spark.createDataFrame([("user-%d" % i, i) for i in range(60)], ["id", "v"]).repartition(2)
    found["strings"] = serve(strings, "id", ["user-3", "user-41"])
    longs = spark.range(0, 60).selectExpr("id * 7919 AS id", "id AS v")
    found["longs"] = serve(longs, "id", [3 * 7919, 59 * 7919])
    dicts = sc.parallelize([{"id": "k%d" % i, "v": i} for i in range(30)], 2)
    found["dicts"] = serve(dicts, "id", ["k7"])
    try:
        serve(strings, "nope", [])
        found["missing"] = None
    except SparkPartitionServerError as err:
        found["missing"] = {"code": err.code, "message": err.message}
    return found


if __name__ == "__main__":
    spark = session("local[3]")
    emit(main(spark))
    spark.stop()
