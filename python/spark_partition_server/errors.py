"""The package's exceptions: each carries the library's stable `code` (`SPS_...`) and message,
as the TypeScript library's errors do."""

from __future__ import annotations


class SparkPartitionServerError(Exception):
    """An error of spark-partition-server, with its machine-readable `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidOptionError(SparkPartitionServerError, ValueError):
    """An argument or option given to `Cluster` is invalid; `option` names it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__("SPS_INVALID_OPTION", message)
        self.option = option


class DependencyMissingError(SparkPartitionServerError):
    """Node or the spark-partition-server Node library could not be found."""

    def __init__(self, message: str) -> None:
        super().__init__("SPS_DEPENDENCY_MISSING", message)


class UnsupportedError(SparkPartitionServerError):
    """What was asked is not supported in this setting (e.g. a Spark Connect session); the message
    names what and says what works instead."""

    def __init__(self, message: str) -> None:
        super().__init__("SPS_UNSUPPORTED", message)


class BadKeyError(SparkPartitionServerError, ValueError):
    """A key that is neither a string nor an integer (`partition_of`, `request_by_key`)."""

    def __init__(self, message: str) -> None:
        super().__init__("SPS_BAD_KEY", message)


class RequestError(SparkPartitionServerError):
    """A request to one partition's endpoint failed; `partition` and `endpoint` say which."""

    def __init__(self, code: str, partition: int, endpoint: str, message: str) -> None:
        super().__init__(code, "partition %d, endpoint %r: %s" % (partition, endpoint, message))
        self.partition = partition
        self.endpoint = endpoint


def from_reply(reply: dict[str, object]) -> SparkPartitionServerError:
    """The exception for an `error` answer of the Node driver."""
    code, message = str(reply.get("code")), str(reply.get("message"))
    if code == "SPS_INVALID_OPTION" and reply.get("option") is not None:
        return InvalidOptionError(str(reply["option"]), message)
    return SparkPartitionServerError(code, message)
