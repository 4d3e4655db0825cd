"""PySpark runner of spark-partition-server, started by the TypeScript SparkApplication with
spark-submit. It is one long-lived Spark application that runs partition-server jobs on request.

Control is over NATS, with the msgpack envelope `{v, t, ...fields}` of the rest of the bus; every
message taken or sent is validated against the protocol's one JSON Schema (`--protocol`, generated
from src/protocol/schema.ts), and a malformed one is refused, counted and logged:

* application subjects `sps.<appId>.spark.<op>` on the application's bus, where only the driver
  may publish orders: `submit` (start a job), `dataset`, `sql`, `status`, `close`; the runner
  announces itself with `ready`;
* job subjects `sps.<clusterId>.spark.<event>` on the run's bus, where only the runner may publish:
  `job_started`, `result` (chunked records of one partition), `job_finished`, `job_failed`; it
  answers `cancel`, which only the driver may send.

A `submit` names a job file in the runner's private job directory (`--job-dir`, mode 0700): the
worker command, its environment and the run's secrets travel there, never on the bus. The runner's
own credentials arrive in the environment variable SPS_RUNNER_BUS, never in argv.

Executors never speak NATS: the task function (standard library only) spawns the Node worker and
hands it its partition's bus access and its attempt's secrets (derived from the partition key,
which reaches the task as the first element of its own partition and never in the task function
that every executor of the stage receives; see with_partition_secrets) on a pipe it reads once, pipes the
rows in (an Arrow IPC stream for DataFrame sources, JSON frames otherwise) and reads result frames
back; results return through Spark. The framing constants come from the protocol schema's
`framing` section, which the TypeScript side frames with too.
"""

import argparse
import asyncio
import json
import os
import re
import struct
import sys
import threading
import time
import traceback

# How often a running job's stages are polled for progress (Spark's status tracker, in-process).
STAGE_POLL_S = 0.5
# Largest NATS payload the runner sends (nats-server's default max_payload is 1 MiB).
MAX_MESSAGE_BYTES = 768 * 1024
# What a task's output items hold (their third field): the attempt header, a record, one Arrow
# IPC stream of a result with a schema, or the failure report of a worker whose failure a retry
# cannot fix (the task then ends without an error, so Spark does not retry it).
HEADER, RECORD, ARROW, FAILED = 0, 1, 2, 3
# Liveness: a worker that sends no tick for the job's hang timeout is killed (see _watch_liveness).
DEFAULT_HANG_TIMEOUT_MS = 10000
# How long a new worker may take to send its first tick, on top of the hang timeout.
STARTUP_GRACE_MS = 30000
# Marks an argv or environment value as a path inside the job's shipped program (ship-program.ts).
PROGRAM_PREFIX = "sps-program:"
# Tags the first element a task reads: its partition's secrets (see with_partition_secrets).
SECRET_TAG = "sps-partition-secret"
# The JVM helper built beside this file (src/spark/runner/PartitionSecrets.java) and its class.
HELPER_JAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sps-runner.jar")
HELPER_CLASS = "sps.runner.PartitionSecrets"
# Option `isolation: 'thread'`: how long a run's partition host stays without attempts before it
# exits, and how long a task waits for a host it started to listen.
HOST_IDLE_MS = 10000
HOST_START_S = 30.0
# What a task shows of its partition host's own output when the host died under it: its last
# lines, read from the end of the host's log (whatever its size).
HOST_LOG_TAIL_BYTES = 4096
HOST_LOG_TAIL_LINES = 10
# How long a thread told to end (hung) may take before its task stops waiting for its host.
THREAD_KILL_GRACE_S = 10.0


# ---------------------------------------------------------------------------------------------
# Keys: the one key -> partition function (src/protocol/key-partition.ts, docs/protocol.md "Keys").
# ---------------------------------------------------------------------------------------------


def key_token(key):
    """The token a key is hashed as: a string as it is, an integer as its decimal string. A bool,
    a float that is not an integer, or anything else is refused (as the TypeScript side does)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        raise ValueError("a key must be a string or an integer, got a bool")
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float) and key.is_integer() and abs(key) <= 2**53 - 1:
        # An integral double (a JSON number) is the integer it holds, as in JavaScript.
        return str(int(key))
    raise ValueError("a key must be a string or an integer, got %s %r" % (type(key).__name__, key))


def fnv1a32(data):
    """FNV-1a, 32 bit, of `data` (bytes), as nats-server's partition() mapping hashes a token."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def partition_of_key(key, partitions):
    """The partition (of `partitions`) that owns `key`: FNV-1a 32 of its token's UTF-8 bytes, modulo `partitions`."""
    return fnv1a32(key_token(key).encode("utf-8")) % partitions


def row_partition(row, field, partitions, where):
    """The partition owning the key in `field` of `row` (a dict or a Spark Row); the error names
    `where` the row is (its source partition and index) and the field."""
    try:
        value = row[field]
    except (KeyError, ValueError, TypeError, IndexError):
        raise ValueError("partitionBy: %s has no field %r" % (where, field)) from None
    try:
        return partition_of_key(value, partitions)
    except ValueError as err:
        raise ValueError("partitionBy: %s, field %r: %s" % (where, field, err)) from None


def place_by_key(rdd, field, partitions):
    """`rdd`'s rows in `partitions` partitions, each on the partition owning its key (as
    partition_of_key, so Spark places a row where the library looks for its key): (partition,
    row) pairs shuffled by Spark's partitionBy with the identity as partitioner."""

    def keyed(index, rows):
        for i, row in enumerate(rows):
            yield row_partition(row, field, partitions, "source partition %d, row %d" % (index, i)), row

    return rdd.mapPartitionsWithIndex(keyed).partitionBy(partitions, lambda p: p).values()


# ---------------------------------------------------------------------------------------------
# Executor side: standard library only. These functions are pickled by value with the task.
# ---------------------------------------------------------------------------------------------


def _attempt_secrets(partition_key, attempt):
    """An attempt's control token and registration proof, derived from its partition's key exactly
    as src/security/attempt-secrets.ts derives them (HMAC-SHA256, hex)."""
    import hashlib
    import hmac

    key = bytes.fromhex(partition_key)

    def derive(purpose):
        return hmac.new(key, ("%s:%d" % (purpose, attempt)).encode(), hashlib.sha256).hexdigest()

    return {"controlToken": derive("control"), "proof": derive("register")}


def _own_secret(index, rows):
    """The partition's secrets: the first element of its input, checked to be its own."""
    first = next(rows, None)
    if not (isinstance(first, tuple) and len(first) == 2 and first[0] == SECRET_TAG):
        raise RuntimeError("partition %d: the task's input does not begin with its partition's secrets" % index)
    secret = json.loads(first[1])
    if secret.get("partition") != index:
        raise RuntimeError("partition %d: the task received partition %r's secrets" % (index, secret.get("partition")))
    return secret


def _secret_first(inner):
    """A deserializer reading a task's input as with_partition_secrets made it: one frame of the
    partition's secrets (yielded tagged), then the rows as `inner` reads them."""
    from pyspark.serializers import Serializer, read_int

    class SecretFirst(Serializer):
        def __init__(self, rows):
            self.rows = rows

        def load_stream(self, stream):
            length = read_int(stream)
            if length < 0:
                raise RuntimeError("the task's input has no partition secrets (frame %d)" % length)
            yield (SECRET_TAG, stream.read(length))
            yield from self.rows.load_stream(stream)

        def dump_stream(self, iterator, stream):
            raise NotImplementedError("a task's input is only read")

        def __repr__(self):
            return "SecretFirst(%r)" % (self.rows,)

    return SecretFirst(inner)


def _hand_secrets(fd, payload):
    """Writes the worker's secrets on its secret pipe and closes it; a worker that died before
    reading them is reported by its exit."""
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
    except (BrokenPipeError, OSError):
        pass


def _set_parent_death_signal():
    """preexec_fn: the Node worker gets SIGKILL when the Python worker that started it dies (a
    cancelled or killed task), so it can never keep holding a port as an orphan."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _read_exact(fd, n):
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _length_format(framing):
    """The struct format of a frame's big-endian length prefix."""
    return {2: ">H", 4: ">I", 8: ">Q"}[framing["lengthPrefixBytes"]]


def _read_result_frames(fd, what, framing):
    """The worker's result: (records, arrow, failure), where `arrow` holds the Arrow IPC streams of
    a result with a schema (frames whose body starts with the Arrow continuation token), as they
    came, and `failure` the report of a failed worker (a `failure` message as the only frame). The
    result is whole once the end-of-results batch (an empty batch, which never carries records)
    came; a channel that closes without it was cut short (the worker exited by itself, before it
    was told to stop), and what it wrote is not a result."""
    records, arrow = [], []
    complete = False
    width = framing["lengthPrefixBytes"]
    arrow_prefix = bytes.fromhex(framing["arrowResultPrefix"])
    while True:
        head = _read_exact(fd, width)
        if not head:
            if not complete:
                raise RuntimeError("%s: closed before the end of the result (the worker exited without being told to stop, or was cut short)" % what)
            return records, arrow, None
        if len(head) < width:
            raise RuntimeError("%s: stream ended inside a frame header" % what)
        (size,) = struct.unpack(_length_format(framing), head)
        if size > framing["maxFrameBytes"]:
            raise RuntimeError("%s: frame of %d bytes exceeds %d; not a frame stream" % (what, size, framing["maxFrameBytes"]))
        body = _read_exact(fd, size)
        if len(body) < size:
            raise RuntimeError("%s: stream ended inside a frame (%d of %d bytes)" % (what, len(body), size))
        if complete:
            raise RuntimeError("%s: data after the end of the result" % what)
        if body.startswith(arrow_prefix):
            arrow.append(body)
            continue
        batch = json.loads(body.decode("utf-8"))
        if isinstance(batch, dict) and batch.get("t") == "failure" and not records and not arrow:
            report = batch.get("error")
            if not isinstance(report, dict) or not isinstance(report.get("code"), str) or not isinstance(report.get("message"), str):
                raise RuntimeError("%s: a failure report without code and message" % what)
            return [], [], {"code": report["code"][:128], "message": report["message"][:16384], "retryable": report.get("retryable") is not False}
        if not isinstance(batch, list):
            raise RuntimeError("%s: frame is not a batch (array)" % what)
        if not batch:
            complete = True
        records.extend(batch)


