#!/bin/bash
# make test-v2: the engine's root tests (the cgroup and nsjail packages, and
# the end-to-end tests of `sandboxd exec` and `sandboxd serve`) on pure
# cgroup v2, inside a throwaway VM, whatever cgroup layout this host has.
#
#   host                                  guest (Debian's cloud kernel, no initramfs)
#   ----                                  -----
#   Debian packages: qemu, busybox         nvme0n1  the guest OS (cached): the host's own
#   kernel: linux-image-<abi>-cloud-amd64           packages the tests use (sh, coreutils,
#     (apt-get download, not installed)             python3, gcc), busybox, /vm/init stub
#   scripts/vm/rootfs.sh -> nvme0n1        nvme0n2  this run: test binaries, sandboxd,
#   go test -c, gcc testdata -> nvme0n2             compiled test programs, the guest init
#   qemu (KVM where the CPU shows vmx/svm,          (scripts/vm/guest-init.sh): cgroup2 as
#     else TCG) under a timeout ---------->           systemd mounts it, one delegated service
#   console -> run/test-v2/console.log  <------       per suite, SANDBOXD-TEST-V2-RESULT <n>
#   exit status from that line                      and power off
#
# Knobs (environment): TEST_V2_SUITES (default "cgroup nsjail e2e daemon"),
# TEST_V2_RUN_CGROUP, TEST_V2_RUN_NSJAIL, TEST_V2_RUN_E2E, TEST_V2_RUN_DAEMON
# (-test.run patterns), TEST_V2_COUNT (-test.count of every suite, default 1;
# more to hunt a rare failure), TEST_V2_TIMEOUT (seconds for the whole VM, default 1800),
# TEST_V2_SMP (KVM only), TEST_V2_MEM (MiB), TEST_V2_ACCEL (kvm or tcg),
# SANDBOXD_VM_CACHE (kernel and guest OS image, default
# /var/cache/sandboxd/test-v2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/run/test-v2
cache=${SANDBOXD_VM_CACHE:-/var/cache/sandboxd/test-v2}
suites=${TEST_V2_SUITES:-cgroup nsjail e2e daemon}
vm_timeout=${TEST_V2_TIMEOUT:-1800}
boot_timeout=120
smp=${TEST_V2_SMP:-1}
mem=${TEST_V2_MEM:-1024}
# The daemon tests (test/daemon_test.go) run as a suite of their own, in a
# cgroup placed for the daemons they start (see scripts/vm/guest-init.sh).
# TestBenchProgram and TestBenchScale run make bench's program, a measurement
# of the machine it runs on, and TestPlotsNotLinkedIntoDaemon asks `go list`:
# they run on the host only (the guest has no Go toolchain). TestDemo runs make run's script from the host's tree.
# TestDaemonJudgeFlow compiles C++ four times and runs 160 jobs: minutes
# of emulated CPU under TCG for nothing cgroup v2 adds; its parts (the file
# cache, stdout_to, expected_stdout_file, batches) have tests of their own
# that run here. TestDaemonGatewayGoJudge and TestDaemonPiston drive the
# gateway's protocols with g++, node and npm's piston-client, which the
# guest lacks; the gateway is a client of the daemon's API, and what it uses
# (interactive steps, private workspaces, the file cache, streams) has
# daemon tests of its own that run here, as does TestDaemonGatewayRefusals.
# TestDaemonWebBrowser drives Chromium, which the guest lacks; the protocol
# under the page has TestDaemonWebProtocol and TestDaemonWebBounds here.
daemon_tests='^TestDaemon[A-Z]'
skip_daemon='^(TestDaemonJudgeFlow|TestDaemonGatewayGoJudge|TestDaemonPiston|TestDaemonWebBrowser)$'
skip_e2e="$daemon_tests|^(TestBenchProgram|TestBenchScale|TestPlotsNotLinkedIntoDaemon)\$|^TestDemo"
t0=$SECONDS
# shellcheck source=vm/lib.sh
. scripts/vm/lib.sh

