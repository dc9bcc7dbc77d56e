# make test-systemd's checks, run by the guest's vm-check.service (as root,
# under Debian's systemd as PID 1) from the per-run disk at /vm/run, which
# holds the tree of `make install DESTDIR=...` in root/. Each check prints
#
#   sandboxd-test-systemd: PASS|FAIL|SKIP <name>[: why]
#
# then the last line is SANDBOXD-TEST-SYSTEMD-RESULT <status> and the guest
# powers off. The host turns that line into its exit status.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LANG=C.UTF-8
cd /

say() { echo "sandboxd-test-systemd: $*"; }
status=0
pass() { say "PASS $*"; }
fail() {
	say "FAIL $*"
	status=1
}
skip() { say "SKIP $*"; }
finish() {
	say "the daemon's journal, as an operator reads it (journalctl -u sandboxd, last lines):"
	journalctl -u sandboxd.service --no-pager -n 25 | sed 's/^/  | /'
	echo "SANDBOXD-TEST-SYSTEMD-RESULT $status"
	sync
	systemctl poweroff --force --force
	exit "$status"
}
up() { cut -d' ' -f1 /proc/uptime; }
# The guest has no awk package: busybox's.
awk() { /vm/busybox awk "$@"; }
# ms A B: B - A, both in seconds, as milliseconds.
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
prop() { systemctl show -p "$2" --value "$1"; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS.
wait_for() {
	n=$(($1 * 10))
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.1
	done
}
as() { # as USER COMMAND...
	u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"
}
sandbox_uid_base=1800000000
# leftovers prints what a stopped daemon must not leave: processes under
# sandbox uids (and the inits' uid below them), the unit's cgroup with
# anything in it, mounts under /run/sandboxd in any mount namespace,
# workspaces.
leftovers() {
	ps -eo uid=,pid=,args= | awk -v b=$((sandbox_uid_base - 1)) '$1 >= b { print "process: " $0 }'
	cg=/sys/fs/cgroup/system.slice/sandboxd.service
	if [ -d "$cg" ]; then
		find "$cg" -name cgroup.procs | while read -r f; do
			[ -s "$f" ] && echo "cgroup ${f%/cgroup.procs} holds: $(tr '\n' ' ' <"$f")"
		done
		sub=$(find "$cg" -mindepth 1 -type d | head -5 | tr '\n' ' ')
		[ -n "$sub" ] && echo "cgroups: $sub"
	fi
	for m in /proc/[0-9]*/mountinfo; do
		grep -h ' /run/sandboxd/' "$m" 2>/dev/null
	done | sort -u | sed 's/^/mount: /'
	[ -d /run/sandboxd/ws ] && ls -A /run/sandboxd/ws | sed 's/^/workspace: /'
	pgrep -x sandboxd >/dev/null && echo "a sandboxd process: $(pgrep -ax sandboxd)"
	ls -d /sys/fs/cgroup/system.slice/sandboxd-doctor-* 2>/dev/null | sed 's/^/doctor scope: /'
	true
}

say "guest up after $(up) s: $(systemctl --version | head -1), kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), $(nproc) CPU"
state=$(systemctl is-system-running)
say "system state: $state"
[ "$state" = running ] || systemctl --failed --no-legend --plain | sed 's/^/  failed: /'

# --- install, as an operator would after make install ------------------------
cp -a /vm/run/root/. / || fail "copying the installed tree"
systemd-sysusers || fail "systemd-sysusers"
systemd-tmpfiles --create sandboxd.conf || fail "systemd-tmpfiles"
# alice may use sandboxd, bob may not.
echo 'alice:x:1000:1000::/tmp:/bin/sh' >>/etc/passwd
echo 'bob:x:1001:1001::/tmp:/bin/sh' >>/etc/passwd
printf 'alice:x:1000:\nbob:x:1001:\n' >>/etc/group
# (sysusers.conf made sandboxd-gateway a member already.)
sed -i '/^sandboxd:/ { s/:$/:alice/; t; s/$/,alice/; }' /etc/group
say "group: $(grep '^sandboxd:' /etc/group)"
# The watchdog's time, shorter than the unit's 30 s so that the check waits less.
mkdir -p /etc/systemd/system/sandboxd.service.d
printf '[Service]\nWatchdogSec=10s\n' >/etc/systemd/system/sandboxd.service.d/test.conf
systemctl daemon-reload

# --- socket activation ----------------------------------------------------------
systemctl start sandboxd.socket
s_state=$(prop sandboxd.socket ActiveState) d_state=$(prop sandboxd.service ActiveState)
perm=$(stat -c '%a %U:%G' /run/sandboxd/sandboxd.sock 2>&1)
if [ "$s_state" = active ] && [ "$d_state" = inactive ] && [ "$perm" = "660 root:sandboxd" ]; then
	pass "socket: sandboxd.socket active, the socket $perm, the service not started"
else
	fail "socket: sandboxd.socket $s_state, service $d_state, socket $perm"
fi

t_req=$(up)
info=$(as alice sandboxctl info 2>&1)
rc=$?
t_ans=$(up)
# The daemon answers as soon as it serves the socket; READY=1 (active)
# follows once its warm sandboxes are built.
wait_for 120 sh -c '[ "$(systemctl show -p ActiveState --value sandboxd.service)" = active ]'
ready=$(prop sandboxd.service ActiveEnterTimestampMonotonic)
started=$(prop sandboxd.service ExecMainStartTimestampMonotonic)
if [ $rc = 0 ] && [ "$(prop sandboxd.service ActiveState)" = active ]; then
	to_ready=$(awk -v a="$t_req" -v r="$ready" 'BEGIN { printf "%d", r / 1000 - a * 1000 }')
	to_exec=$(awk -v a="$t_req" -v r="$started" 'BEGIN { printf "%d", r / 1000 - a * 1000 }')
	pass "first request starts the service: answered after $(ms "$t_req" "$t_ans") ms; exec after ${to_exec} ms, READY after ${to_ready} ms (first request to READY)"
else
	fail "first request: sandboxctl info exit $rc: $info; service $(prop sandboxd.service ActiveState)"
	# Nothing after this can pass.
	finish
fi
st=$(prop sandboxd.service SubState) text=$(prop sandboxd.service StatusText)
case "$st:$text" in
running:*running*queued*) pass "systemctl show: active ($st), StatusText=\"$text\"" ;;
*) fail "systemctl show: SubState=$st StatusText=\"$text\"" ;;
esac