def _watch_liveness(fd, hang_timeout_ms, proc, done, on_hung):
    """Runs in a daemon thread: reads the worker's liveness ticks on `fd` (and owns it). Every byte
    pushes the deadline `hang_timeout_ms` ahead (the first may take STARTUP_GRACE_MS longer); when
    the deadline passes while the worker runs, `on_hung` is called and the worker gets SIGKILL. A
    closed pipe is silent too; the watch ends when `done` is set (the task saw the worker exit)."""
    import select

    deadline = time.monotonic() + (hang_timeout_ms + STARTUP_GRACE_MS) / 1000.0
    open_ = True
    try:
        while not done.is_set():
            now = time.monotonic()
            if now >= deadline:
                if proc.poll() is None:
                    on_hung()
                    try:
                        proc.kill()  # SIGKILL: a blocked event loop or a stopped process acts on nothing else
                    except OSError:
                        pass
                return
            # Wake up now and then to notice `done`, even while ticks keep coming.
            wait = min(deadline - now, 0.5)
            if not open_:
                done.wait(wait)
                continue
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if data:
                    deadline = time.monotonic() + hang_timeout_ms / 1000.0
                else:
                    open_ = False  # EOF: no more ticks will come; the deadline decides
    finally:
        os.close(fd)


def _bus_gone(access):
    """True when nothing listens where the run's bus did (every address of `access` refuses a
    connection): its nats-server is gone, and with it the run (its driver's process ended). Any
    other outcome (it answers, a timeout, an unreachable host) is not taken as proof."""
    import socket
    from urllib.parse import urlsplit

    defaults = {"ws": 80, "wss": 443}
    for url in access["url"].split(","):
        where = urlsplit(url if "://" in url else "nats://" + url)
        try:
            socket.create_connection((where.hostname, where.port or defaults.get(where.scheme, 4222)), timeout=5).close()
        except ConnectionRefusedError:
            continue
        except (OSError, ValueError):
            return False
        return False
    return True


def _program_dir(program):
    """The job's compiled program on this host: written once per content id, atomically, in a
    folder private to this user; tasks of later jobs with the same program reuse it."""
    import shutil
    import tempfile

    base = os.path.join(tempfile.gettempdir(), "sps-program-%d" % os.getuid())
    os.makedirs(base, mode=0o700, exist_ok=True)
    st = os.stat(base)
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RuntimeError("%s belongs to another user or others may write to it" % base)
    target = os.path.join(base, program["id"])
    if os.path.isdir(target):
        return target
    staging = "%s.%d.%d" % (target, os.getpid(), threading.get_ident())
    for name, text in program["files"].items():
        path = os.path.normpath(os.path.join(staging, name))
        if not path.startswith(staging + os.sep):
            raise RuntimeError("program file %r is outside the program" % name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another task wrote the same program first
    return target


def _in_program(value, program_dir):
    """A path inside the shipped program, resolved against this host's copy; other values as given."""
    if program_dir is not None and value.startswith(PROGRAM_PREFIX):
        return os.path.join(program_dir, value[len(PROGRAM_PREFIX) :])
    return value


def _private_dir(path: str) -> str:
    """A directory only this user may enter (mode 0700), made if missing."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RuntimeError("%s belongs to another user or others may enter it" % path)
    return path


def _host_dir() -> str:
    """Where the partition hosts of this user's runs listen, and their tasks make their FIFOs."""
    import tempfile

    return _private_dir(os.path.join(tempfile.gettempdir(), "sps-host-%d" % os.getuid()))


def _host_log(cluster_id: str) -> str:
    """The log of run `cluster_id`'s partition host on this executor: its own output, which it
    removes when it leaves idle (a host that died leaves it for its tasks to show)."""
    return os.path.join(_host_dir(), "%s.host.log" % cluster_id)


def _host_log_tail(path: str) -> list[str]:
    """The last lines of a partition host's log (at most HOST_LOG_TAIL_LINES of its last
    HOST_LOG_TAIL_BYTES), or none when there is no log."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - HOST_LOG_TAIL_BYTES))
            data = f.read(HOST_LOG_TAIL_BYTES)
    except OSError:
        return []
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if size > HOST_LOG_TAIL_BYTES and lines:
        lines = lines[1:]  # cut by the window: not a whole line
    return lines[-HOST_LOG_TAIL_LINES:]


def _host_socket(cluster_id: str, argv: list[str], env: dict[str, str]):
    """A connection to the partition host of run `cluster_id` on this executor, started first when
    none listens (option `isolation: 'thread'`). Two tasks that find none at once start one: the
    start holds a lock (flock) on the private host directory. The host is started in a session of
    its own, through a shell that leaves it at once: it outlives the task (and the Python worker)
    that started it, and is never a child left for that worker to reap."""
    import fcntl
    import socket
    import subprocess

    base = _host_dir()
    path = os.path.join(base, "%s.sock" % cluster_id)

    def connect():
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            return conn
        except OSError:
            conn.close()
            return None

    conn = connect()
    if conn is not None:
        return conn
    lock = os.open(base, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = connect()
        if conn is not None:
            return conn
        try:
            os.unlink(path)  # a host that is gone left it
        except FileNotFoundError:
            pass
        host_env = dict(env, SPS_PARTITION_HOST="1", SPS_HOST_SOCKET=path, SPS_HOST_IDLE_MS=str(HOST_IDLE_MS), SPS_HOST_LOG=_host_log(cluster_id))
        # Its own output (not its threads', which go to their tasks) is appended to its log: a
        # host that dies says why there, and its tasks show it (see _host_log_tail).
        subprocess.run(
            ["/bin/sh", "-c", 'exec "$@" </dev/null >>"$SPS_HOST_LOG" 2>&1 &', "sps-partition-host", *argv],
            env=host_env,
            start_new_session=True,
            check=True,
        )
        deadline = time.monotonic() + HOST_START_S
        while time.monotonic() < deadline:
            conn = connect()
            if conn is not None:
                return conn
            time.sleep(0.05)
        raise RuntimeError("the partition host of run %s did not listen on %s within %d s" % (cluster_id, path, HOST_START_S))
    finally:
        os.close(lock)


class _HostedThread:
    """A task attempt run as a thread of its run's partition host (option `isolation: 'thread'`),
    seen as the worker process it would otherwise be: `stdin` (rows) and `stdout` (output lines)
    are files on FIFOs of the task's private directory, as are `result_fd` and `tick_fd`; `pid` is
    the host's; `wait`, `poll` and `kill` act on the thread. Its secrets go to the host on the
    socket, for that thread's port only. Closing the socket (the task's end, however it comes)
    ends the thread."""

    CHANNELS = ("rows", "output", "results", "ticks")

    def __init__(self, cluster_id: str, argv: list[str], env: dict[str, str], secrets: bytes, heap_mb: int | None):
        import shutil
        import tempfile

        self.returncode: int | None = None
        # Why the thread ended without a word from its host (the host died), once it did.
        self.host_end: str | None = None
        self._log = _host_log(cluster_id)
        self._ended = threading.Event()
        # Named by the run: what a run left behind is told apart from other runs' tasks.
        self._dir = tempfile.mkdtemp(prefix="sps-task-%s-" % cluster_id, dir=_host_dir())
        fds: list[int] = []
        try:
            paths = {name: os.path.join(self._dir, name) for name in self.CHANNELS}
            for fifo in paths.values():
                os.mkfifo(fifo, 0o600)
            # The read ends first: the host then opens the write ends without waiting.
            for name in ("output", "results", "ticks"):
                fds.append(os.open(paths[name], os.O_RDONLY | os.O_NONBLOCK))
                os.set_blocking(fds[-1], True)
            # Until the host opened the read end of the rows, this holds them open for writing
            # (on Linux a FIFO opens read-write at once): a reader that finds no writer reads an end.
            fds.append(os.open(paths["rows"], os.O_RDWR))
            start = {"t": "start", "env": env, "secrets": secrets.decode("utf-8"), "fifos": paths}
            if heap_mb:
                start["heapMb"] = heap_mb
            line = json.dumps(start).encode("utf-8") + b"\n"
            # A host that was just leaving (idle) drops the connection unanswered: try again.
            for _ in range(3):
                self._sock = _host_socket(cluster_id, argv, env)
                # A host that stopped answering (a stopped process) fails the task, which is retried.
                self._sock.settimeout(HOST_START_S)
                self._reports = self._sock.makefile("rb")
                try:
                    self._sock.sendall(line)
                    answer = self._reports.readline()
                except TimeoutError as err:
                    self._sock.close()
                    raise RuntimeError("the partition host did not answer within %d s" % HOST_START_S) from err
                except OSError:
                    answer = b""
                if answer:
                    break
                self._sock.close()
            started = json.loads(answer) if answer else {}
            if started.get("t") != "started":
                raise RuntimeError("the partition host did not start the thread: %s" % (started.get("error") or "no answer"))
            self.pid: int = int(started["pid"])
            self._sock.settimeout(None)
            # The host holds the read end: this open does not wait.
            self.stdin = open(paths["rows"], "wb")
            os.close(fds.pop())
        except BaseException:
            for fd in fds:
                os.close(fd)
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.stdout = os.fdopen(fds[0], "rb")
        self.result_fd, self.tick_fd = fds[1], fds[2]
        threading.Thread(target=self._read_reports, daemon=True).start()

    def _read_reports(self) -> None:
        code = None
        try:
            for raw in self._reports:
                report = json.loads(raw)
                if report.get("t") == "exit":
                    code = int(report["code"])
        except (OSError, ValueError):
            pass
        if code is None:
            said = _host_log_tail(self._log)
            self.host_end = "the partition host %d went away before its thread ended%s" % (
                self.pid,
                ("; its last output: %s" % said[-1]) if said else "",
            )
            sys.stderr.write("[sps] %s\n" % self.host_end)
            for line in said:
                sys.stderr.write("[sps] partition host %d: %s\n" % (self.pid, line))
            sys.stderr.flush()
        self.returncode = 1 if code is None else code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int:
        """The thread's exit code, once it ended; then its channels' directory is removed."""
        import shutil

        self._ended.wait()
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        return self.returncode if self.returncode is not None else 1

    def kill(self) -> None:
        """Ends the thread; a host that does not report its end within THREAD_KILL_GRACE_S is
        given up on (the connection closes, which ends the thread whenever the host acts again)."""
        import socket

        def give_up() -> None:
            if not self._ended.is_set():
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        try:
            self._sock.sendall(b'{"t":"kill"}\n')
        except OSError:
            pass
        timer = threading.Timer(THREAD_KILL_GRACE_S, give_up)
        timer.daemon = True
        timer.start()


def _start_process(argv: list[str], env: dict[str, str], secrets: bytes):
    """A worker process of its own for the task's attempt, on pipes: (proc, result fd, tick fd)."""
    import subprocess

    read_fd, write_fd = os.pipe()
    # Liveness: the worker ticks on this pipe; a silent worker is killed as hung.
    tick_read_fd, tick_write_fd = os.pipe()
    secret_read_fd, secret_write_fd = os.pipe()
    env = dict(env, SPS_RESULT_FD=str(write_fd), SPS_TICK_FD=str(tick_write_fd), SPS_SECRET_FD=str(secret_read_fd))
    try:
        # Started from the task's own thread: the parent-death signal fires when this thread
        # ends, so Spark's own kill of a task still takes the worker down.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_fd, tick_write_fd, secret_read_fd),
            preexec_fn=_set_parent_death_signal,
        )
    except BaseException:
        os.close(read_fd)
        os.close(tick_read_fd)
        os.close(secret_write_fd)
        raise
    finally:
        os.close(write_fd)
        os.close(tick_write_fd)
        os.close(secret_read_fd)
    # From a thread: a payload larger than the pipe's buffer waits for the worker to read it.
    threading.Thread(target=_hand_secrets, args=(secret_write_fd, secrets), daemon=True).start()
    return proc, read_fd, tick_read_fd


