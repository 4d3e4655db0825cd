"""The Spark jobs of a run on the Connect server of connect_server.py, as its Spark UI's REST API
tells them (argv: Connect port, UI port, the run's tag, `running` or `ended`, a bound in seconds).

`running`: waits (bounded) until a job holding the tag runs. `ended`: waits (bounded) until no job
holding the tag runs and no task runs on any executor, then checks that a fresh client session of
the server still runs a job. Prints the findings: the tagged jobs' statuses and failed tasks, the
executors' active tasks, the seconds waited."""

import json
import sys
import time
import urllib.request

from common import emit

port, ui, tag, mode, bound = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
started = time.monotonic()


def get(path):
    """One REST answer; a slow one (the server's JVM on a loaded host) is asked again, within the bound."""
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/%s" % (ui, path), timeout=30) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() - started > bound:
                raise
            time.sleep(1)


def state():
    app = get("applications")[0]["id"]
    # A Connect operation's user tags reach its jobs as Spark job tags that end with the tag.
    jobs = [j for j in get("applications/%s/jobs" % app) if any(t.endswith(tag) for t in j.get("jobTags", []))]
    active = sum(e["activeTasks"] for e in get("applications/%s/executors" % app))
    return jobs, active


def done(jobs, active):
    if mode == "running":
        return any(j["status"] == "RUNNING" for j in jobs)
    return active == 0 and not any(j["status"] == "RUNNING" for j in jobs)


jobs, active = state()
while not done(jobs, active) and time.monotonic() - started < bound:
    time.sleep(0.5)
    jobs, active = state()
found = {
    "waited_s": round(time.monotonic() - started, 1),
    "jobs": [{"status": j["status"], "failed_tasks": j["numFailedTasks"], "killed_tasks": j["numKilledTasks"]} for j in jobs],
    "active_tasks": active,
}
if mode == "ended":
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote("sc://127.0.0.1:%s" % port).getOrCreate()
    found["fresh_count"] = spark.range(0, 10).count()
    spark.stop()
emit(found)