# --- who may use it ---------------------------------------------------------------
out=$(as alice sandboxctl run -- /bin/sh -c 'echo hello from $(id -u)' 2>&1)
case "$out" in
*"hello from "*) pass "a job through the socket as alice (group sandboxd): $(echo "$out" | grep -m1 'hello from')" ;;
*) fail "a job as alice: $out" ;;
esac
out=$(as bob sandboxctl run -- /bin/true 2>&1)
rc=$?
case "$rc:$out" in
0:*) fail "bob (not in group sandboxd) ran a job: $out" ;;
*"permission denied"*) pass "bob (not in group sandboxd) refused: $(echo "$out" | head -1)" ;;
*) fail "bob (not in group sandboxd) refused, but not for want of permission: $out" ;;
esac

# --- reload ---------------------------------------------------------------------------
cfg=/etc/sandboxd/sandboxd.toml
cp "$cfg" /tmp/sandboxd.toml.orig
# The config's generation, from sandboxctl info's "config:   generation N; ..." line.
generation() { sandboxctl info | sed -n 's/^config: *generation \([0-9]*\).*/\1/p'; }
generation_is() { [ "$(generation)" = "$1" ]; }
refusals() { journalctl -u sandboxd.service --no-pager -o cat | grep -c 'reload refused'; }
more_refusals() { [ "$(refusals)" -gt "$1" ]; }
g0=$(generation)
refused0=$(refusals)
before=$(sandboxctl run --profile reloaded -- /bin/true 2>&1)
printf '\n[profiles.reloaded]\nenv = { GREETING = "hello from a reloaded profile" }\n' >>"$cfg"
systemctl reload sandboxd.service
rc=$?
# kill -HUP returns at once: the daemon's generation says when it is done.
wait_for 30 generation_is $((g0 + 1))
out=$(sandboxctl run --profile reloaded -- sh -c 'echo $GREETING' 2>&1)
line=$(journalctl -u sandboxd.service --no-pager -o cat | grep 'config reloaded' | tail -1)
if [ $rc = 0 ] && [ "$(generation)" = $((g0 + 1)) ] && echo "$out" | grep -q 'hello from a reloaded profile' &&
	[ "$(prop sandboxd.service ActiveState)" = active ]; then
	pass "systemctl reload with a profile added: generation $g0 -> $(generation), a job in it ran; before: $(echo "$before" | head -1); the journal: $line"
