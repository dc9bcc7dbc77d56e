# The guest's init for make test-v2 (pid 1, run by busybox sh from the
# per-run disk, mounted at /vm/run). It sets up a pure cgroup v2 machine the
# way systemd does, runs each test suite as if it were a service with
# Delegate=yes, checks that nothing outside those services was touched, prints
#
#   SANDBOXD-TEST-V2-RESULT <status>
#
# and powers off. The host turns that line into its exit status; without it
# (a hang, a panic) the run has failed.
bb=/vm/busybox
PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
LANG=C.UTF-8
export PATH HOME LANG
exec </dev/null >/dev/console 2>&1

say() { echo "sandboxd-test-v2: $*"; }
finish() {
	echo "SANDBOXD-TEST-V2-RESULT $1"
	$bb sync
	$bb poweroff -f
	# poweroff returns only if it failed; ending pid 1 panics, and the
	# kernel's panic=-1 with qemu's -no-reboot stops the VM as well.
	exit "$1"
}
fail() {
	say "FAILED: $*"
	finish 1
}

# The stub init mounted devtmpfs on /dev; the rest of a minimal system.
$bb mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
$bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "mount /sys"
# As systemd mounts it on a pure v2 host.
$bb mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	fail "mount cgroup2"
$bb mkdir -p /dev/shm /dev/pts
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || fail "mount /tmp"
$bb mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run || fail "mount /run"
$bb ip link set lo up || fail "loopback up"
$bb hostname sandboxd-v2-guest

. /vm/run/params
say "guest up after $($bb cut -d' ' -f1 /proc/uptime) s: kernel $($bb uname -r), $($bb nproc) CPU(s)"
say "mounts: $($bb grep -E ' (/|/sys/fs/cgroup|/tmp|/run) ' /proc/mounts | $bb cut -d' ' -f2,3 | $bb tr '\n' ' ')"
say "cgroup v1 hierarchies: $($bb grep -c ' cgroup ' /proc/mounts)"

# The slice: controllers enabled from the root down to it, as systemd does.
# Each suite then runs in a service beneath it that is delegated: the
# controllers are available there (cgroup.controllers), none is enabled in
# it, and the suite's binary is its only process, as with Delegate=yes.
cg=/sys/fs/cgroup
slice=$cg/test.slice
echo "+cpu +memory +pids" >$cg/cgroup.subtree_control || fail "enable controllers at the root"
$bb mkdir $slice || fail "mkdir $slice"
echo "+cpu +memory +pids" >$slice/cgroup.subtree_control || fail "enable controllers in test.slice"
for s in $SUITES; do
	$bb mkdir "$slice/$s.service" || fail "mkdir $s.service"
done
say "the services get: $($bb cat $slice/cgroup.subtree_control)"

