#!/bin/bash
# make bench-web: a daemon on a temp socket and `sandboxd gateway --web` in
# front of it, then test/webbench: execute -> first output line of print(1)
# over the playground's WebSocket, beside POST /v1/run of the same job, at 1
# and 4 concurrent connections. WEBBENCHFLAGS passes flags (--runs N).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-web needs root" >&2; exit 1; }
dir=$(mktemp -d)
chmod 755 "$dir"
cat > "$dir/config.toml" <<TOML
socket = "$dir/sandboxd.sock"
state_dir = "$dir"
cgroup_subtree = "sandboxd-bench-web-$$"
log_format = "json"
TOML
bin/sandboxd serve --config "$dir/config.toml" 2>"$dir/daemon.log" &
daemon=$!
gw=
cleanup() {
	[ -n "$gw" ] && kill -TERM "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
	kill -TERM $daemon 2>/dev/null && wait $daemon 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
for _ in $(seq 100); do SANDBOXD_SOCKET=$dir/sandboxd.sock bin/sandboxctl ping >/dev/null 2>&1 && break; sleep 0.1; done
exec 3< <(bin/sandboxd gateway --socket "$dir/sandboxd.sock" --web 127.0.0.1:0 --log-format json 2>"$dir/gateway.log")
gw=$!
read -r _ addr <&3
go run ./test/webbench --socket "$dir/sandboxd.sock" --web "$addr" ${WEBBENCHFLAGS:-}
