"""Finds Node and the spark-partition-server Node library this package drives, and loads the
library's Spark runner module, whose code runs the partitions in the user's session."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from types import ModuleType

from .errors import DependencyMissingError

PACKAGE = "spark-partition-server"
# The Node entry the Python Cluster starts, inside the package.
DRIVER_ENTRY = os.path.join("dist", "src", "driver", "python-driver.js")
# The library's Spark runner, shipped with the compiled Spark launcher.
RUNNER_ENTRY = os.path.join("dist", "src", "spark", "runner", "sps_runner.py")


def node_executable() -> str:
    """The `node` on PATH (or `$SPS_NODE`)."""
    given = os.environ.get("SPS_NODE")
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise DependencyMissingError("SPS_NODE=%s is not an executable file (the Node.js to run)" % given)
        return given
    node = shutil.which("node")
    if not node:
        raise DependencyMissingError("Node.js was not found on PATH (nor $SPS_NODE); install Node 20.19 or newer")
    return node


def node_package(cwd: str | None = None) -> str:
    """The Node library's folder: `$SPS_NODE_PACKAGE`, else the `spark-partition-server` that
    Node resolves from the current folder (as `import` in a script there would)."""
    given = os.environ.get("SPS_NODE_PACKAGE")
    if given:
        folder = os.path.abspath(given)
        if not os.path.isfile(os.path.join(folder, DRIVER_ENTRY)):
            raise DependencyMissingError(
                "SPS_NODE_PACKAGE=%s is not a built spark-partition-server package (no %s there; run npm run build in a clone)" % (given, DRIVER_ENTRY)
            )
        return folder
    node = node_executable()
    probe = "console.log(require('node:path').dirname(require.resolve('%s/package.json')))" % PACKAGE
    found = subprocess.run([node, "-e", probe], cwd=cwd or os.getcwd(), capture_output=True, text=True, timeout=60)
    folder = found.stdout.strip()
    if found.returncode != 0 or not folder:
        raise DependencyMissingError(
            "the Node library %s was not found: SPS_NODE_PACKAGE is not set and Node does not resolve %r from %s "
            "(npm install %s there, or set SPS_NODE_PACKAGE to its folder)" % (PACKAGE, PACKAGE, cwd or os.getcwd(), PACKAGE)
        )
    if not os.path.isfile(os.path.join(folder, DRIVER_ENTRY)):
        raise DependencyMissingError("%s at %s has no %s (an unbuilt clone? run npm run build there)" % (PACKAGE, folder, DRIVER_ENTRY))
    return folder


def load_runner(path: str) -> ModuleType:
    """The library's runner module (sps_runner.py), loaded once. Its task functions are pickled
    by value, so executors run them without this package or the module being installed there."""
    module = sys.modules.get("sps_runner")
    if module is not None and getattr(module, "__file__", None) == path:
        return module
    spec = importlib.util.spec_from_file_location("sps_runner", path)
    if spec is None or spec.loader is None:
        raise DependencyMissingError("cannot load the runner module %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sps_runner"] = module
    spec.loader.exec_module(module)
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
    return module