# snapshot prints what sandboxd must never change: every group outside the
# delegated services with every writable control file and its value, and in
# the services everything but what delegation hands over (the service's own
# cgroup.subtree_control and cgroup.procs/threads, and its child groups).
# Pressure files are left out: their values move by themselves, as do the
# root's cgroup.procs and cgroup.threads.
snapshot() {
	(
		cd $cg || exit 1
		$bb find . -path './test.slice/*.service/*' -prune -o -type d -print | $bb sort | while read -r d; do
			echo "group $d"
			# Control files that can be read and written (mode rw for the
			# owner); as root, test -w would be true for every file.
			$bb find "$d" -maxdepth 1 -type f -perm -0600 | $bb sort | while read -r f; do
				case "$f" in
				*.pressure) continue ;;
				./cgroup.procs | ./cgroup.threads) continue ;;
				./test.slice/*.service/cgroup.subtree_control | ./test.slice/*.service/cgroup.procs | ./test.slice/*.service/cgroup.threads) continue ;;
				esac
				echo "$f: $($bb tr '\n' ' ' <"$f")"
			done
		done
	)
}
snapshot >/run/outside.before || fail "snapshot"

status=0
# run_suite NAME LEAF DIR BINARY ARGS... runs one test binary in DIR as the
# only process of the service NAME, or of its child group LEAF if that is
# not empty ("@PID@" in LEAF stands for the binary's pid, known only once it
# runs), then checks that no process and no run group of it is left.
run_suite() {
	name=$1 leaf=$2 dir=$3
	shift 3
	svc=$slice/$name.service
	group=$svc${leaf:+/$leaf}
	say "suite $name: $* (in ${group#$cg})"
	start=$($bb cut -d' ' -f1 /proc/uptime)
	(cd "$dir" && exec $bb sh -c '
		g=$(echo "$0" | /vm/busybox sed "s/@PID@/$$/")
		/vm/busybox mkdir -p "$g" && echo $$ >"$g/cgroup.procs" && exec "$@"' "$group" "$@")
	rc=$?
	end=$($bb cut -d' ' -f1 /proc/uptime)
	say "suite $name: exit status $rc after $(echo "$start $end" | $bb awk '{printf "%.1f", $2 - $1}') s"
	[ "$rc" = 0 ] || status=1
	if ! $bb grep -q '^populated 0' "$svc/cgroup.events"; then
		say "FAILED: suite $name left processes in its service:"
		$bb find "$svc" -name cgroup.procs -exec $bb sh -c 'echo "  $0: $(cat "$0" | tr "\n" " ")"' {} \;
		echo 1 >"$svc/cgroup.kill"
		status=1
	fi
	# The suites' subtrees are <service>/<subtree>/<run>: a group two
	# levels down is a run that was not removed.
	left=$($bb find "$svc" -mindepth 2 -type d)
	if [ -n "$left" ]; then
		say "FAILED: suite $name left run groups: $(echo "$left" | $bb tr '\n' ' ')"
		status=1
	fi
	say "suite $name: groups left in its service (leaves and subtrees, empty): $($bb find "$svc" -mindepth 1 -type d | $bb sed "s|$svc/||" | $bb tr '\n' ' ')"
}

for s in $SUITES; do
	case $s in
	cgroup)
		# Alone in its service: the first Open moves the test binary into
		# the <subtree>-self leaf before it enables controllers.
		run_suite cgroup "" /tmp /vm/run/tests/cgroup.test -test.v -test.count="${COUNT:-1}" \
			-test.timeout="$SUITE_TIMEOUT" ${RUN_CGROUP:+-test.run="$RUN_CGROUP"}
		;;
	nsjail)
		run_suite nsjail "" /tmp /vm/run/tests/nsjail.test -test.v -test.count="${COUNT:-1}" \
			-test.timeout="$SUITE_TIMEOUT" ${RUN_NSJAIL:+-test.run="$RUN_NSJAIL"}
		;;
	daemon)
		# The daemon tests start `sandboxd serve` as a child of the test
		# binary, with the cgroup subtree sandboxd-test-<the binary's pid>.
		# The binary lives in that subtree's -self leaf, where the daemon
		# parks itself, so the daemons it starts find their own group above.
		run_suite daemon sandboxd-test-@PID@-self /vm/run/test \
			$bb env SANDBOXD_BIN=/vm/run/bin/sandboxd SANDBOXD_TEST_PROGRAMS=/vm/run/programs \
			/vm/run/tests/test.test -test.v -test.count="${COUNT:-1}" -test.run="$RUN_DAEMON" ${SKIP_DAEMON:+-test.skip="$SKIP_DAEMON"} \
			-test.timeout="$SUITE_TIMEOUT"
		;;
	e2e)
		# The e2e binary starts many `sandboxd exec` processes that share
		# one subtree, so that each reclaims what a killed one left. On v2
		# a process that starts them cannot sit in the group whose
		# controllers they enable (no internal processes): like a service
		# that runs sandboxd exec, it lives in the sandboxd-self leaf, where
		# the engine parks itself, and its children find their own group
		# above it.
		run_suite e2e sandboxd-self /vm/run/test \
			$bb env SANDBOXD_BIN=/vm/run/bin/sandboxd SANDBOXD_TEST_PROGRAMS=/vm/run/programs \
			/vm/run/tests/test.test -test.v -test.count="${COUNT:-1}" \
			-test.timeout="$SUITE_TIMEOUT" ${RUN_E2E:+-test.run="$RUN_E2E"} ${SKIP_E2E:+-test.skip="$SKIP_E2E"}
		;;
	*) fail "unknown suite $s" ;;
	esac
done

snapshot >/run/outside.after || fail "snapshot"
if $bb cmp -s /run/outside.before /run/outside.after; then
	say "nothing outside the delegated services changed ($($bb grep -c . /run/outside.before) lines compared)"
else
	say "FAILED: something outside the delegated services changed:"
	$bb diff /run/outside.before /run/outside.after
	status=1
fi

# No process may outlive the suites: only pid 1 and kernel threads remain.
# (The loop uses shell builtins only, so it has no children of its own.)
extra=""
for d in /proc/[0-9]*; do
	pid=${d#/proc/}
	[ "$pid" = 1 ] && continue
	ppid=""
	while read -r k v; do
		[ "$k" = PPid: ] && { ppid=$v; break; }
	done 2>/dev/null <"$d/status"
	[ -z "$ppid" ] || [ "$ppid" = 2 ] || [ "$pid" = 2 ] && continue
	extra="$extra $pid"
done
if [ -n "$extra" ]; then
	say "FAILED: processes left after the suites:$extra"
	for p in $extra; do echo "  $p: $($bb tr '\0' ' ' </proc/$p/cmdline 2>/dev/null)"; done
	status=1
fi
finish $status