def make_task(spec):
    """The function run by mapPartitionsWithIndex: one Node worker per task attempt. `rows` begin
    with the partition's secrets; `arrow_schema`, when given, is the schema message of Arrow rows
    (else the spec's, made by the JVM)."""

    def run_partition(index, rows, arrow_schema=None):
        from collections import deque

        from pyspark import TaskContext

        ctx = TaskContext.get()
        # A barrier stage restarts all its tasks as a new stage attempt, with attempt numbers from 0
        # again; there the globally increasing task attempt id keeps the supervisor from mistaking
        # a new attempt for an old one.
        attempt = ctx.taskAttemptId() if spec["barrier"] else ctx.attemptNumber()
        tag = "[sps %s p%d/a%d]" % (spec["clusterId"], index, attempt)
        program_dir = _program_dir(spec["program"]) if spec.get("program") else None
        hang_timeout_ms = int(spec.get("hangTimeoutMs") or DEFAULT_HANG_TIMEOUT_MS)
        # The partition's own secrets come first in its input (with_partition_secrets); they go on a
        # pipe the worker reads once (a thread: on its host's socket, for its port only), never in
        # its environment: an environment stays readable in /proc/<pid>/environ and is inherited by
        # whatever the worker spawns.
        secret = _own_secret(index, rows)
        payload = json.dumps({"bus": secret["bus"], **_attempt_secrets(secret["partitionKey"], attempt)}).encode()
        # The executor's environment may carry the runner's own secrets (local mode shares the
        # driver's); none of ours reaches a worker.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPS_")}
        env.update({k: _in_program(v, program_dir) for k, v in spec["env"].items()})
        env.update(
            {
                "SPS_PARTITION": str(index),
                "SPS_ATTEMPT": str(attempt),
                "SPS_ROW_FORMAT": spec["rowFormat"],
                "SPS_RESULT_FORMAT": "json",
                "SPS_SPARK_STAGE_ID": str(ctx.stageId()),
                "SPS_SPARK_TASK_ATTEMPT_ID": str(ctx.taskAttemptId()),
            }
        )
        argv = [_in_program(a, program_dir) for a in spec["argv"]]
        if spec.get("isolation") == "thread":
            # A thread's channels are named by its host (FIFOs), not by these fds.
            env.update({"SPS_RESULT_FD": "3", "SPS_TICK_FD": "4", "SPS_SECRET_FD": "5"})
            proc = _HostedThread(spec["clusterId"], argv, env, payload, spec.get("threadHeapMb"))
            read_fd, tick_read_fd = proc.result_fd, proc.tick_fd
        else:
            proc, read_fd, tick_read_fd = _start_process(argv, env, payload)
        tail = deque(maxlen=20)
        watch_done = threading.Event()
        hung = []

        def forward_output():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                tail.append(_line_text(line))
                sys.stderr.write((line if line.startswith("[sps ") else "%s %s" % (tag, line)) + "\n")
            sys.stderr.flush()

        encoded = spec.get("encoded", False)
        framing = spec["framing"]
        row_batch = framing["sparkRowBatch"]
        prefix = _length_format(framing)

        def frame(batch):
            body = ("[" + ",".join(batch) + "]") if encoded else json.dumps(batch, default=str)
            body = body.encode("utf-8")
            return struct.pack(prefix, len(body)) + body

        def feed_frames():
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) >= row_batch:
                    proc.stdin.write(frame(batch))
                    batch = []
            if batch:
                proc.stdin.write(frame(batch))

        def feed_arrow():
            # The schema message, then Spark's own record batch messages as the JVM serialized
            # them (no decoding here), then the end-of-stream marker.
            proc.stdin.write(arrow_schema or spec["arrowSchema"])
            for message in rows:
                proc.stdin.write(message)
            proc.stdin.write(bytes.fromhex(framing["arrowEndOfStream"]))

        def feed_rows():
            try:
                if spec["rowFormat"] == "arrow":
                    feed_arrow()
                else:
                    feed_frames()
            except (BrokenPipeError, ValueError):
                pass  # the worker stopped reading; its exit code tells what happened
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        def on_hung():
            hung.append(True)
            sys.stderr.write("%s hung: no liveness tick for %d ms; killing worker %d\n" % (tag, hang_timeout_ms, proc.pid))
            sys.stderr.flush()

        watcher = threading.Thread(target=_watch_liveness, args=(tick_read_fd, hang_timeout_ms, proc, watch_done, on_hung), daemon=True)
        watcher.start()
        threads = [threading.Thread(target=forward_output, daemon=True), threading.Thread(target=feed_rows, daemon=True)]
        for th in threads:
            th.start()
        failure, report = None, None
        try:
            records, arrow, report = _read_result_frames(read_fd, "partition %d attempt %d result channel" % (index, attempt), framing)
        except Exception as err:  # noqa: BLE001
            records, arrow, failure = [], [], str(err)
        finally:
            os.close(read_fd)
        code = proc.wait()
        watch_done.set()
        watcher.join(5)
        for th in threads:
            th.join(5)
        if hung:
            # Raising makes Spark retry the task, as for a crash.
            raise RuntimeError("partition %d attempt %d: worker hung: no liveness tick for %d ms" % (index, attempt, hang_timeout_ms))
        how = ("killed by signal %d" % -code) if code < 0 else ("exited with code %d" % code)
        if report is not None and not report["retryable"]:
            # A retry cannot fix it: end the task without an error, so Spark does not retry it; the
            # driver heard the worker's own report and fails the partition at once.
            error = "%s: [%s] %s" % (how, report["code"], report["message"])
            return iter([(index, attempt, FAILED, error)])
        if report is not None:
            failure = "[%s] %s" % (report["code"], report["message"])
        if code != 0 or failure:
            # A crash says more in its output than in the result channel it cut short.
            said = next((line for line in reversed(tail) if line.startswith("failed: ") or " failed: " in line), tail[-1] if tail else "")
            said = getattr(proc, "host_end", None) or said
            reason = failure if report is not None else (failure or said) if code == 0 else (said or failure)
            reason = re.sub(r"^\[sps [^\]]*\]\s*", "", reason)
            error = "%s: %s" % (how, reason) if reason else how
            if _bus_gone(secret["bus"]):
                # The run is gone (a Spark Connect server outlives the client process whose driver
                # held the bus): a retry could only fail again, so the task ends without an error
                # and its job ends; no driver is left to hear of it.
                return iter([(index, attempt, FAILED, "%s; the run's bus is gone, so the partition ends" % error)])
            # Raising makes Spark retry the task (up to spark.task.maxFailures).
            raise RuntimeError("partition %d attempt %d: worker %s" % (index, attempt, error))
        # The header carries the attempt even for a partition that returned nothing.
        items = [(index, attempt, HEADER, None)] + [(index, attempt, RECORD, r) for r in records]
        return iter(items + [(index, attempt, ARROW, blob) for blob in arrow])

    return run_partition


def summarize(index, items):
    """One partition's task output as one record: (index, attempt, records, arrow, failed), which
    keeps partitions apart even when one returns nothing."""
    attempt, records, arrow, failed = None, [], False, None
    for _, att, kind, rec in items:
        if kind == RECORD:
            records.append(rec)
        elif kind == ARROW:
            records.extend(arrow_records(rec))
            arrow = True
        elif kind == FAILED:
            attempt, failed = att, rec
        else:
            attempt = att
    return (index, attempt, records, arrow, failed)


