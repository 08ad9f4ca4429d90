#!/usr/bin/env bash
# Property-based API testing from the OpenAPI document: runs Schemathesis
# against a live `clientele serve` on each backend (SQLite, then
# PostgreSQL), authenticated as an admin, over every operation, with every
# response check on. Exits non-zero if any check fails on either backend.
#
#   ci/schemathesis.sh                   # both backends, 20 examples per operation
#   ci/schemathesis.sh --many            # both backends, 500 examples per operation
#   ci/schemathesis.sh sqlite            # one backend
#   SCHEMATHESIS_EXAMPLES=100 ci/schemathesis.sh
#   SCHEMATHESIS_SEED=1234 ci/schemathesis.sh   # replay a run's seed
#
# PostgreSQL is reached at $PGHOST:$PGPORT as $PGUSER (default
# 127.0.0.1:5432, postgres, trust auth); a throwaway database is created
# for the run and dropped afterwards. See docs/testing.md.
set -euo pipefail
# shellcheck source=ci/lib/listening.sh
. "$(dirname "$0")/lib/listening.sh"

cd "$(dirname "$0")/.."
ROOT=$PWD

# Pinned so a new release's new checks cannot turn the run red on its own.
SCHEMATHESIS_VERSION=4.32.5
VENV="$ROOT/.venv-schemathesis"
CONFIG="$ROOT/ci/schemathesis.toml"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-20}"
MANY_EXAMPLES=500
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
export PGHOST PGPORT PGUSER

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

BACKENDS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --many) EXAMPLES="${SCHEMATHESIS_EXAMPLES:-$MANY_EXAMPLES}" ;;
        sqlite | postgres) BACKENDS+=("$1") ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ ${#BACKENDS[@]} -eq 0 ]; then
    BACKENDS=(sqlite postgres)
fi

# ---- tools ----------------------------------------------------------------

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== cargo build"
cargo build --quiet
BIN="$ROOT/target/debug/clientele"

# ---- one run per backend -------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clientele-schemathesis.XXXXXX")
SERVER_PID=""
PG_DATABASE=""

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

drop_database() {
    if [ -n "$PG_DATABASE" ]; then
        psql -q -v ON_ERROR_STOP=1 -d postgres \
            -c "DROP DATABASE IF EXISTS \"$PG_DATABASE\" WITH (FORCE)" >/dev/null || true
        PG_DATABASE=""
    fi
}

cleanup() {
    stop_server
    drop_database
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts the server on a free port and sets ADDRESS from the line it prints.
# Every surface's rate limit is off (whatever CLIENTELE_* variables say):
# thousands of requests from one workspace would otherwise test mostly 429s.
start_server() {
    local database_url=$1 log=$2
    "$BIN" serve --listen 127.0.0.1:0 --database-url "$database_url" \
        --hood-rate-limit off --lance-rate-limit off --clientsuccess-rate-limit off \
        --webhook-key-file "$2.webhook-key" \
        --log warn >"$log.out" 2>"$log.err" &
    SERVER_PID=$!
    if ADDRESS=$(listening_address "$log.out" "$SERVER_PID"); then
        return 0
    fi
    echo "the server did not start; its log:" >&2
    cat "$log.out" "$log.err" >&2
    return 1
}

# Prints the counts from the end of Schemathesis's report: operations
# selected and tested, test cases generated (with failures and skips), and
# its closing line.
summarize() {
    local log=$1 selected tested cases verdict
    selected=$(sed -n 's/^ *Selected: *//p' "$log" | tail -n 1)
    tested=$(sed -n 's/^ *Tested: *//p' "$log" | tail -n 1)
    cases=$(sed -n '/^Test cases:/{n;s/^ *//;p;}' "$log" | tail -n 1)
    verdict=$(grep -E '^=+ .* =+$' "$log" | tail -n 1 | sed -E 's/^=+ (.*) =+$/\1/')
    echo "operations ${selected:-?} selected, ${tested:-?} tested; test cases: ${cases:-?}; ${verdict:-no verdict}"
}

declare -A RESULTS
STATUS=0
for backend in "${BACKENDS[@]}"; do
    echo
    echo "== schemathesis on $backend ($EXAMPLES examples per operation)"
    case "$backend" in
        sqlite)
            database_url="sqlite://$WORK/schemathesis.db"
            ;;
        postgres)
            PG_DATABASE="clientele_schemathesis_$$_$(date +%s)"
            psql -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$PG_DATABASE\"" >/dev/null
            database_url="postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DATABASE"
            ;;
    esac
    start_server "$database_url" "$WORK/server-$backend"
    echo "server at http://$ADDRESS"
    if ! token=$("$BIN" keys create --workspace schemathesis --user schemathesis --admin \
        --database-url "$database_url" 2>"$WORK/keys.err"); then
        cat "$WORK/keys.err" >&2
        exit 1
    fi

    # Kept after the run (under target/, so never committed): JUnit report,
    # Schemathesis's output and the server's log.
    report="$ROOT/target/schemathesis/$backend"
    rm -rf "$report"
    mkdir -p "$report"
    seed_args=()
    if [ -n "${SCHEMATHESIS_SEED:-}" ]; then
        seed_args=(--seed "$SCHEMATHESIS_SEED")
    fi
    # Every check runs: ci/schemathesis.toml selects them (all, with
    # positive_data_acceptance and negative_data_rejection replaced by the
    # variants in ci/schemathesis_hooks.py, which excuse only what they
    # name) and turns use_after_free off for the history routes alone.
    set +e
    SCHEMATHESIS_HOOKS="$ROOT/ci/schemathesis_hooks.py" \
        "$VENV/bin/schemathesis" --config-file "$CONFIG" run "http://$ADDRESS/openapi.json" \
        --max-examples "$EXAMPLES" \
        --header "Authorization: Bearer $token" \
        --generation-database none \
        --report junit --report-dir "$report" \
        --no-color \
        "${seed_args[@]}" 2>&1 | tee "$report/schemathesis.log"
    code=${PIPESTATUS[0]}
    set -e
    stop_server
    drop_database

    cp "$WORK/server-$backend.err" "$report/server.log"
    counts=$(summarize "$report/schemathesis.log")
    RESULTS[$backend]="$counts (exit $code)"
    if [ "$code" -ne 0 ]; then
        STATUS=1
        echo "server log ($backend), last lines; all of it in $report/server.log:"
        tail -n 20 "$report/server.log"
    fi
done

echo
echo "== schemathesis summary ($EXAMPLES examples per operation)"
for backend in "${BACKENDS[@]}"; do
    echo "$backend: ${RESULTS[$backend]}"
done
exit "$STATUS"
