"""Runs several test scripts' `main(spark)` one after another in one local session, as a notebook
runs cell after cell: each script's findings (or its failure) as one `SPS-FINDINGS <script> {json}`
line. One session instead of one per script spares the suite a JVM start per script."""

import importlib
import json
import sys
import traceback

from common import session

# Tasks are retried (4 attempts), as worker_killed.py needs; the others never fail a task.
spark = session("local[4,4]")
for name in sys.argv[1:]:
    try:
        found = {"ok": importlib.import_module(name).main(spark)}
    except Exception:  # noqa: BLE001 - the test of that script reports it; the others go on
        found = {"error": traceback.format_exc()}
    sys.stdout.write("SPS-FINDINGS %s %s\n" % (name, json.dumps(found, default=str)))
    sys.stdout.flush()
spark.stop()
