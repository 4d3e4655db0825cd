"""Shared by the Python package's test scripts: a local session and one JSON line of findings."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(HELPERS))
SUM_SERVER = os.path.join(HELPERS, "pyspark-sum-server.ts")
DEMO_SERVER = os.path.join(ROOT, "examples", "demo-server.ts")


def session(master="local[2]"):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName("sps-python-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def emit(findings):
    """The script's findings, as the last line of its stdout."""
    sys.stdout.write("SPS-FINDINGS " + json.dumps(findings, default=str) + "\n")
    sys.stdout.flush()