else
	fail "systemctl reload with a profile added: exit $rc, generation $g0 -> $(generation), job: $(echo "$out" | tr '\n' ' '); journal: $line"
fi

# A broken file while a job runs: refused, the unit stays active, the job
# goes on, and the config in force (the added profile) stays.
sandboxctl run -- sh -c 'sleep 3; echo kept running' >/tmp/reload-job.out 2>&1 &
client=$!
wait_for 30 sh -c 'systemctl show -p StatusText --value sandboxd.service | grep -q "^1 running"'
printf 'bogus_key = 1\n' >>"$cfg"
g1=$(generation)
systemctl reload sandboxd.service
rc=$?
wait_for 30 more_refusals "$refused0"
line=$(journalctl -u sandboxd.service --no-pager -o cat | grep 'reload refused' | tail -1)
wait "$client"
again=$(sandboxctl run --profile reloaded -- sh -c 'echo $GREETING' 2>&1)
shown=$(sandboxctl info | grep '^config:')
if echo "$line" | grep -q 'profiles.reloaded.bogus_key' && [ "$(generation)" = "$g1" ] &&
	[ "$(prop sandboxd.service ActiveState)" = active ] && grep -q 'kept running' /tmp/reload-job.out &&
	echo "$again" | grep -q 'hello from a reloaded profile'; then
	pass "systemctl reload with a broken file: refused (systemctl reload exit $rc), the unit active, the running job finished, the old config in force; the journal: $line; sandboxctl info: $shown"
else
	fail "systemctl reload with a broken file: exit $rc, generation $g1 -> $(generation), unit $(prop sandboxd.service ActiveState), job: $(cat /tmp/reload-job.out | tr '\n' ' '), a job after: $again; journal: $line"
fi
cp /tmp/sandboxd.toml.orig "$cfg"
systemctl reload sandboxd.service
wait_for 30 generation_is $((g1 + 1)) ||
	fail "reload back to the installed config: generation $(generation)"

# --- the watchdog -----------------------------------------------------------------------
pid1=$(prop sandboxd.service MainPID)
n1=$(prop sandboxd.service NRestarts)
sandboxctl run --wall-time-ms 600000 -- sleep 1000 >/tmp/stopped-job.out 2>&1 &
client=$!
wait_for 30 sh -c 'systemctl show -p StatusText --value sandboxd.service | grep -q "^1 running"' ||
	say "(the long job did not show as running: $(prop sandboxd.service StatusText))"
t_stop=$(up)
kill -STOP "$pid1"
restarted() { [ "$(prop sandboxd.service MainPID)" != "$pid1" ] && [ "$(prop sandboxd.service ActiveState)" = active ]; }
if wait_for 90 restarted; then
	pid2=$(prop sandboxd.service MainPID)
	took=$(ms "$t_stop" "$(up)")
	wait "$client" 2>/dev/null
	old=$(ps -o pid= -p "$pid1")
	job=$(sandboxctl run -- /bin/true 2>&1)
	why=$(journalctl -u sandboxd.service --no-pager -o cat | grep -m1 -i watchdog)
	if [ -z "$old" ] && ! pgrep -x sleep >/dev/null && echo "$job" | grep -qE 'verdict: +ok'; then
		pass "SIGSTOP: restarted by the watchdog after $took ms (pid $pid1 -> $pid2, NRestarts $n1 -> $(prop sandboxd.service NRestarts)); systemd said: $why"
	else
		fail "SIGSTOP: after the restart: old pid '$old', sleep left: $(pgrep -ax sleep), a new job: $job"
	fi
	rec=$(journalctl -u sandboxd.service --no-pager -o cat _PID="$pid2" | grep -m1 reclaimed)
	say "  the new daemon: ${rec:-nothing of the old one's to reclaim in its state dir and subtree (systemd killed and removed the old cgroup)}"
else
	fail "SIGSTOP: not restarted within 90 s: $(systemctl status --no-pager sandboxd.service | head -5)"
	kill -CONT "$pid1"
fi

