#!/usr/bin/env bash
# The /docs page in a real browser: headless Chromium from Debian's
# packages, driven by playwright-core (ci/browser/docs.test.mjs), against a
# live `clientele serve` on a fresh SQLite file. Checks that the page loads
# with no console error and no request to another host, shows the three
# vendor groups, and that a PATCH of an ICP tried from the page with a key
# this script creates answers 200 with the updated ICP on screen; then
# checks with curl that the ICP really changed. Screenshots are kept in
# target/browser/ (docs.png, the whole page; docs-response.png, the answer).
#
#   ci/browser-test.sh
#
# Playwright's own browser download is not reachable from CI, so the
# system's /usr/bin/chromium is used (installed with apt-get if absent,
# which needs root). See docs/testing.md.
set -euo pipefail
# shellcheck source=ci/lib/listening.sh
. "$(dirname "$0")/lib/listening.sh"

cd "$(dirname "$0")/.."
ROOT=$PWD
CHROMIUM=/usr/bin/chromium
OUT="$ROOT/target/browser"

# ---- tools ----------------------------------------------------------------

if [ -x "$CHROMIUM" ]; then
    echo "== chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
    echo "== $CHROMIUM is absent: apt-get install -y chromium"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    else
        SUDO=(sudo)
    fi
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q chromium
fi

echo "== npm ci in ci/browser (playwright-core, pinned by its lock file)"
(cd ci/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo build"
cargo build --quiet
BIN="$ROOT/target/debug/clientele"

# ---- the server, a key and an ICP -----------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clientele-browser.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DATABASE_URL="sqlite://$WORK/x.db"
"$BIN" serve --listen 127.0.0.1:0 --database-url "$DATABASE_URL" \
    --webhook-key-file "$WORK/key" --log warn >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
if ! ADDRESS=$(listening_address "$WORK/server.out" "$SERVER_PID"); then
    echo "the server did not start; its log:" >&2
    cat "$WORK/server.out" "$WORK/server.err" >&2
    exit 1
fi
BASE="http://$ADDRESS"
echo "== server at $BASE"

if ! TOKEN=$("$BIN" keys create --workspace docs --user user_abc123 --admin \
    --database-url "$DATABASE_URL" 2>"$WORK/keys.err"); then
    cat "$WORK/keys.err" >&2
    exit 1
fi

created=$(curl -sS --fail-with-body -X POST "$BASE/api/v1/entities/icps" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"Enterprise Tech Leaders","leadProviderCriteria":[{"provider":"baseProvider","type":"person","filters":{"job_titles":["CTO"]}}]}')
ICP_ID=$(printf '%s' "$created" | sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p')
if [ -z "$ICP_ID" ]; then
    echo "creating the ICP answered: $created" >&2
    exit 1
fi
echo "== ICP $ICP_ID created (name \"Enterprise Tech Leaders\")"

# ---- the browser ------------------------------------------------------------

echo "== /docs in headless Chromium"
rm -rf "$OUT"
mkdir -p "$OUT"
status=0
BASE_URL="$BASE" TOKEN="$TOKEN" ICP_ID="$ICP_ID" OUT_DIR="$OUT" CHROMIUM="$CHROMIUM" \
    USER_DATA_DIR="$WORK/chromium-profile" \
    node ci/browser/docs.test.mjs || status=$?
cp "$WORK/server.err" "$OUT/server.log"
if [ "$status" -ne 0 ]; then
    echo "browser test FAILED (exit $status); screenshots and the server log in $OUT" >&2
    exit "$status"
fi

# ---- the PATCH really happened ----------------------------------------------

echo "== GET the ICP with curl: the PATCH sent from the page is stored"
stored=$(curl -sS --fail-with-body "$BASE/api/v1/entities/icps/$ICP_ID" -H "Authorization: Bearer $TOKEN")
for expected in '"name":"Updated ICP Name"' '"leadsPerList":50' \
    '"customFilterCriteria":[{"type":"maxPeoplePerCompany","value":5}]'; do
    if [[ "$stored" != *"$expected"* ]]; then
        echo "the stored ICP lacks $expected: $stored" >&2
        exit 1
    fi
done
echo "stored: name \"Updated ICP Name\", leadsPerList 50, customFilterCriteria maxPeoplePerCompany 5"
echo "== browser test passed; screenshots: $OUT/docs.png, $OUT/docs-response.png"
