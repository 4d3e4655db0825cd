"""Clusters one after another on one `attach`ed application: the same Node driver serves each,
a second cluster while one runs and a cluster on a closed application are refused, a start the
driver refuses leaves the application serving the next one, and closing it ends the driver."""

import os

from common import SUM_SERVER, emit, session
from pyspark.sql import functions as F
from spark_partition_server import Cluster, SparkPartitionServerError, attach


def refused(call):
    try:
        call()
    except SparkPartitionServerError as err:
        return {"code": err.code, "message": str(err)}
    return None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(spark):
    """The findings of this script on `spark` (run alone, or in a session shared with others: shared_session.py)."""
    sc = spark.sparkContext
    df = spark.range(0, 3000).withColumn("v", (F.col("id") * 7) % 1000).repartition(3)
    dicts = sc.parallelize([{"v": i} for i in range(100)], 2)
    found = {"spark_total": df.agg(F.count("*").alias("count"), F.sum("v").alias("sum")).first().asDict()}
    with attach(spark) as app:
        driver = app.driver.pid
        first = Cluster(app, df, SUM_SERVER, config={"column": "v", "arrow": True}, cache_result=True, show_progress=False, start_timeout_ms=120000)
        first.start()
        found["first"] = {"summary": first.request_all("summary")}
        found["second_while_running"] = refused(lambda: Cluster(app, dicts, SUM_SERVER, config={"column": "v"}).start())
        first.stop()
        found["first"]["results"] = first.results
        found["first"]["result_df"] = sorted((r.asDict() for r in first.result().collect()), key=lambda r: r["partition"])
        first.unpersist()
        found["bad_start"] = refused(lambda: Cluster(app, dicts, SUM_SERVER, config={"column": "v"}, start_timeout_ms="soon").start())
        with Cluster(app, dicts, SUM_SERVER, config={"column": "v"}, show_progress=False, start_timeout_ms=120000) as second:
            found["second"] = {"summary": second.request_all("summary")}
        found["second"]["results"] = second.results
        found["ids_differ"] = first.id != second.id
        found["same_driver"] = app.driver is not None and app.driver.pid == driver and alive(driver)
    found["driver_alive_after_close"] = alive(driver)
    found["after_close"] = refused(lambda: Cluster(app, dicts, SUM_SERVER, config={"column": "v"}).start())
    found["active_jobs"] = list(sc.statusTracker().getActiveJobsIds())
    return found


if __name__ == "__main__":
    spark = session("local[4]")
    emit(main(spark))
    spark.stop()