def task_spec(job, source):
    """What the task function of a job knows (no secret: those reach each task with its input)."""
    return {
        "clusterId": job["clusterId"],
        "argv": job["argv"],
        "env": job["env"],
        "program": job.get("program"),
        "barrier": bool(job.get("barrier")),
        "encoded": source["encoded"],
        "rowFormat": source["rowFormat"],
        "arrowSchema": source.get("arrowSchema"),
        "framing": PROTOCOL["framing"],
        "hangTimeoutMs": job.get("hangTimeoutMs", 10000),
        "isolation": job.get("isolation", "process"),
        "threadHeapMb": job.get("threadHeapMb"),
    }


def _line_text(line):
    """The text of a worker output line: the message of its JSON log record, or the line itself."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return line
        if isinstance(record, dict) and isinstance(record.get("msg"), str):
            return record["msg"]
    return line


# ---------------------------------------------------------------------------------------------
# Driver side.
# ---------------------------------------------------------------------------------------------


def build_source(spark, source, partitions, row_format="auto", session_sources=None, partition_by=None):
    """The rows of a job's source in `partitions` partitions: a dict with the RDD and how its
    elements reach a worker. DataFrame sources travel as Arrow (`rowFormat` "arrow", each element
    one record batch message serialized by the JVM, plus the stream's schema message), unless the
    job asked for rows or a column has no Arrow form (then "json", with a `note` saying why). JSON
    rows are rendered by the JVM (`encoded`: each element already a JSON text), which is far
    cheaper than turning each into a Python dict and encoding it again. A `session` source is a
    DataFrame or RDD of the process hosting the runner (`session_sources`, by id). With
    `partition_by` (a field / column name), each row goes to the partition owning its key."""
    sc = spark.sparkContext

    def not_keyed(what):
        if partition_by is not None:
            raise SpsError("SPS_SPARK_JOB", "partitionBy %r: the rows of a %s source have no fields" % (partition_by, what))

    kind = source.get("kind")
    plain = {"rowFormat": "json", "encoded": False}
    if kind == "session":
        data = (session_sources or {}).get(source.get("id"))
        if data is None:
            raise SpsError("SPS_SPARK_JOB", "no session source %r in this process" % (source.get("id"),))
        if hasattr(data, "mapPartitionsWithIndex"):  # an RDD: its elements as they are, in JSON frames
            if partition_by is not None:
                return dict(plain, rdd=place_by_key(data, partition_by, partitions))
            rdd = data if data.getNumPartitions() == partitions else data.repartition(partitions)
            return dict(plain, rdd=rdd)
        return dataframe_source(spark, data, partitions, row_format, partition_by)
    if kind == "empty":
        return dict(plain, rdd=sc.parallelize([], partitions))
    if kind == "range":
        not_keyed("range")
        return dict(plain, rdd=sc.range(source.get("start", 0), source["end"], source.get("step", 1), numSlices=partitions))
    if kind == "rows":
        with open(source["file"], "r", encoding="utf-8") as f:
            rows = json.load(f)
        if partition_by is not None:
            # In memory here: a bad row fails the submit at once, with no Spark task retried for it.
            try:
                pairs = [(row_partition(row, partition_by, partitions, "row %d" % i), row) for i, row in enumerate(rows)]
            except ValueError as err:
                raise SpsError("SPS_SPARK_JOB", str(err)) from None
            return dict(plain, rdd=sc.parallelize(pairs, partitions).partitionBy(partitions, lambda p: p).values())
        return dict(plain, rdd=sc.parallelize(rows, partitions))
    if kind == "textFile":
        not_keyed("text file")
        return dict(plain, rdd=sc.textFile(source["path"]).repartition(partitions))
    reader_options = source.get("options") or {}
    if kind in ("parquet", "json", "csv", "orc", "text"):
        df = spark.read.options(**reader_options).format(kind).load(source["path"])
    elif kind == "sql":
        df = spark.sql(source["query"])
    elif kind == "table":
        df = spark.table(source["table"])
    else:
        raise ValueError("unknown source kind %r" % (kind,))
    return dataframe_source(spark, df, partitions, row_format, partition_by)


def dataframe_source(spark, df, partitions, row_format, partition_by=None):
    """A DataFrame's rows in `partitions` partitions, as Arrow or as JVM-rendered JSON texts (see
    build_source)."""
    if partition_by is not None:
        if partition_by not in df.columns:
            raise SpsError("SPS_SPARK_JOB", "partitionBy: the source has no column %r (its columns: %s)" % (partition_by, ", ".join(df.columns)))
        # Spark's own hash partitioning (Murmur3) is another function: the rows are placed by the
        # library's, then made a DataFrame again with the same partitions (createDataFrame keeps them).
        df = spark.createDataFrame(place_by_key(df.rdd, partition_by, partitions), df.schema)
    # A source that already has one partition per server keeps its partitions: a repartition would
    # only add a shuffle (the JVM writing and reading every row once more).
    if df._jdf.rdd().getNumPartitions() != partitions:
        df = df.repartition(partitions)
    note = None
    if row_format != "rows":
        try:
            return dict(arrow_source(spark, df), rowFormat="arrow", encoded=False)
        except Exception as err:  # noqa: BLE001
            why = describe_error(err).splitlines()[0]
            if row_format == "arrow":
                raise SpsError("SPS_SPARK_JOB", "the source cannot travel as Arrow (option format 'arrow'): %s" % why) from err
            note = "the source's schema has no Arrow form (%s); falling back to JSON rows" % why
            sys.stderr.write("[sps runner] %s\n" % note)
    else:
        note = "option format 'rows'"
    return dict(json_source(spark, df), rowFormat="json", encoded=True, note=note)


def arrow_source(spark, df):
    """The DataFrame as Arrow record batch messages, serialized by the JVM per partition, and the
    schema message made with the same settings (time zone, large types) as those batches."""
    from pyspark.rdd import RDD
    from pyspark.serializers import NoOpSerializer

    sc = spark.sparkContext
    jvm = sc._jvm
    conf = spark._jsparkSession.sessionState().conf()
    tz, large, per_batch = conf.sessionLocalTimeZone(), conf.arrowUseLargeVarTypes(), conf.arrowMaxRecordsPerBatch()
    utils = jvm.org.apache.spark.sql.util.ArrowUtils
    # Raises for a type Arrow cannot carry (the JSON fallback is then chosen).
    schema = utils.toArrowSchema(df._jdf.schema(), tz, True, large, getattr(utils, "toArrowSchema$default$5")())
    out = jvm.java.io.ByteArrayOutputStream()
    channel = jvm.org.apache.arrow.vector.ipc.WriteChannel(jvm.java.nio.channels.Channels.newChannel(out))
    jvm.org.apache.arrow.vector.ipc.message.MessageSerializer.serialize(channel, schema)
    batches = df._jdf.toArrowBatchRdd(per_batch, tz, True, large)
    return {"rdd": RDD(batches.toJavaRDD(), sc, NoOpSerializer()), "arrowSchema": bytes(out.toByteArray())}


def json_source(spark, df):
    """The DataFrame's rows as JSON texts rendered by the JVM, null fields kept."""
    from pyspark.rdd import RDD
    from pyspark.serializers import UTF8Deserializer
    from pyspark.sql import functions as F

    sc = spark.sparkContext
    columns = [F.col("`%s`" % c.replace("`", "``")) for c in df.columns]
    # Null fields are kept, so every row has every column, as Row.asDict() would give.
    as_json = F.to_json(F.struct(*columns), {"ignoreNullFields": "false"})
    texts = df.select(as_json.alias("value"))._jdf
    # As DataFrame.toJSON does: the JVM hands over plain UTF-8 strings, with no Row pickling.
    strings = getattr(texts, "as")(sc._jvm.org.apache.spark.sql.Encoders.STRING())
    return {"rdd": RDD(strings.toJavaRDD(), sc, UTF8Deserializer())}


def with_partition_secrets(sc, rdd, secrets, partitions):
    """`rdd` with each partition's secrets as the first element of that partition, read by the task
    serving it (_own_secret). The secrets are a parallelized collection of one element per
    partition, zipped in the JVM (PartitionSecrets.java): a partition's element travels with its
    own task only, whereas the task function goes to every executor running any task of the stage
    — so a compromised executor holds the secrets of the partitions it runs, and no others."""
    from pyspark.rdd import RDD

    helper = _helper_class(sc)
    jvm, gateway = sc._jvm, sc._gateway
    items = jvm.java.util.ArrayList()
    for p in range(partitions):
        own = secrets[str(p)]
        items.add(bytearray(json.dumps({"partition": p, "bus": own["bus"], "partitionKey": own["partitionKey"]}).encode()))
    # One element per slice: slice p of n elements in n slices is element p.
    jsecrets = sc._jsc.parallelize(items, partitions)
    args = gateway.new_array(jvm.java.lang.Object, 2)
    args[0], args[1] = rdd._jrdd, jsecrets
    method = next(m for m in helper.getMethods() if m.getName() == "secretFirst")
    return RDD(method.invoke(None, args), sc, _secret_first(rdd._jrdd_deserializer))


_HELPER = {}


def _helper_class(sc):
    """The helper class, loaded once per SparkContext from the jar beside this file; the jar is
    also added to the context, so executors load it for the tasks."""
    key = sc.applicationId
    if key in _HELPER:
        return _HELPER[key]
    if not os.path.exists(HELPER_JAR):
        raise SpsError(
            "SPS_SPARK_JOB",
            "%s is missing: the library was built without javac or a Spark (npm run build, after scripts/setup.sh, builds it)" % HELPER_JAR,
        )
    jvm, gateway = sc._jvm, sc._gateway
    urls = gateway.new_array(jvm.java.net.URL, 1)
    urls[0] = jvm.java.io.File(HELPER_JAR).toURI().toURL()
    loader = jvm.java.net.URLClassLoader(urls, sc._jsc.getClass().getClassLoader())
    sc._jsc.addJar(HELPER_JAR)
    _HELPER[key] = loader.loadClass(HELPER_CLASS)
    return _HELPER[key]


