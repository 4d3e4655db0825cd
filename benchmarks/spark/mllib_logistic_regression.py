"""Spark MLlib's LogisticRegression on a JSON-lines dataset, the reference for
examples/logistic-regression.ts (its test checks accuracy; the bench compares time per iteration).

spark-submit --master local[P] mllib_logistic_regression.py <path> <features,csv> <max_iter> <partitions>
Prints one line "BENCH_JSON {...}": training accuracy, fit time, iterations, ms per iteration.
"""

import json
import sys
import time

path, features, max_iter, partitions = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])

from pyspark.ml.classification import LogisticRegression  # noqa: E402
from pyspark.ml.feature import VectorAssembler  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

spark = SparkSession.builder.appName("sps-mllib-logreg").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
data = VectorAssembler(inputCols=features, outputCol="features").transform(spark.read.json(path)).select("features", "label")
data = data.repartition(partitions).cache()
rows = data.count()
t0 = time.perf_counter()
model = LogisticRegression(maxIter=max_iter, regParam=0.0).fit(data)
fit_ms = (time.perf_counter() - t0) * 1000.0
iterations = model.summary.totalIterations
out = {
    "rows": rows,
    "accuracy": model.summary.accuracy,
    "fit_ms": fit_ms,
    "iterations": iterations,
    "ms_per_iteration": fit_ms / max(1, iterations),
    "weights": model.coefficients.toArray().tolist(),
    "bias": model.intercept,
}
print("BENCH_JSON " + json.dumps(out))
spark.stop()
