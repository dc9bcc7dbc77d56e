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
# SANDBOXD_DEMO_DIR (default run/) holds the socket, the config and the
# state; the daemon's cgroup subtree is SANDBOXD_DEMO_SUBTREE (default
# sandboxd-demo), so that the demo never meets a sandboxd service.
dir=${SANDBOXD_DEMO_DIR:-$PWD/run}
mkdir -p "$dir/state"
chmod 755 "$dir" "$dir/state"
export SANDBOXD_SOCKET=$dir/sandboxd.sock
cat > "$dir/config.toml" <<TOML
socket = "$SANDBOXD_SOCKET"
state_dir = "$dir/state"
cgroup_subtree = "${SANDBOXD_DEMO_SUBTREE:-sandboxd-demo}"
log_format = "text"
TOML

sandboxd=${SANDBOXD_BIN:-bin/sandboxd}
sandboxctl=${SANDBOXCTL_BIN:-bin/sandboxctl}

# The log prefixer ignores Ctrl-C, so that it shows the daemon's drain.
"$sandboxd" serve --config "$dir/config.toml" 2> >(trap '' INT; sed 's/^/  [sandboxd] /' >&2) &
daemon=$!
# Ctrl-C (or SIGTERM) drains the daemon; the demo ends with the daemon's
# own exit status, 0 after a clean drain.
stop() {
	trap - INT TERM EXIT
	[ -n "${gateway:-}" ] && kill -TERM "$gateway" 2>/dev/null || true
	kill -TERM $daemon 2>/dev/null || true
	rc=0
	wait $daemon || rc=$?
	exit $rc
}
trap stop INT TERM EXIT
gateway=
for _ in $(seq 100); do "$sandboxctl" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$sandboxctl" ping >/dev/null

ctl() {
	local title=$1; shift
	echo
	echo "== $title"
	printf '$ sandboxctl'; printf ' %q' "$@"; echo
	"$sandboxctl" "$@" || true
}
ctl "a normal program" run -- python3 -c 'import platform; print("hello from", platform.node())'
ctl "an infinite loop, stopped by its CPU limit" run --cpu-time-ms 500 -- python3 -c 'while True: pass'
ctl "a memory hog under 64 MiB" run --memory-bytes 67108864 -- python3 -c 'x = bytearray(1 << 30); x[::4096] = b"x" * len(x[::4096])'
ctl "a fork bomb under 32 pids: the 33rd process is refused" run --pids 32 -- python3 -c '
import os, time
n = 1
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as e:
    print(f"process {n + 1} refused: {e.strerror}")'
ctl "a forbidden system call" run -- python3 -c 'import ctypes; ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)'
ctl "reading the host" run -- sh -c 'cat /etc/shadow; ls /home /root; id'

# The playground: sandboxd gateway --web on loopback (SANDBOXD_DEMO_WEB,
# default 127.0.0.1:8080; port 0 takes a free one).
exec 3< <("$sandboxd" gateway --socket "$SANDBOXD_SOCKET" --web "${SANDBOXD_DEMO_WEB:-127.0.0.1:8080}" --log-format text \
	2> >(trap '' INT; sed 's/^/  [gateway] /' >&2))
gateway=$!
web=
read -r -t 10 _ web <&3 || true

cat <<MSG

sandboxd is serving on $SANDBOXD_SOCKET (Ctrl-C stops it). Try, in another shell:
  export SANDBOXD_SOCKET=$SANDBOXD_SOCKET
  bin/sandboxctl info
  bin/sandboxctl run --stream -- sh -c 'for i in 1 2 3; do echo \$i; sleep 1; done'
  bin/sandboxctl run --stream -- python3 -c 'import time
for i in range(3): print(i); time.sleep(1)'
  curl --unix-socket \$SANDBOXD_SOCKET http://sandboxd/v1/run -d '{"steps":[{"argv":["echo","hi"]}]}'
MSG
if [ -n "$web" ]; then
	echo
	echo "The playground (type Python or C, Ctrl+Enter runs): http://$web/"
else
	echo "(the playground's gateway did not start; is ${SANDBOXD_DEMO_WEB:-127.0.0.1:8080} in use? set SANDBOXD_DEMO_WEB)"
fi
wait $daemon || true
stop