# --- systemctl stop drains -----------------------------------------------------------
sandboxctl run -- sh -c 'sleep 3; echo drained' >/tmp/drain.out 2>&1 &
client=$!
wait_for 30 sh -c 'systemctl show -p StatusText --value sandboxd.service | grep -q "^1 running"'
t=$(up)
systemctl stop sandboxd.service
took=$(ms "$t" "$(up)")
wait "$client"
left=$(leftovers)
if grep -q drained /tmp/drain.out && [ -z "$left" ]; then
	pass "systemctl stop during a job: drained in $took ms, the job finished (\"drained\"), nothing left"
else
	fail "systemctl stop during a job ($took ms): job: $(tr '\n' ' ' </tmp/drain.out | cut -c1-200); left: $left"
fi

# --- systemctl kill -s KILL, then start -------------------------------------------
sandboxctl info >/dev/null 2>&1 # the socket starts it again
sandboxctl run --wall-time-ms 600000 -- sh -c 'sleep 1000 & sleep 1000' >/dev/null 2>&1 &
client=$!
wait_for 30 sh -c 'systemctl show -p StatusText --value sandboxd.service | grep -q "^1 running"'
pid1=$(prop sandboxd.service MainPID)
systemctl kill -s KILL sandboxd.service
wait "$client" 2>/dev/null
systemctl start sandboxd.service
pid2=$(prop sandboxd.service MainPID)
job=$(sandboxctl run -- /bin/true 2>&1)
stray=$(ps -eo uid=,pid=,args= | awk -v b=$((sandbox_uid_base - 1)) '$1 >= b && /sleep/')
if [ "$pid2" != "$pid1" ] && [ "$pid2" != 0 ] && echo "$job" | grep -qE 'verdict: +ok' && [ -z "$stray" ] && ! pgrep -x sleep >/dev/null; then
	pass "systemctl kill -s KILL, then start: pid $pid1 -> $pid2, a new job ok, nothing of the old one's left"
else
	fail "kill -s KILL then start: pid $pid1 -> $pid2, job: $job, stray: $stray"
fi
rec=$(journalctl -u sandboxd.service --no-pager -o cat _PID="$pid2" | grep -m1 reclaimed)
say "  the new daemon: ${rec:-nothing of the old one's to reclaim}"
systemctl stop sandboxd.service
left=$(leftovers)
[ -z "$left" ] && pass "stopped again: nothing left" || fail "stopped again: left: $left"

# --- sandboxd-gateway.service ---------------------------------------------------------
# The guest has no curl: busybox's wget is the HTTP client (it fails on an
# answer that is not 2xx). Its own -T crashes Debian 12's busybox-static:
# timeout(1) bounds it instead.
get() { timeout 30 /vm/busybox wget -q -O - "$@"; }
gw=sandboxd-gateway.service
gw_uid=$(id -u sandboxd-gateway 2>/dev/null)
gw_groups=$(id -nG sandboxd-gateway 2>/dev/null)
conf=$(stat -c '%a %U:%G' /etc/sandboxd/gateway.toml 2>&1)
if [ -n "$gw_uid" ] && echo " $gw_groups " | grep -q ' sandboxd ' && [ "$conf" = "640 root:sandboxd-gateway" ] &&
	[ "$(systemctl is-enabled $gw 2>&1)" = disabled ]; then
	pass "gateway: user sandboxd-gateway (uid $gw_uid, groups: $gw_groups), /etc/sandboxd/gateway.toml $conf, the unit installed and not enabled"
else
	fail "gateway: user '$gw_uid' groups '$gw_groups', gateway.toml $conf, unit $(systemctl is-enabled $gw 2>&1)"