def local_slots(master):
    """Task slots of a local master, or None for a cluster master."""
    m = re.match(r"^local(?:\[(\*|\d+)(?:\s*,\s*\d+)?\])?$", master.strip())
    if not m:
        return None
    threads = m.group(1)
    return os.cpu_count() or 1 if threads == "*" else int(threads or 1)


def concurrent_slots(sc):
    """How many tasks can run at once, as Spark's own barrier check counts them."""
    jsc = sc._jsc.sc()
    try:
        profile = jsc.resourceProfileManager().defaultResourceProfile()
        return int(jsc.maxNumConcurrentTasks(profile))
    except Exception:  # noqa: BLE001
        return int(sc.defaultParallelism)


class ClassicSpark:
    """The runner's seam to a classic session: its SparkContext runs the job (an RDD of the
    partitions, zipped with their secrets in the JVM), its job groups cancel it, its status
    tracker counts the task slots and reports the stages."""

    def __init__(self, spark):
        self.spark = spark
        self.sc = spark.sparkContext

    @property
    def master(self):
        return self.sc.master

    def stopped(self):
        return getattr(self.sc, "_jsc", None) is None

    def info(self):
        return {"master": self.sc.master, "sparkVersion": self.sc.version, "applicationId": self.sc.applicationId, "slots": concurrent_slots(self.sc)}

    def slots(self):
        return concurrent_slots(self.sc)

    def active_jobs(self):
        return list(self.sc.statusTracker().getActiveJobsIds())

    def cancel(self, group):
        self.sc.cancelJobGroup(group)

    def result_data(self, tagged, typed):
        return ResultData(self.spark, tagged, typed)

    def wait_for_slots(self, needed, slot_wait_s):
        if local_slots(self.sc.master) is not None:
            return concurrent_slots(self.sc)
        # Executors of a cluster master register after the application started: wait for enough.
        deadline = time.monotonic() + slot_wait_s
        while True:
            available = concurrent_slots(self.sc)
            if available >= needed or time.monotonic() >= deadline:
                return available
            time.sleep(0.25)

    def build_job(self, job, session_sources):
        n = job["partitions"]
        source = build_source(self.spark, job["source"], n, job.get("rowFormat", "auto"), session_sources, job.get("partitionBy"))
        # Each task gets its own partition's secrets, and no task function carries any.
        rows = with_partition_secrets(self.sc, source["rdd"], job["secrets"], n)
        task = make_task(task_spec(job, source))
        if job.get("barrier"):
            # A failed barrier result stage is never retried; a shuffle after it makes the barrier
            # stage a map stage, which Spark does retry as a group.
            tagged = rows.barrier().mapPartitionsWithIndex(task)
            tagged = tagged.map(lambda t: (t[0], t)).partitionBy(n, lambda k: k).values()
        else:
            tagged = rows.mapPartitionsWithIndex(task)
        if job.get("cacheResult"):
            tagged = tagged.persist()
        return tagged, source

    def run_action(self, group, rdd):
        self.sc.setJobGroup(group, "spark-partition-server %s" % group, interruptOnCancel=True)
        try:
            # One record per partition (the attempt plus its records) keeps partitions apart even
            # when one returns nothing.
            return rdd.mapPartitionsWithIndex(lambda index, items: [summarize(index, items)]).collect()
        finally:
            self.sc.setLocalProperty("spark.jobGroup.id", None)

    async def report_stages(self, group, publish):
        """Sends each stage of the group's jobs whenever its task counts change, until cancelled."""
        tracker = self.sc.statusTracker()
        last = {}
        while True:
            for job_id in tracker.getJobIdsForGroup(group):
                info = tracker.getJobInfo(job_id)
                for stage_id in info.stageIds if info else []:
                    st = tracker.getStageInfo(stage_id)
                    if st is None:
                        continue
                    fields = {
                        "stage": st.stageId,
                        "attempt": st.currentAttemptId,
                        "name": str(st.name)[:1024],
                        "tasks": st.numTasks,
                        "active": st.numActiveTasks,
                        "completed": st.numCompletedTasks,
                        "failed": st.numFailedTasks,
                    }
                    if last.get(stage_id) != fields:
                        last[stage_id] = fields
                        await publish(fields)
            await asyncio.sleep(STAGE_POLL_S)


# ---------------------------------------------------------------------------------------------
# Spark Connect: the same task, as the function of df.mapInArrow in the user's Connect session.
# ---------------------------------------------------------------------------------------------

# Columns the runner adds to a Connect source: the partition a row goes to, and the sealed secrets
# of a partition (set on that partition's one secrets row, null on every data row).
PART_COLUMN, SECRET_COLUMN = "_sps_partition", "_sps_secret"
# A Connect source's rows as JSON texts (format "rows", or a schema with no Arrow form).
JSON_COLUMN = "_sps_json"
# The task's output rows on Connect: the items of make_task's task, one per row.
TAGGED_DDL = "sps_index INT, sps_attempt BIGINT, sps_kind INT, sps_payload BINARY"
# Output items per record batch a Connect task yields.
TAGGED_BATCH_ROWS = 1024


def is_connect(spark):
    """True for a Spark Connect client session (SparkSession.builder.remote): no SparkContext; its
    DataFrames are plans the Connect server runs."""
    return type(spark).__module__.startswith("pyspark.sql.connect.")


def _keystream(key, nonce, size):
    import hashlib
    import hmac

    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hmac.new(key, b"enc" + nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    return bytes(out[:size])


def seal_secret(key, plain):
    """`plain` encrypted and authenticated with the run's `key` (HMAC-SHA256 in counter mode, then
    an HMAC-SHA256 tag over nonce and ciphertext): what travels in a Connect plan's data."""
    import hashlib
    import hmac

    nonce = os.urandom(16)
    body = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain)), strict=True))
    return nonce + body + hmac.new(key, b"mac" + nonce + body, hashlib.sha256).digest()


def open_secret(key, sealed):
    """The plain text of seal_secret's output; raises for anything it did not make with `key`."""
    import hashlib
    import hmac

    if sealed is None or len(sealed) < 48:
        raise RuntimeError("the task's input has no sealed partition secrets")
    nonce, body, tag = sealed[:16], sealed[16:-32], sealed[-32:]
    if not hmac.compare_digest(tag, hmac.new(key, b"mac" + nonce + body, hashlib.sha256).digest()):
        raise RuntimeError("the partition secrets in the task's input fail their check")
    return bytes(a ^ b for a, b in zip(body, _keystream(key, nonce, len(body)), strict=True))


def make_connect_task(spec, key, required):
    """The function of df.mapInArrow on a Connect session: make_task's task, fed the same input
    stream (the partition's secrets, then Arrow record batch messages or JSON texts) from the record
    batches Spark hands it, its output items returned as record batches (TAGGED_DDL). `key` opens
    the partition's sealed secrets, which come first (the source sorts them there); `required`:
    columns not nullable in the source (the union with the secrets rows made them nullable)."""
    run_partition = make_task(spec)

    def task(batches):
        import pyarrow as pa
        from pyspark import TaskContext

        index = TaskContext.get().partitionId()
        batches = iter(batches)
        first = next(batches, None)
        while first is not None and first.num_rows == 0:
            first = next(batches, None)
        if first is None or not first.column(SECRET_COLUMN)[0].is_valid:
            raise RuntimeError("partition %d: the task's input does not begin with its partition's secrets" % index)
        sealed = first.column(SECRET_COLUMN)[0].as_py()
        names = [n for n in first.schema.names if n not in (PART_COLUMN, SECRET_COLUMN)]
        fields = [first.schema.field(n) for n in names]
        schema = pa.schema([f.with_nullable(False) if f.name in required else f for f in fields])
        arrow = spec["rowFormat"] == "arrow"

        def stream():
            yield (SECRET_TAG, open_secret(key, sealed))
            for batch in _chain([first.slice(1)], batches):
                if batch.num_rows == 0:
                    continue
                if batch.column(SECRET_COLUMN).null_count != batch.num_rows:
                    raise RuntimeError("partition %d: a second secrets row in the task's input" % index)
                if arrow:
                    yield pa.RecordBatch.from_arrays([batch.column(n) for n in names], schema=schema).serialize().to_pybytes()
                else:
                    yield from batch.column(JSON_COLUMN).to_pylist()

        arrow_schema = schema.serialize().to_pybytes() if arrow else None
        out = pa.schema([("sps_index", pa.int32()), ("sps_attempt", pa.int64()), ("sps_kind", pa.int32()), ("sps_payload", pa.binary())])
        rows = {"sps_index": [], "sps_attempt": [], "sps_kind": [], "sps_payload": []}
        for item_index, attempt, kind, payload in run_partition(index, stream(), arrow_schema):
            if kind == RECORD:
                payload = json.dumps(payload, default=str).encode("utf-8")
            elif kind == FAILED:
                payload = str(payload).encode("utf-8")
            for name, value in zip(rows, (item_index, attempt, kind, payload), strict=True):
                rows[name].append(value)
            if len(rows["sps_index"]) >= TAGGED_BATCH_ROWS:
                yield pa.RecordBatch.from_pydict(rows, schema=out)
                rows = {name: [] for name in rows}
        if rows["sps_index"]:
            yield pa.RecordBatch.from_pydict(rows, schema=out)

    return task


def _chain(first, rest):
    yield from first
    yield from rest


