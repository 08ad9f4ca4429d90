#!/usr/bin/env bash
# Installs the Standard Webhooks reference library (`standardwebhooks` from
# PyPI, pinned) into a virtualenv and prints the path of its Python, for
# CLIENTELE_WEBHOOK_VERIFIER: the webhook tests hand every delivery they
# received to ci/verify_webhooks.py under that interpreter, so signatures
# are checked by code no one here wrote. See docs/testing.md.
#
#   export CLIENTELE_WEBHOOK_VERIFIER=$(ci/webhook-verifier.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.3.0
VENV="$PWD/.venv-webhooks"
if ! "$VENV/bin/python" -c "import standardwebhooks, importlib.metadata as m; \
assert m.version('standardwebhooks') == '$VERSION'" 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "standardwebhooks==$VERSION" >&2
fi
echo "$VENV/bin/python"