fi
since=$(date '+%Y-%m-%d %H:%M:%S')
journal() { journalctl -u $gw --no-pager -o cat --since "$since"; }
# Up once both listeners said so (a line each), with no request made yet.
listening() { [ "$(journal | grep -c '"msg":"gateway listening"')" = 2 ]; }
systemctl start $gw
wait_for 30 listening
version=$(get http://127.0.0.1:5050/version 2>&1)
run=$(get --post-data '{"cmd":[{"args":["/bin/true"]}]}' http://127.0.0.1:5050/run 2>&1)
runtimes=$(get http://127.0.0.1:2000/api/v2/runtimes 2>&1)
metrics=$(get http://127.0.0.1:5050/metrics 2>&1 | grep -c '^sandboxd_gateway_requests_total')
case "$version" in
*'"copyOutOptional":true'*) pass "gateway: go-judge's GET /version on 127.0.0.1:5050: $version" ;;
*) fail "gateway: GET /version: $version; $(systemctl status --no-pager $gw | tail -5)" ;;
esac
case "$run" in
'[{"status":"Accepted"'*) pass "gateway: go-judge's POST /run of /bin/true (the daemon started by its socket): $run" ;;
*) fail "gateway: POST /run of /bin/true: $run" ;;
esac
case "$runtimes" in
'['*']') pass "gateway: Piston's GET /api/v2/runtimes on 127.0.0.1:2000 is a JSON array: $(echo "$runtimes" | cut -c1-160)" ;;
*) fail "gateway: GET /api/v2/runtimes: $runtimes" ;;
esac
pid=$(prop $gw MainPID)
uid=$(ps -o uid= -p "$pid" | tr -d ' ')
if [ -n "$gw_uid" ] && [ "$uid" = "$gw_uid" ] && [ "$metrics" -gt 0 ]; then
	pass "gateway: runs as sandboxd-gateway (pid $pid, uid $uid), its GET /metrics answered"
else
	fail "gateway: pid $pid runs as uid '$uid', want '$gw_uid'; /metrics had $metrics request counters"
fi
# Four requests, four lines (JSON: --log-format json).
requests() { journal | grep -c '"msg":"request"'; }
four_requests() { [ "$(requests)" -ge 4 ]; }
wait_for 10 four_requests
n=$(requests)
line=$(journal | grep '"msg":"request"' | grep '/run' | tail -1)
if [ "$n" = 4 ] && echo "$line" | grep -q '"status":200'; then
	pass "gateway: one journal line per request (4 for 4): $line"
else
	fail "gateway: $n request lines in the journal for 4 requests: $(journal | grep '"msg":"request"' | sed 's/.*"path":\("[^"]*"\).*/\1/' | tr '\n' ' ')"
fi
score=$(systemd-analyze security --no-pager $gw 2>&1 | grep -a 'Overall exposure level')
say "  systemd-analyze security $gw: ${score:-not available}"
systemctl stop $gw
left=$(pgrep -u sandboxd-gateway -a)
if [ "$(prop $gw ActiveState)" = inactive ] && [ -z "$left" ] && [ ! -d /sys/fs/cgroup/system.slice/$gw ] &&
	! get http://127.0.0.1:5050/version >/dev/null 2>&1; then
	pass "gateway: systemctl stop leaves no process, no cgroup, nothing on 127.0.0.1:5050"
else
	fail "gateway: after systemctl stop: $(prop $gw ActiveState), processes: $left"
fi
systemctl stop sandboxd.service
left=$(leftovers)
[ -z "$left" ] || fail "gateway: the daemon it started, stopped: left: $left"

# --- sandboxd doctor ----------------------------------------------------------------
out=$(sandboxd doctor --config /etc/sandboxd/sandboxd.toml 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
left=$(leftovers)
if [ $rc = 0 ] && [ -z "$left" ]; then
	pass "sandboxd doctor passes, and leaves nothing behind"
else
	fail "sandboxd doctor: exit $rc; left: $left"
fi
old=$(sysctl -n user.max_user_namespaces)
sysctl -qw user.max_user_namespaces=0
out=$(sandboxd doctor --config /etc/sandboxd/sandboxd.toml 2>&1)
rc=$?
echo "$out" | grep -v '^ok' | sed 's/^/  | /'
if [ $rc = 1 ] && echo "$out" | grep -q '^fail.*user.max_user_namespaces'; then
	pass "sandboxd doctor fails after sysctl user.max_user_namespaces=0, naming it"
else
	fail "sandboxd doctor after user.max_user_namespaces=0: exit $rc"
fi
# What the operator sees when the daemon starts on such a host.
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl start sandboxd.service >/dev/null 2>&1
say "  the service started with user.max_user_namespaces=0: $(prop sandboxd.service ActiveState)/$(prop sandboxd.service SubState); its journal:"
journalctl -u sandboxd.service --no-pager -o cat --since "$since" | head -12 | sed 's/^/  | /'
systemctl stop sandboxd.service >/dev/null 2>&1
systemctl reset-failed sandboxd.service >/dev/null 2>&1
sysctl -qw user.max_user_namespaces="$old"

finish