def connect_source(spark, df, partitions, row_format, partition_by, secrets, key):
    """A Connect DataFrame's rows in `partitions` partitions, each beginning with one row holding
    its partition's secrets sealed with `key` (they are data of the plan: a small local relation,
    placed on its partition by the same shuffle as the rows); returns (DataFrame, format fields)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, StringType

    columns = df.columns
    taken = [c for c in columns if c in (PART_COLUMN, SECRET_COLUMN, JSON_COLUMN)]
    if taken:
        raise SpsError("SPS_SPARK_JOB", "the source has a column named %r, which the runner uses itself; rename it" % taken[0])
    if partition_by is not None:
        if partition_by not in columns:
            raise SpsError("SPS_SPARK_JOB", "partitionBy: the source has no column %r (its columns: %s)" % (partition_by, ", ".join(columns)))
        kind = df.schema[partition_by].dataType
        if not isinstance(kind, (StringType, IntegralType)):
            raise SpsError("SPS_SPARK_JOB", "partitionBy: column %r is %s; a key is a string or an integer" % (partition_by, kind.simpleString()))
        owner = F.udf(lambda key: partition_of_key(key, partitions), "int")
        target = owner(F.col("`%s`" % partition_by.replace("`", "``")))
    else:
        # Round robin within each source partition; Spark retries an indeterminate shuffle whole.
        target = F.pmod(F.monotonically_increasing_id(), F.lit(partitions)).cast("int")
    fmt = {"rowFormat": "arrow", "encoded": False}
    data = df
    if row_format == "rows":
        fmt = {"rowFormat": "json", "encoded": True, "note": "option format 'rows'"}
    else:
        from pyspark.sql.pandas.types import to_arrow_schema

        try:
            to_arrow_schema(df.schema)
        except Exception as err:  # noqa: BLE001
            why = describe_error(err).splitlines()[0]
            if row_format == "arrow":
                raise SpsError("SPS_SPARK_JOB", "the source cannot travel as Arrow (option format 'arrow'): %s" % why) from err
            fmt = {"rowFormat": "json", "encoded": True, "note": "the source's schema has no Arrow form (%s); falling back to JSON rows" % why}
    if fmt["rowFormat"] == "json":
        as_json = F.to_json(F.struct(*[F.col("`%s`" % c.replace("`", "``")) for c in columns]), {"ignoreNullFields": "false"})
        data = df.select(as_json.alias(JSON_COLUMN))
    data = data.withColumn(PART_COLUMN, target).withColumn(SECRET_COLUMN, F.lit(None).cast("binary"))
    sealed = []
    for p in range(partitions):
        own = secrets[str(p)]
        plain = json.dumps({"partition": p, "bus": own["bus"], "partitionKey": own["partitionKey"]}).encode()
        sealed.append((p, seal_secret(key, plain)))
    held = spark.createDataFrame(sealed, "%s INT, %s BINARY" % (PART_COLUMN, SECRET_COLUMN))
    placed = data.unionByName(held, allowMissingColumns=True).repartitionById(partitions, PART_COLUMN)
    # The secrets row first: the task starts its worker with them before any row is fed.
    return placed.sortWithinPartitions(F.col(SECRET_COLUMN).isNull()), fmt


class ConnectSpark:
    """The runner's seam to a Spark Connect session: the job is df.mapInArrow of the same task
    (DataFrame API only; an RDD cannot exist there), tagged with spark.addTag and cancelled with
    spark.interruptTag; the session's configuration tells its master. The Connect server's status
    tracker is out of reach: no stage reports, and task slots are known for local masters only."""

    def __init__(self, spark):
        self.spark = spark

    @property
    def master(self):
        return self.spark.conf.get("spark.master", "unknown")

    def stopped(self):
        return bool(getattr(self.spark, "is_stopped", False))

    def info(self):
        conf = self.spark.conf
        return {"master": self.master, "sparkVersion": self.spark.version, "applicationId": conf.get("spark.app.id", "unknown"), "slots": self.slots()}

    def slots(self):
        """Task slots of a local master; 0 (unknown) for a cluster master."""
        return local_slots(self.master) or 0

    def wait_for_slots(self, needed, slot_wait_s):
        # Only a local master's slots are known from here; a cluster master is not checked.
        available = self.slots()
        return available if available else needed

    def active_jobs(self):
        return []

    def cancel(self, tag):
        self.spark.interruptTag(tag)

    async def report_stages(self, tag, publish):
        await asyncio.Event().wait()

    def build_job(self, job, session_sources):
        n = job["partitions"]
        source = job["source"]
        if source.get("kind") != "session":
            what = source.get("kind")
            raise SpsError("SPS_SPARK_JOB", "on a Spark Connect session the runner serves DataFrames of the process hosting it, not a %r source" % what)
        df = (session_sources or {}).get(source.get("id"))
        if df is None:
            raise SpsError("SPS_SPARK_JOB", "no session source %r in this process" % (source.get("id"),))
        if not hasattr(df, "mapInArrow"):
            raise SpsError("SPS_UNSUPPORTED", "an RDD cannot run on a Spark Connect session (it has no SparkContext); give a DataFrame of the session")
        key = os.urandom(32)
        placed, fmt = connect_source(self.spark, df, n, job.get("rowFormat", "auto"), job.get("partitionBy"), job["secrets"], key)
        required = [f.name for f in df.schema.fields if not f.nullable] if fmt["rowFormat"] == "arrow" else []
        task = make_connect_task(task_spec(job, fmt), key, required)
        barrier = bool(job.get("barrier"))
        tagged = placed.mapInArrow(task, TAGGED_DDL, barrier=barrier)
        if barrier:
            # As on the classic path: a shuffle after the barrier stage makes it a map stage, which
            # Spark retries as a group.
            tagged = tagged.repartitionById(n, "sps_index")
        if job.get("cacheResult"):
            tagged = tagged.persist()
        return tagged, fmt

    def run_action(self, tag, tagged):
        # Tags belong to the calling thread; this one runs the job's action.
        self.spark.addTag(tag)
        try:
            table = tagged.toArrow()
        finally:
            self.spark.removeTag(tag)
        per = {}
        for item in tagged_items(table):
            per.setdefault(item[0], []).append(item)
        return [summarize(index, per[index]) for index in sorted(per)]

    def result_data(self, tagged, typed):
        return ConnectResultData(self.spark, tagged, typed)


def tagged_items(table):
    """A Connect job's output (TAGGED_DDL rows, as a pyarrow Table) as the task's items."""
    items = []
    for row in table.to_pylist():
        kind, payload = row["sps_kind"], row["sps_payload"]
        if kind == RECORD:
            payload = json.loads(payload)
        elif kind == FAILED:
            payload = payload.decode("utf-8")
        items.append((row["sps_index"], row["sps_attempt"], kind, payload))
    return items


def records_df(spark, records):
    """Records as a DataFrame without a SparkContext (Spark Connect): columns in name order as
    Spark's JSON inference makes them, records that are not objects as {"value": record}."""
    import pyarrow as pa

    rows = [r if isinstance(r, dict) else {"value": r} for r in records]
    names = sorted({k for r in rows for k in r})
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed kinds in one field: JSON texts, as Spark's inference makes them strings.
            columns[name] = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v, default=str) for v in values])
    return spark.createDataFrame(pa.table(columns)) if names else spark.createDataFrame([], "value STRING").select()


class ConnectResultData:
    """A run's cached result on a Connect session: the task outputs, persisted there."""

    def __init__(self, spark, tagged, typed):
        self.spark = spark
        self.tagged = tagged
        self.typed = typed

    def _items(self):
        from pyspark.sql import functions as F

        return tagged_items(self.tagged.where(F.col("sps_kind").isin(RECORD, ARROW)).toArrow())

    def records(self):
        return [r for _, _, kind, rec in self._items() for r in (arrow_records(rec) if kind == ARROW else [rec])]

    def count(self):
        return len(self.records())

    def collect(self):
        return self.records()

    def df(self):
        if self.typed:
            import pyarrow as pa

            tables = [pa.ipc.open_stream(rec).read_all() for _, _, kind, rec in self._items() if kind == ARROW]
            if not tables:
                raise SpsError("SPS_SPARK_DATASET", "the result has a schema but no partition returned a record batch")
            return self.spark.createDataFrame(pa.concat_tables(tables, promote_options="permissive"))
        return records_df(self.spark, self.records())

    def unpersist(self):
        self.tagged.unpersist()


