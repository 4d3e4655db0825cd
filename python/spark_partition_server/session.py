"""What the package reads of the user's session: which session a run uses, whether it is a Spark
Connect one, and the settings the Node driver needs from it."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from .errors import InvalidOptionError

# Spark settings the Node driver needs: where executors reach this driver (for the bus's address).
DRIVER_CONF = ("spark.driver.host", "spark.driver.bindAddress")


def session_of(spark: Any, data: Any) -> Any:
    """The SparkSession to run in: the DataFrame's own, else the one of `spark` (a session or a
    SparkContext)."""
    own = getattr(data, "sparkSession", None)
    if own is not None:
        return own
    if is_connect(spark) or hasattr(spark, "sparkContext"):
        return spark
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if isinstance(spark, SparkContext):
        return SparkSession(spark)
    raise InvalidOptionError("spark", "must be a SparkSession, SparkContext or Application, got %s" % type(spark).__name__)


def is_connect(session: Any) -> bool:
    """True for a Spark Connect client session (SparkSession.builder.remote): it has no
    SparkContext, and its DataFrames are plans the Connect server runs."""
    return type(session).__module__.startswith("pyspark.sql.connect.")


def conf(session: Any, key: str, default: str | None = None) -> str | None:
    """A Spark setting of the session: its SparkContext's, or on Spark Connect the server's."""
    if is_connect(session):
        value = session.conf.get(key, default)
        return None if value is None else str(value)
    return session.sparkContext.getConf().get(key, default)  # type: ignore[no-any-return]


def max_failures(session: Any) -> int:
    """Task attempts per partition, as the session retries them: F of local[N,F], once on another
    local master (local mode never retries), else spark.task.maxFailures."""
    master = conf(session, "spark.master", "") or ""
    m = re.match(r"^local(?:\[(?:\*|\d+)(?:\s*,\s*(\d+))?\])?$", master.strip())
    if m:
        return int(m.group(1)) if m.group(1) else 1
    return int(conf(session, "spark.task.maxFailures", "4") or "4")


def connect_bus_host(session: Any) -> str | None:
    """On a Spark Connect session whose server is on another host, this host's address on the
    route to it: where that server's executors reach the run's bus. None for a server on this host
    (its executors reach the bus on loopback) or one whose address does not resolve."""
    host = str(session.client.host).strip("[]")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)[0]
    except (OSError, IndexError):
        return None
    if ipaddress.ip_address(address[0]).is_loopback:
        return None
    # A UDP socket's connect sends nothing: it only picks the route, and so the local address.
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((address[0], 9))
        return str(probe.getsockname()[0])
