#!/usr/bin/env bash
# Installs the Prometheus Python client (`prometheus_client` from PyPI,
# pinned) into a virtualenv and prints the path of its Python, for
# CLIENTELE_PROMETHEUS_PARSER: the metrics test hands what /metrics served
# to ci/parse_metrics.py under that interpreter, so the exposition is read
# by a real Prometheus text parser rather than by our own code. See
# docs/testing.md.
#
#   export CLIENTELE_PROMETHEUS_PARSER=$(ci/prometheus-parser.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.26.0
VENV="$PWD/.venv-prometheus"
if ! "$VENV/bin/python" -c "import prometheus_client, importlib.metadata as m; \
assert m.version('prometheus_client') == '$VERSION'" 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "prometheus_client==$VERSION" >&2
fi
echo "$VENV/bin/python"