class Runner:
    def __init__(self, spark, app_id, nc, job_dir, slot_wait_s, session_sources=None, error_cb=None, reconnect_window_s=30.0):
        self.job_dir = job_dir
        # Where the bus connections' errors go (None: nats-py's own logging).
        self.error_cb = error_cb
        # DataFrames and RDDs of the process hosting the runner, by id (`session` sources).
        self.session_sources = session_sources if session_sources is not None else {}
        self.spark = spark
        # What the runner needs of the session: a classic one's SparkContext, or Spark Connect's plans.
        self.session = ConnectSpark(spark) if is_connect(spark) else ClassicSpark(spark)
        self.app_id = app_id
        self.nc = nc
        self.slot_wait_s = slot_wait_s
        # How long a flush waits out a reconnect: the window the driver gave the bus connections.
        self.reconnect_window_s = reconnect_window_s
        self.loop = asyncio.get_running_loop()
        self.jobs = {}
        self.datasets = {}
        self.malformed = 0
        self.closed = asyncio.Event()
        # Set once `ready` went out: a service that ends before has failed to start.
        self.ready = False

    def subject(self, op):
        return "sps.%s.spark.%s" % (self.app_id, op)

    async def reply(self, msg, t, **fields):
        # On the connection the request came in on: orders on the application's bus, cancel on the run's.
        if msg.reply:
            await msg.respond(pack(t, fields))

    async def serve(self):
        if self.session.stopped():
            # A session the user stopped before hosting the runner in it.
            raise SpsError("SPS_SPARK_START", "the SparkSession is stopped (its SparkContext was stopped); start a new one")
        handlers = {"submit": self.on_submit, "dataset": self.on_dataset, "sql": self.on_sql, "status": self.on_status, "close": self.on_close}
        for op, handler in handlers.items():
            await self.nc.subscribe(self.subject(op), cb=self.guard(op, handler))
        await self.nc.publish(
            self.subject("ready"),
            pack(
                "ready",
                dict(self.session.info(), pid=os.getpid()),
            ),
        )
        await flush_bus(self.nc, self.reconnect_window_s)
        self.ready = True
        await self.closed.wait()

    def guard(self, op, handler):
        async def cb(msg):
            try:
                body = unpack(msg.data, op, msg.subject)
                await handler(msg, body)
            except MalformedMessage as err:
                # Refused, counted and logged; the sender learns why when it asked for an answer.
                self.malformed += 1
                sys.stderr.write("[sps runner] refused: %s\n" % err)
                await self.reply(msg, "error", code="SPS_MALFORMED_MESSAGE", error=str(err))
            except SpsError as err:
                await self.reply(msg, "error", code=err.code, error=str(err), **err.fields)
            except Exception as err:  # noqa: BLE001
                await self.reply(msg, "error", code="SPS_SPARK_RUNNER", error="%s: %s" % (op, describe_error(err)))

        return cb

    def in_thread(self, fn, *args):
        return self.loop.run_in_executor(None, fn, *args)

    def read_job(self, order):
        """The job file the driver wrote for this order: read once, then deleted."""
        path = os.path.join(self.job_dir, order["job"] + ".json")
        try:
            with open(path, "r", encoding="utf-8") as f:
                job = json.load(f)
        except OSError as err:
            raise SpsError("SPS_SPARK_JOB", "no job file for cluster %s (%s)" % (order["clusterId"], err.strerror)) from err
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        job["clusterId"] = order["clusterId"]
        return job

    async def on_submit(self, msg, order):
        job = self.read_job(order)
        cid = job["clusterId"]
        if cid in self.jobs:
            raise SpsError("SPS_SPARK_JOB", "a job for cluster %s is already running" % cid)
        needed = job["partitions"]
        available = await self.in_thread(self.session.wait_for_slots, needed, self.slot_wait_s)
        if available < needed:
            raise SpsError(
                "SPS_SPARK_SLOTS",
                "Spark master %s can run %d task(s) at once but the cluster needs %d (one per partition, all "
                "running together); give the application more cores or executors, or use fewer partitions" % (self.session.master, available, needed),
                available=available,
                needed=needed,
            )
        rdd, source = await self.in_thread(self.build_job, job)
        run_nc = await nats_connect(json.loads(job["bus"]), "sps-spark-runner-%s" % cid, error_cb=self.error_cb)
        state = {"rdd": rdd, "nc": run_nc, "group": "sps-%s" % cid, "done": asyncio.Event(), "cancelled": False, "cancel_replies": []}
        self.jobs[cid] = state
        await run_nc.subscribe("sps.%s.spark.cancel" % cid, cb=self.guard("cancel", lambda m, b: self.on_cancel(m, cid)))
        extra = {"note": source["note"]} if source.get("note") else {}
        await self.reply(msg, "submitted", group=state["group"], slots=available, rowFormat=source["rowFormat"], **extra)
        asyncio.ensure_future(self.run_job(cid, job, state))

    def build_job(self, job):
        """The job's tasks, not yet run: what run_action runs (and test probes inspect)."""
        return self.session.build_job(job, self.session_sources)

    async def run_job(self, cid, job, state):
        nc = state["nc"]
        subject = lambda event: "sps.%s.spark.%s" % (cid, event)  # noqa: E731
        try:
            await nc.publish(subject("job_started"), pack("job_started", {"group": state["group"]}))
            progress = asyncio.ensure_future(self.session.report_stages(state["group"], lambda fields: nc.publish(subject("stage"), pack("stage", fields))))
            try:
                summaries = await self.in_thread(self.session.run_action, state["group"], state["rdd"])
            finally:
                progress.cancel()
            failed = [(index, attempt, error) for index, attempt, _, _, error in summaries if error is not None]
            if failed:
                index, attempt, error = failed[0]
                raise NotRetried(index, "partition %d attempt %d: worker %s (a retry cannot fix it, so it was not retried)" % (index, attempt, error))
            total, typed = 0, False
            for index, attempt, records, arrow, _ in summaries:
                total += len(records)
                typed = typed or arrow
                for seq, chunk, last in chunks(records):
                    await nc.publish(
                        subject("result"),
                        pack("result", {"partition": index, "attempt": attempt if attempt is not None else -1, "seq": seq, "last": last, "records": chunk}),
                    )
            dataset = None
            if job.get("cacheResult"):
                dataset = "ds-%s" % cid
                self.datasets[dataset] = self.session.result_data(state["rdd"], typed)
            await nc.publish(subject("job_finished"), pack("job_finished", {"partitions": len(summaries), "records": total, "dataset": dataset}))
        except Exception as err:  # noqa: BLE001
            if job.get("cacheResult"):
                state["rdd"].unpersist()
            text = str(err) if isinstance(err, NotRetried) else describe_error(err)
            m = re.search(r"Task (\d+) in stage [\d.]+ failed (\d+) times", text)
            fields = {"error": text, "cancelled": state["cancelled"]}
            if isinstance(err, NotRetried):
                fields.update(partition=err.partition, failures=1)
            elif m:
                fields.update(partition=int(m.group(1)), failures=int(m.group(2)))
            await nc.publish(subject("job_failed"), pack("job_failed", fields))
        finally:
            self.jobs.pop(cid, None)
            state["done"].set()
            # Cancel requests are answered once the job has ended, before the run's connection goes.
            for reply in state["cancel_replies"]:
                await nc.publish(reply, pack("cancelled", {"running": True}))
            try:
                await flush_bus(nc, self.reconnect_window_s)
            finally:
                await end_bus(nc)

    async def on_cancel(self, msg, cid):
        state = self.jobs.get(cid)
        if state is None:
            await self.reply(msg, "cancelled", running=False)
            return
        state["cancelled"] = True
        if msg.reply:
            state["cancel_replies"].append(msg.reply)
        await self.in_thread(self.session.cancel, state["group"])

    async def on_dataset(self, msg, body):
        data = self.datasets.get(body.get("id"))
        op = body.get("op")
        if data is None:
            raise SpsError("SPS_SPARK_DATASET", "result dataset %s is not in the Spark application (unpersisted, or the application ended)" % body.get("id"))
        if op == "count":
            n = await self.in_thread(data.count)
            await self.reply(msg, "count", count=n)
        elif op == "collect":
            records = await self.in_thread(data.collect)
            packed = pack("records", {"records": records})
            if len(packed) > MAX_MESSAGE_BYTES:
                raise SpsError(
                    "SPS_SPARK_DATASET", "result dataset %s holds %d bytes, too many to collect over NATS; save() it instead" % (body.get("id"), len(packed))
                )
            await msg.respond(packed)
        elif op == "save":
            fmt, path, mode = body.get("format", "parquet"), body["path"], body.get("mode", "errorifexists")
            await self.in_thread(lambda: data.df().write.mode(mode).format(fmt).save(path))
            await self.reply(msg, "saved", path=path, format=fmt)
        elif op == "unpersist":
            del self.datasets[body["id"]]
            await self.in_thread(data.unpersist)
            await self.reply(msg, "unpersisted")
        else:
            raise SpsError("SPS_SPARK_DATASET", "unknown dataset operation %r" % (op,))

    async def on_sql(self, msg, body):
        limit = int(body.get("limit", 10000))

        def run():
            df = self.spark.sql(body["statement"])
            return [r.asDict(recursive=True) for r in df.limit(limit).collect()] if df.columns else []

        rows = await self.in_thread(run)
        await self.reply(msg, "rows", rows=json.loads(json.dumps(rows, default=str)))

    async def on_status(self, msg, body):
        await self.reply(
            msg,
            "status-reply",
            activeJobs=self.session.active_jobs(),
            jobs=sorted(self.jobs.keys()),
            datasets=sorted(self.datasets.keys()),
            slots=self.session.slots(),
        )

    def cancel_jobs(self):
        """Cancels every job of the runner in the session (from any thread)."""
        for state in list(self.jobs.values()):
            self.session.cancel(state["group"])

    async def on_close(self, msg, body):
        self.cancel_jobs()
        await self.reply(msg, "closing")
        await flush_bus(self.nc, self.reconnect_window_s)
        self.closed.set()


def arrow_records(blob):
    """The rows of one Arrow IPC stream of a result as records (dicts) for the driver."""
    import pyarrow as pa

    return json.loads(json.dumps(pa.ipc.open_stream(blob).read_all().to_pylist(), default=str))


class ResultData:
    """A run's cached result in the application: the task outputs (persisted), as records, or as
    a typed DataFrame when the partitions returned Arrow (a result with a schema)."""

    def __init__(self, spark, tagged, typed):
        self.spark = spark
        self.tagged = tagged
        self.typed = typed

    def records(self):
        return self.tagged.filter(lambda t: t[2] not in (HEADER, FAILED)).flatMap(lambda t: arrow_records(t[3]) if t[2] == ARROW else [t[3]])

    def count(self):
        return self.records().count()

    def collect(self):
        return self.records().collect()

    def df(self):
        if self.typed:
            return arrow_result_df(self.spark, self.tagged.filter(lambda t: t[2] == ARROW).map(lambda t: t[3]))
        # Records become JSON lines so Spark infers one schema over all of them; records that are
        # not objects are wrapped as {"value": record}.
        lines = self.records().map(lambda r: json.dumps(r if isinstance(r, dict) else {"value": r}, default=str))
        return self.spark.read.json(lines)

    def unpersist(self):
        self.tagged.unpersist()


