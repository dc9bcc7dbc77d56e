#!/bin/bash
# make test-systemd: sandboxd as a systemd service, under a real systemd:
# Debian's, as PID 1 of a throwaway VM, on pure cgroup v2.
#
#   host                                   guest (Debian's cloud kernel, no initramfs)
#   ----                                   -----
#   kernel: as make test-v2 (cached)        nvme0n1  the guest OS (cached, a throwaway
#   scripts/vm/rootfs-systemd.sh -> nvme0n1          overlay per run): systemd from the
#     (host packages + systemd's .debs)              archive as PID 1, vm-check.service
#   make install DESTDIR=payload/root       nvme0n2  this run: the installed tree, the
#   scripts/vm/systemd-check.sh -> nvme0n2           checks (scripts/vm/systemd-check.sh)
#   qemu (KVM where the CPU offers it,               run by vm-check.service once the
#     else TCG) under a timeout ---------->          system is up: socket activation,
#   console -> run/test-systemd/console.log <-----   groups, watchdog, drain, SIGKILL,
#   exit status from that line                       doctor; SANDBOXD-TEST-SYSTEMD-RESULT
#
# Knobs (environment): TEST_SYSTEMD_TIMEOUT (seconds for the whole VM,
# default 1500), TEST_SYSTEMD_BOOT_TIMEOUT (until the checks start, default
# 600), TEST_SYSTEMD_MEM (MiB), TEST_SYSTEMD_ACCEL (kvm or tcg),
# SANDBOXD_VM_CACHE (kernel and guest images, shared with make test-v2,
# default /var/cache/sandboxd/test-v2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/run/test-systemd
cache=${SANDBOXD_VM_CACHE:-/var/cache/sandboxd/test-v2}
vm_timeout=${TEST_SYSTEMD_TIMEOUT:-1500}
boot_timeout=${TEST_SYSTEMD_BOOT_TIMEOUT:-600}
mem=${TEST_SYSTEMD_MEM:-1024}
t0=$SECONDS
# shellcheck source=vm/lib.sh
. scripts/vm/lib.sh

step() { printf 'test-systemd: %s (%ds)\n' "$*" $((SECONDS - t0)); }
die() {
	echo "test-systemd: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (installs packages, builds disk images)"
[ -x bin/sandboxd ] || die "bin/sandboxd is missing: run make build (make test-systemd does)"

# --- what the host needs, from Debian's packages ---------------------------
vm_install_host_packages scripts/vm/rootfs-systemd.sh
mkdir -p "$cache" "$out"

# --- the guest kernel: as make test-v2 fetches it --------------------------
vm_fetch_kernel "$cache" MEMCG CGROUP_PIDS CGROUP_SCHED USER_NS PID_NS NET_NS UTS_NS IPC_NS SECCOMP_FILTER \
	DEVTMPFS TMPFS EXT4_FS BLK_DEV_NVME SERIAL_8250_CONSOLE

# --- the guest OS image (cached) --------------------------------------------
step "guest OS image"
if ! os_img=$(scripts/vm/rootfs-systemd.sh "$cache"); then
	apt-get update -qq # the archive's systemd may have moved on
	os_img=$(scripts/vm/rootfs-systemd.sh "$cache")
fi

# --- this run's disk: make install into it, and the checks ------------------
step "make install DESTDIR=${out#$repo/}/payload/root"
payload=$out/payload
rm -rf "$payload"
mkdir -p "$payload/root"
chmod 0755 "$payload"
make --no-print-directory install DESTDIR="$payload/root" >"$out/install.log" 2>&1 ||
	{ cat "$out/install.log"; die "make install failed"; }
cp scripts/vm/systemd-check.sh "$payload/check.sh"
run_img=$out/run.img
rm -f "$run_img"
truncate -s "$(($(du -sm "$payload" | cut -f1) + 32))M" "$run_img"
mke2fs -q -t ext4 -O ^has_journal -m 0 -L test-systemd-run -d "$payload" "$run_img"

# --- boot --------------------------------------------------------------------
accel=$(vm_accel "${TEST_SYSTEMD_ACCEL:-}")
cpu=max
[ "$accel" = kvm ] && cpu=host
log=$out/console.log
# The guest's clock is the host's (no -icount): the checks time the
# watchdog and the drain by it, and nothing here judges CPU time. The OS
# disk is a throwaway overlay (snapshot=on): the guest writes /etc (users,
# groups, the installed files) and the cached image stays as it was.
qemu_args=(
	-machine pc -accel "$accel" -cpu "$cpu" -smp 1 -m "$mem"
	-nodefaults -display none -serial stdio -net none -no-reboot
	-kernel "$kdir/vmlinuz"
	-append "console=ttyS0 panic=-1 loglevel=4 root=/dev/nvme0n1 rootfstype=ext4 rw rootwait init=/lib/systemd/systemd systemd.show_status=1"
	-drive "if=none,id=os,file=$os_img,format=raw,snapshot=on"
	-drive "if=none,id=run,file=$run_img,format=raw,readonly=on"
	-device nvme,serial=sandboxd-test-systemd,id=nvme0
	-device nvme-ns,drive=os,nsid=1
	-device nvme-ns,drive=run,nsid=2
)
step "booting the guest ($pkg, $(basename "$os_img"), $accel, $mem MiB); console: ${log#$repo/}"
qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$log" 2>&1 &
qpid=$!
trap 'kill "$qpid" 2>/dev/null || true' EXIT
tail -n +1 -F --pid="$qpid" "$log" 2>/dev/null | tr -d '\r' |
	grep --line-buffered -aE '^sandboxd-test-systemd:|^SANDBOXD-TEST-SYSTEMD-RESULT|Kernel panic|BUG:|Oops|Freezing execution' &
view=$!
vm_watch "$qpid" "$log" 'sandboxd-test-systemd: guest up' "$boot_timeout" "$vm_timeout" \
	"the checks did not start within ${boot_timeout}s"
wait "$qpid" || true
wait "$view" 2>/dev/null || true
step "the guest ran for $((SECONDS - started)) s"

# --- the verdict ----------------------------------------------------------------
clean=$out/console.txt
tr -d '\r' <"$log" >"$clean"
result=$(grep -aoE '^SANDBOXD-TEST-SYSTEMD-RESULT [0-9]+' "$clean" | tail -1 | cut -d' ' -f2 || true)
passed=$(grep -acE '^sandboxd-test-systemd: PASS' "$clean" || true)
failed=$(grep -acE '^sandboxd-test-systemd: FAIL' "$clean" || true)
skipped=$(grep -acE '^sandboxd-test-systemd: SKIP' "$clean" || true)
if [ -n "$why" ] || [ -z "$result" ]; then
	echo "test-systemd: ${why:-no result came back from the guest}; the console's last lines:"
	tail -n 40 "$clean"
	result=1
fi
echo "test-systemd: wall time $((SECONDS - t0)) s (the guest $((SECONDS - started)) s); console log: ${log#$repo/}"
if [ "$result" != 0 ] || [ "$failed" -gt 0 ]; then
	echo "test-systemd: FAILED: $passed passed, $failed failed, $skipped skipped"
	exit 1
fi
echo "test-systemd: $passed passed, $failed failed, $skipped skipped"
