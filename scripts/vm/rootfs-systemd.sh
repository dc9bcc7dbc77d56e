#!/bin/bash
# Builds the guest's operating system for make test-systemd: an ext4 image,
# made without mounting anything (mke2fs -d), whose PID 1 is Debian's
# systemd. Like scripts/vm/rootfs.sh (make test-v2's guest) it is made of the
# host's own Debian packages, a lean set (a shell, coreutils, util-linux,
# procps, the libraries systemd needs); systemd itself, libsystemd-shared and
# libsystemd0 are the archive's current packages (apt-get download, unpacked
# over them, never installed on the host). One unit is added: vm-check.service
# mounts the per-run disk (/dev/nvme0n2) at /vm/run and runs its check.sh,
# which powers the guest off.
#
#   rootfs-systemd.sh CACHE_DIR    prints the image's path
#   rootfs-systemd.sh --packages   prints the host packages it starts from
#
# The image is cached in CACHE_DIR under a key made of the packages'
# versions, this script and lib.sh, so it is rebuilt only when one of them
# changes.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
cache=${1:?usage: rootfs-systemd.sh CACHE_DIR | --packages}

# What the guest needs, as installed packages; their dependencies follow.
# systemd is among them for its libraries; its own files then come from the
# archive.
seeds=(dash coreutils grep sed util-linux mount procps libc-bin busybox-static systemd)
# From Debian's archive, at the candidate version (they depend on each
# other's exact version).
archive=(systemd libsystemd-shared libsystemd0)

if [ "$cache" = --packages ]; then
	echo "${seeds[@]}"
	exit 0
fi
mkdir -p "$cache"

vm_require_installed rootfs-systemd scripts/test-systemd.sh "${seeds[@]}"
mapfile -t pkgs < <(vm_closure "${seeds[@]}" | sort)
candidates=()
for p in "${archive[@]}"; do
	v=$(apt-cache policy "$p" | awk '$1 == "Candidate:" { print $2 }')
	[ -n "$v" ] && [ "$v" != "(none)" ] || { echo "rootfs-systemd: no candidate version of $p (apt-get update?)" >&2; exit 1; }
	candidates+=("$p=$v")
done
key=$( {
	dpkg-query -W -f='${Package}=${Version}\n' "${pkgs[@]}"
	printf '%s\n' "${candidates[@]}"
	sha256sum "$0" "$(dirname "$0")/lib.sh" | cut -d' ' -f1
} | sha256sum | cut -c1-16)
img=$cache/guest-systemd-$key.img
if [ -s "$img" ]; then
	echo "$img"
	exit 0
fi
echo "rootfs-systemd: building the guest OS image from ${#pkgs[@]} host packages and ${candidates[*]}" >&2

stage=$(mktemp -d "$cache/stage.XXXXXX")
debs=$(mktemp -d "$cache/debs.XXXXXX")
trap 'rm -rf "$stage" "$debs" "$img.tmp"' EXIT
chmod 0755 "$stage"
vm_usr_merge_links "$stage"

{
	dpkg-query -L "${pkgs[@]}" 2>/dev/null
	echo /etc/ld.so.cache
	echo /etc/alternatives
	find /etc/alternatives -mindepth 1 2>/dev/null
	echo /etc/os-release
	echo /usr/lib/os-release
} | vm_copy_host_files "$stage" 'doc|man|info|locale|lintian|bug|bash-completion|zsh'

# systemd from the archive, over the host's copy of it.
(cd "$debs" && apt-get download -q "${candidates[@]}" >/dev/null 2>&1) ||
	{ echo "rootfs-systemd: apt-get download ${candidates[*]} failed" >&2; exit 1; }
for deb in "$debs"/*.deb; do
	dpkg-deb --fsys-tarfile "$deb" | tar -C "$stage" --keep-directory-symlink \
		--exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*' -xpf -
done

mkdir -p "$stage"/{proc,sys,dev,tmp,run,root,var/tmp,var/log,vm/run}
chmod 1777 "$stage/tmp" "$stage/var/tmp"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$stage/etc/shadow"
chmod 0640 "$stage/etc/shadow"
: >"$stage/etc/fstab"
echo sandboxd-systemd-guest >"$stage/etc/hostname"
# A fixed machine id: not a first boot (no systemd-firstboot), and the
# journal has a place to go.
echo 5a4e5c8e1b2d4f6a8c0e2b4d6f8a0c2e >"$stage/etc/machine-id"
cp "$(dpkg-query -L busybox-static | grep -m1 '/busybox$')" "$stage/vm/busybox"

# What a lean guest under TCG should not spend its time on: no logins (no
# dbus here for logind), no gettys; the check runs as a service and
# reports on the console.
sys=$stage/etc/systemd/system
mkdir -p "$sys/multi-user.target.wants"
for u in systemd-logind.service getty.target console-getty.service serial-getty@.service \
	systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-journal-catalog-update.service \
	systemd-pstore.service systemd-boot-check-no-failures.service e2scrub_reap.service; do
	ln -sf /dev/null "$sys/$u"
done
ln -sf /lib/systemd/system/multi-user.target "$sys/default.target"
cat >"$sys/vm-check.service" <<'UNIT'
[Unit]
Description=make test-systemd: the checks on the per-run disk
After=multi-user.target

[Service]
Type=oneshot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/bin/sh -c 'mount -o ro /dev/nvme0n2 /vm/run && exec /bin/sh /vm/run/check.sh'
UNIT
ln -sf ../vm-check.service "$sys/multi-user.target.wants/vm-check.service"
# The journal in memory only: the guest's disk is thrown away anyway.
mkdir -p "$stage/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$stage/etc/systemd/journald.conf.d/volatile.conf"

size=$(du -sm "$stage" | cut -f1)
truncate -s "$((size * 5 / 4 + 64))M" "$img.tmp"
mke2fs -q -t ext4 -O ^has_journal -m 0 -L guest-systemd -d "$stage" "$img.tmp"
mv "$img.tmp" "$img"
find "$cache" -maxdepth 1 -name 'guest-systemd-*.img' ! -path "$img" -delete
echo "$img"