def arrow_result_df(spark, blobs):
    """A DataFrame with the columns and types of the Arrow result streams `blobs` (an RDD of
    bytes). The streams come to the driver, as every result does (see run_action), and Spark
    takes the Arrow table as it is (createDataFrame of a pyarrow Table: no row-by-row step)."""
    import pyarrow as pa

    tables = [pa.ipc.open_stream(blob).read_all() for blob in blobs.collect()]
    if not tables:
        raise SpsError("SPS_SPARK_DATASET", "the result has a schema but no partition returned a record batch")
    # Partitions may differ in what they declared nullable or in string widths; permissive unifies.
    return spark.createDataFrame(pa.concat_tables(tables, promote_options="permissive"))


class SpsError(Exception):
    def __init__(self, code, message, **fields):
        super().__init__(message)
        self.code = code
        self.fields = fields


class NotRetried(Exception):
    """A partition's worker failed in a way no retry can fix: its task ended without retries."""

    def __init__(self, partition, message):
        super().__init__(message)
        self.partition = partition


def describe_error(err):
    text = str(err)
    # Py4J errors carry the whole Java stack; the first lines say what went wrong.
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    head = lines[:12]
    # A Python worker's traceback ends with what it raised ("ValueError: …"), past those lines: keep it.
    raised = next((line.strip() for line in reversed(lines) if re.match(r"\s*\w+(Error|Exception): ", line)), None)
    if raised and raised not in (line.strip() for line in head):
        head.append(raised)
    return "\n".join(head)


def msgpack_size(value):
    import msgpack

    return msgpack.packb(value, use_bin_type=True, default=str)


def chunks(records):
    """Splits one partition's records into pieces that fit a NATS message."""
    if not records:
        yield 0, [], True
        return
    pieces, pending = [], [records]
    while pending:
        part = pending.pop(0)
        if len(part) > 1 and len(msgpack_size(part)) > MAX_MESSAGE_BYTES:
            half = len(part) // 2
            pending[0:0] = [part[:half], part[half:]]
        else:
            pieces.append(part)
    for i, piece in enumerate(pieces):
        yield i, piece, i == len(pieces) - 1


PROTOCOL = {"version": None, "validators": {}, "framing": None}


class MalformedMessage(Exception):
    pass


def load_protocol(path):
    """Loads the protocol's JSON Schema: one validator per message type."""
    import jsonschema

    with open(path, "r", encoding="utf-8") as f:
        doc = json.load(f)
    cls = jsonschema.validators.validator_for(doc)
    PROTOCOL["version"] = doc["version"]
    PROTOCOL["framing"] = doc["framing"]
    PROTOCOL["validators"] = {t: cls(schema) for t, schema in doc["definitions"].items()}


def check(t, fields, where):
    validator = PROTOCOL["validators"].get(t)
    if validator is None:
        raise MalformedMessage("%s: unknown message type %r" % (where, t))
    error = next(iter(validator.iter_errors(fields)), None)
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        raise MalformedMessage("%s: %r %s: %s" % (where, t, ("field %r" % path) if path else "message", error.message[:300]))


def pack(t, fields):
    """Encodes a message; what we send is checked against the protocol like what we take."""
    import msgpack

    check(t, fields, "outgoing")
    return msgpack.packb(dict({"v": PROTOCOL["version"], "t": t}, **fields), use_bin_type=True, default=str)


def unpack(data, expected, subject):
    """Decodes a message of type `expected` and validates it; raises MalformedMessage saying why."""
    import msgpack

    if len(data) > 8 * 1024 * 1024:
        raise MalformedMessage("%s: %d bytes is too large" % (subject, len(data)))
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as err:  # noqa: BLE001
        raise MalformedMessage("%s: not msgpack (%s)" % (subject, err)) from err
    if not isinstance(value, dict):
        raise MalformedMessage("%s: not an envelope" % subject)
    if value.get("v") != PROTOCOL["version"]:
        raise MalformedMessage("%s: protocol version %r, expected %r" % (subject, value.get("v"), PROTOCOL["version"]))
    if value.get("t") != expected:
        raise MalformedMessage("%s: message type %r, expected %r" % (subject, value.get("t"), expected))
    fields = {k: v for k, v in value.items() if k not in ("v", "t")}
    check(expected, fields, subject)
    return fields


def connect_options(access):
    """nats-py options for one identity's bus access (the JSON the driver made; see bus-access.ts)."""
    import ssl

    opts = {"servers": access["url"].split(",")}
    auth = access.get("auth") or {}
    if "nkeySeed" in auth:
        opts["nkeys_seed_str"] = auth["nkeySeed"]
    elif "token" in auth:
        opts["token"] = auth["token"]
    elif "user" in auth:
        opts["user"], opts["password"] = auth["user"], auth["pass"]
    elif "creds" in auth:
        import tempfile

        # nats-py reads creds from a file: a private one, removed once connected.
        fd, path = tempfile.mkstemp(prefix="sps-creds-")
        with os.fdopen(fd, "w") as f:
            f.write(auth["creds"])
        opts["user_credentials"] = path
    tls = access.get("tls")
    if tls is not None or access["url"].startswith("tls://"):
        ctx = ssl.create_default_context(cadata=tls.get("ca")) if tls and tls.get("ca") else ssl.create_default_context()
        if tls and tls.get("cert"):
            import tempfile

            with tempfile.TemporaryDirectory() as d:
                cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
                for path, text in ((cert, tls["cert"]), (key, tls["key"])):
                    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                        f.write(text)
                ctx.load_cert_chain(cert, key)
        opts["tls"] = ctx
    if access.get("inboxPrefix"):
        opts["inbox_prefix"] = access["inboxPrefix"]
    return opts


def reconnect_window_s(access):
    """The reconnect window the driver chose for the bus connections, in seconds."""
    return (access.get("reconnectWindowMs") or 30000) / 1000.0


async def nats_connect(access, name, closed_cb=None, error_cb=None):
    import nats

    opts = connect_options(access)
    if error_cb is not None:
        opts["error_cb"] = error_cb
    # Reconnect for the whole window the driver chose, as the driver and the workers do.
    attempts = max(1, int(reconnect_window_s(access) / 0.25))
    try:
        return await nats.connect(name=name, max_reconnect_attempts=attempts, reconnect_time_wait=0.25, closed_cb=closed_cb, allow_reconnect=True, **opts)
    finally:
        if "user_credentials" in opts:
            os.unlink(opts["user_credentials"])


async def flush_bus(nc, window_s=30.0):
    """Flushes `nc`, riding out a reconnect: on a loaded host the server may drop a connection that
    read too slowly, and what was published waits in the client's buffer until it is back. Gives up
    once the connection is closed or `window_s` (the run's reconnect window) has passed."""
    import nats.errors

    deadline = time.monotonic() + window_s
    while True:
        try:
            await nc.flush()
            return
        except nats.errors.FlushTimeoutError:
            if nc.is_closed or time.monotonic() >= deadline:
                raise


async def end_bus(nc):
    """Drains `nc` when it is connected, else closes it: a connection still reconnecting cannot
    drain, and ending it must not hide what ended the run."""
    if nc.is_closed:
        return
    if nc.is_connected:
        try:
            await nc.drain()
            return
        except Exception:  # noqa: BLE001 - the connection went while draining: close what is left
            pass
    await nc.close()


def watch_parent():
    """The runner ends when spark-submit (its parent) is gone, whatever killed it."""
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(3)


async def serve_runner(spark, bus, app_id, job_dir, slot_wait_s, session_sources=None, on_runner=None, error_cb=None):
    """Serves the application's orders on `spark` until told to close or the bus is lost, then
    cancels the jobs still running. spark-submit's runner (amain) and a process hosting the runner
    in its own session (the Python package) both run this; `on_runner` is given the Runner, and
    `error_cb` the bus connections' errors."""
    lost = asyncio.Event()

    async def on_closed():
        lost.set()

    nc = await nats_connect(bus, "sps-spark-runner-%s" % app_id, closed_cb=on_closed, error_cb=error_cb)
    runner = Runner(spark, app_id, nc, job_dir, slot_wait_s, session_sources, error_cb, reconnect_window_s(bus))
    if on_runner is not None:
        on_runner(runner)
    serving = asyncio.ensure_future(runner.serve())
    await asyncio.wait([serving, asyncio.ensure_future(lost.wait())], return_when=asyncio.FIRST_COMPLETED)
    failed = serving.exception() if serving.done() else None
    if failed is None and not runner.ready:
        # The bus went before `ready` did: the driver waiting for it learns why at once.
        failed = SpsError("SPS_SPARK_START", "the runner's bus connection closed before the runner was ready")
    if failed is None:
        runner.cancel_jobs()
    await end_bus(nc)
    if failed is not None:
        # The host learns why its runner could not serve (the Python package tells its driver).
        raise failed


async def amain(args):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(args.app_name).getOrCreate()
    spark.sparkContext.setLogLevel(args.log_level)
    await serve_runner(spark, args.bus, args.app_id, args.job_dir, args.slot_wait_ms / 1000.0)
    spark.stop()


def main():
    parser = argparse.ArgumentParser(description="spark-partition-server runner (started by spark-submit)")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--app-name", default="spark-partition-server")
    parser.add_argument("--slot-wait-ms", type=int, default=30000)
    parser.add_argument("--log-level", default="WARN")
    args = parser.parse_args()
    # Read once and dropped: executors of a local master inherit this process's environment.
    raw_bus = os.environ.pop("SPS_RUNNER_BUS", None)
    if not raw_bus:
        sys.stderr.write("[sps runner] SPS_RUNNER_BUS is not set\n")
        sys.exit(2)
    args.bus = json.loads(raw_bus)
    load_protocol(args.protocol)
    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        asyncio.run(amain(args))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    # Py4J and executor threads may linger; the application is over.
    os._exit(0)


if __name__ == "__main__":
    main()
