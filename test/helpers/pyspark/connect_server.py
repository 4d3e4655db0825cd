"""A real Spark Connect server for the tests: pyspark's own sbin/start-connect-server.sh (local[4,4],
on a free port) in the calling process's group, found and stopped by the pids it started.

Run as a script, it keeps a server up for a test that drives its own clients: it prints
`SPS-CONNECT {"port", "ui", "pids"}` once the server listens (with its Spark UI on port `ui`), and
stops the server when its stdin ends; the test kills its process group if it ends first."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pyspark

# How long the Connect server (a JVM, on a loaded machine) may take to listen.
LISTEN_WAIT_S = 240.0
# The address it listens at: loopback, or a test host's own ($SPS_CONNECT_BIND, inside its namespace).
BIND = os.environ.get("SPS_CONNECT_BIND", "127.0.0.1")


def free_port():
    with socket.socket() as s:
        s.bind((BIND, 0))
        return s.getsockname()[1]


def descendants(pid):
    """The pids under `pid` (the server script's bash, spark-submit's JVM), deepest last."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(entry))
                todo.append(int(entry))
    return found


def running(pid):
    """True while `pid` exists and is not a zombie (a killed child its parent has not reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# What the server logs once its gRPC service is bound, and when a port it was given is taken.
STARTED = b"Spark Connect server started at:"
BIND_FAILED = b"java.net.BindException"
# Ports are picked free, then bound by the JVM seconds later: another process may take one meanwhile.
PORT_TRIES = 3


def start_connect_server(work, ui=False):
    """Starts the server on free ports (its Spark UI too with `ui`, else none) and returns
    `(process, port, ui_port)` once it listens; a port taken before the server bound it is picked
    again."""
    for attempt in range(PORT_TRIES):
        port, ui_port = free_port(), (free_port() if ui else None)
        try:
            return _start_on(port, work, ui_port), port, ui_port
        except _PortTaken:
            if attempt == PORT_TRIES - 1:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _start_on(port, work, ui_port):
    home = os.path.dirname(pyspark.__file__)
    env = dict(
        os.environ,
        SPARK_HOME=home,
        SPARK_LOG_DIR=work,
        SPARK_PID_DIR=work,
        # The server's Python workers (mapInArrow's) run this venv's Python, with pyarrow.
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP=BIND,
    )
    ui_conf = ["spark.ui.enabled=false"] if ui_port is None else ["spark.ui.enabled=true", "spark.ui.port=%d" % ui_port, "spark.port.maxRetries=0"]
    confs = [
        "spark.connect.grpc.binding.port=%d" % port,
        "spark.connect.grpc.binding.address=%s" % BIND,
        *ui_conf,
        "spark.sql.shuffle.partitions=4",
    ]
    log_path = os.path.join(work, "connect-server.log")
    log = open(log_path, "wb")
    # --wait: in the foreground, so it stays in this process group (the test kills the group if
    # this script is killed) instead of being daemonized away from it.
    proc = subprocess.Popen(
        # Four task slots for three partitions, and four attempts per task (local mode retries only
        # with local[N,F]).
        [os.path.join(home, "sbin", "start-connect-server.sh"), "--wait", "--master", "local[4,4]"] + [a for c in confs for a in ("--conf", c)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + LISTEN_WAIT_S
    while True:
        with open(log_path, "rb") as f:
            said = f.read()
        # The server's own word, not a connection: a process that took the port would answer that.
        if STARTED in said and proc.poll() is None:
            return proc
        if proc.poll() is not None:
            why = _PortTaken if BIND_FAILED in said else RuntimeError
            raise why("the Connect server exited with %s:\n%s" % (proc.returncode, said.decode("utf-8", "replace")[-4000:]))
        if time.monotonic() > deadline:
            stop_connect_server(proc)
            raise RuntimeError("the Connect server did not start on %d:\n%s" % (port, said.decode("utf-8", "replace")[-4000:]))
        time.sleep(0.5)


def stop_connect_server(proc):
    """Kills the server script and everything under it (spark-submit's JVM); returns their pids."""
    pids = [proc.pid] + descendants(proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 60
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pids


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sps-connect-") as work:
        server, port, ui_port = start_connect_server(work, ui=True)
        try:
            pids = [server.pid] + descendants(server.pid)
            sys.stdout.write("SPS-CONNECT " + json.dumps({"port": port, "ui": ui_port, "pids": pids, "work": work}) + "\n")
            sys.stdout.flush()
            sys.stdin.read()
        finally:
            pids = stop_connect_server(server)
    # Said once the work folder (the server's log) is gone too: the test may end this process as
    # soon as it reads the line.
    sys.stdout.write("SPS-STOPPED " + json.dumps({"left": [pid for pid in pids if running(pid)]}) + "\n")
    sys.stdout.flush()
