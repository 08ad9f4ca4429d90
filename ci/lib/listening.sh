# Sourced by the ci/ scripts that start `clientele serve --listen 127.0.0.1:0`.
#
# listening_address OUT PID: waits (up to 30 s) for the server PID to print
# "clientele listening on http://ADDRESS" into OUT, and prints ADDRESS;
# returns 1, printing nothing, if the server exits or never says it.
listening_address() {
    local out=$1 pid=$2 address=""
    for _ in $(seq 1 300); do
        address=$(sed -n 's|^clientele listening on http://||p' "$out")
        if [ -n "$address" ]; then
            echo "$address"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}
