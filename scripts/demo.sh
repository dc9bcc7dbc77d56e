#!/bin/bash
# make run: starts the daemon on run/sandboxd.sock, shows a few programs run
# through sandboxctl (each with its verdict and what it used), then keeps the
# daemon in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "sandboxd needs root: run make run as root" >&2
	exit 1
fi
mkdir -p run
export SANDBOXD_SOCKET=$PWD/run/sandboxd.sock
cat > run/config.toml <<TOML
socket = "$SANDBOXD_SOCKET"
log_format = "text"
TOML

# The log prefixer ignores Ctrl-C, so that it shows the daemon's drain.
bin/sandboxd serve --config run/config.toml 2> >(trap '' INT; sed 's/^/  [sandboxd] /' >&2) &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT
for _ in $(seq 100); do bin/sandboxctl ping >/dev/null 2>&1 && break; sleep 0.1; done
bin/sandboxctl ping >/dev/null

ctl() {
	local title=$1; shift
	echo
	echo "== $title"
	printf '$ sandboxctl'; printf ' %q' "$@"; echo
	bin/sandboxctl "$@" || true
}
ctl "a normal program" run -- python3 -c 'import platform; print("hello from", platform.node())'
ctl "an infinite loop, stopped by its CPU limit" run --cpu-time-ms 500 -- python3 -c 'while True: pass'
ctl "a memory hog under 64 MiB" run --memory-bytes 67108864 -- python3 -c 'x = bytearray(1 << 30); x[::4096] = b"x" * len(x[::4096])'
ctl "a fork bomb under 32 pids" run --pids 32 --wall-time-ms 1000 -- sh -c 'exec 2>/dev/null; f() { f | f & }; f; sleep 10'
ctl "a forbidden system call" run -- python3 -c 'import ctypes; ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)'
ctl "reading the host" run -- sh -c 'cat /etc/shadow; ls /home /root; id'

cat <<MSG

sandboxd is serving on $SANDBOXD_SOCKET (Ctrl-C stops it). Try, in another shell:
  export SANDBOXD_SOCKET=$SANDBOXD_SOCKET
  bin/sandboxctl info
  bin/sandboxctl run --stream -- sh -c 'for i in 1 2 3; do echo \$i; sleep 1; done'
  curl --unix-socket \$SANDBOXD_SOCKET http://sandboxd/v1/run -d '{"steps":[{"argv":["echo","hi"]}]}'
MSG
wait $daemon