step() { printf 'test-v2: %s (%ds)\n' "$*" $((SECONDS - t0)); }
die() {
	echo "test-v2: $*" >&2
	exit 1
}

if [ "$(id -u)" != 0 ]; then
	die "needs root (installs packages; the guest's tests need root too)"
fi
[ -x bin/sandboxd ] || die "bin/sandboxd is missing: run make build (make test-v2 does)"

# --- what the host needs, from Debian's packages ---------------------------
# The guest's OS is made of the host's own packages (and busybox-static).
vm_install_host_packages scripts/vm/rootfs.sh
mkdir -p "$cache" "$out"

# --- the guest kernel: Debian's cloud kernel, unpacked, never installed ----
vm_fetch_kernel "$cache" MEMCG CGROUP_PIDS CGROUP_SCHED CFS_BANDWIDTH CGROUP_FREEZER USER_NS PID_NS \
	NET_NS UTS_NS IPC_NS SECCOMP_FILTER DEVTMPFS TMPFS EXT4_FS BLK_DEV_NVME SERIAL_8250_CONSOLE

# --- the guest OS image (cached) --------------------------------------------
step "guest OS image"
os_img=$(scripts/vm/rootfs.sh "$cache")

# --- this run's disk: test binaries, sandboxd, test programs, the guest init ---
step "building the test binaries"
payload=$out/payload
rm -rf "$payload"
mkdir -p "$payload"/{tests,bin,programs,test}
chmod 0755 "$payload"
# As make test builds them: with the helper embedded (make build put it in
# nsjail/).
[ -s nsjail/sandboxd-helper ] || die "nsjail/sandboxd-helper is missing: run make build (make test-v2 does)"
CGO_ENABLED=0 go test -tags embedhelper -c -o "$payload/tests/" ./cgroup ./nsjail ./test
cp bin/sandboxd "$payload/bin/"
# As test/harness_test.go compiles them (see SANDBOXD_TEST_PROGRAMS there).
for src in test/testdata/*.c; do
	gcc -O1 -pthread -o "$payload/programs/$(basename "$src" .c)" "$src"
done
cp -r test/testdata "$payload/test/"
cp scripts/vm/guest-init.sh "$payload/init"
{
	printf 'SUITES=%q\n' "$suites"
	# In the guest's clock, which under TCG runs four to six times slower
	# than the host's: a suite that hangs ends with a goroutine dump well
	# before the VM's timeout. The longest suite, the daemon's, takes about
	# three minutes of it.
	printf 'SUITE_TIMEOUT=%q\n' 8m
	printf 'RUN_CGROUP=%q\n' "${TEST_V2_RUN_CGROUP:-}"
	printf 'RUN_NSJAIL=%q\n' "${TEST_V2_RUN_NSJAIL:-}"
	printf 'RUN_E2E=%q\n' "${TEST_V2_RUN_E2E:-}"
	printf 'COUNT=%q\n' "${TEST_V2_COUNT:-1}"
	printf 'SKIP_E2E=%q\n' "$skip_e2e"
	printf 'RUN_DAEMON=%q\n' "${TEST_V2_RUN_DAEMON:-$daemon_tests}"
	printf 'SKIP_DAEMON=%q\n' "$skip_daemon"
} >"$payload/params"
run_img=$out/run.img
rm -f "$run_img"
truncate -s "$(($(du -sm "$payload" | cut -f1) + 32))M" "$run_img"
mke2fs -q -t ext4 -O ^has_journal -m 0 -L test-v2-run -d "$payload" "$run_img"

# --- boot --------------------------------------------------------------------
accel=$(vm_accel "${TEST_V2_ACCEL:-}")
# Under TCG the guest's clock is its instruction count (-icount shift=0: one
# instruction a nanosecond, a 1 GHz machine that never waits for the host;
# idle time is skipped). The tests judge CPU time in milliseconds; with the
# host's clock, emulation made a bare exec cost 40-75 ms of "CPU", and a
# loaded host would charge its own delays to whatever the guest ran.
# (With -icount, TCG runs one CPU: a second one hangs at SMP bring-up.)
cpu=max
timing=(-icount shift=0,sleep=on)
if [ "$accel" = kvm ]; then
	cpu=host
	timing=()
elif [ "$smp" != 1 ]; then
	die "TEST_V2_SMP=$smp: under TCG the guest has one CPU"
fi
log=$out/console.log
qemu_args=(
	-machine pc -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem" "${timing[@]}"
	-nodefaults -display none -serial stdio -net none -no-reboot
	-kernel "$kdir/vmlinuz"
	-append "console=ttyS0 panic=-1 loglevel=4 root=/dev/nvme0n1 rootfstype=ext4 ro rootwait init=/vm/init cgroup_no_v1=all"
	-drive "if=none,id=os,file=$os_img,format=raw,readonly=on"
	-drive "if=none,id=run,file=$run_img,format=raw,readonly=on"
	-device nvme,serial=sandboxd-test-v2,id=nvme0
	-device nvme-ns,drive=os,nsid=1
	-device nvme-ns,drive=run,nsid=2
)
step "booting the guest ($pkg, $accel, $smp CPU, $mem MiB); console: ${log#$repo/}"
qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$log" 2>&1 &
qpid=$!
trap 'kill "$qpid" 2>/dev/null || true' EXIT
# The live view: each test's verdict and the guest init's own lines; the whole
# console stays in the log.
tail -n +1 -F --pid="$qpid" "$log" 2>/dev/null | tr -d '\r' |
	grep --line-buffered -aE '^ *--- (PASS|FAIL|SKIP)|^(ok|FAIL|PASS)( |$)|^sandboxd-test-v2:|^panic:|Kernel panic|BUG:|Oops' &
view=$!
vm_watch "$qpid" "$log" 'sandboxd-test-v2: guest up' "$boot_timeout" "$vm_timeout" \
	"the guest did not come up within ${boot_timeout}s"
wait "$qpid" || true
wait "$view" 2>/dev/null || true
step "the guest ran for $((SECONDS - started)) s"

# --- the verdict ----------------------------------------------------------------
clean=$out/console.txt
tr -d '\r' <"$log" >"$clean"
result=$(grep -aoE '^SANDBOXD-TEST-V2-RESULT [0-9]+' "$clean" | tail -1 | cut -d' ' -f2 || true)
passed=$(grep -acE '^ *--- PASS' "$clean" || true)
failed=$(grep -acE '^ *--- FAIL' "$clean" || true)
skipped=$(grep -acE '^ *--- SKIP' "$clean" || true)
if [ "$failed" -gt 0 ]; then
	echo
	echo "test-v2: the failed tests' output:"
	awk '/^=== RUN/ { name = $3; block[name] = "" }
		name != "" { block[name] = block[name] $0 "\n" }
		/^ *--- FAIL: / { n = $3; printf "%s", block[n] }' "$clean"
fi
if [ -n "$why" ] || [ -z "$result" ]; then
	echo "test-v2: ${why:-no result came back from the guest}; the console's last lines:"
	tail -n 40 "$clean"
	result=1
elif [ "$result" != 0 ] && [ "$failed" = 0 ]; then
	# The tests passed but the guest's own checks (leftovers, writes
	# outside the delegated services) did not: they end the console.
	echo "test-v2: the guest's checks failed; the console's last lines:"
	tail -n 40 "$clean"
fi
echo "test-v2: wall time $((SECONDS - t0)) s; console log: ${log#$repo/}"
if [ "$result" != 0 ] || [ "$failed" -gt 0 ]; then
	echo "test-v2: FAILED: $passed passed, $failed failed, $skipped skipped"
	exit 1
fi
echo "test-v2: $passed passed, $failed failed, $skipped skipped"
