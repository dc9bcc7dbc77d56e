#!/bin/bash
# Builds the guest's operating system for make test-v2: an ext4 image, made
# without mounting anything (mke2fs -d), holding the files of the host's own
# Debian packages that the tests run inside sandboxes (sh, coreutils, grep,
# setsid, python3, gcc), busybox for the guest's init, and a stub /vm/init
# that hands over to the per-run disk.
#
#   rootfs.sh CACHE_DIR    prints the image's path
#   rootfs.sh --packages   prints the packages it starts from
#
# The image is cached in CACHE_DIR under a key made of the packages'
# versions, this script and lib.sh, so it is rebuilt only when one of them
# changes.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
cache=${1:?usage: rootfs.sh CACHE_DIR | --packages}

# What the tests need inside the guest, as packages; their dependencies
# follow. Python's compiled stdlib (__pycache__, written by its postinst, so
# not in dpkg's lists) is added below: without it every python3 start in the
# read-only guest would compile the stdlib again.
seeds=(dash coreutils grep sed util-linux hostname libc-bin python3-minimal libpython3-stdlib gcc libc6-dev busybox-static)

if [ "$cache" = --packages ]; then
	echo "${seeds[@]}"
	exit 0
fi
mkdir -p "$cache"

vm_require_installed rootfs scripts/test-v2.sh "${seeds[@]}"
mapfile -t pkgs < <(vm_closure "${seeds[@]}" | sort)
key=$( {
	dpkg-query -W -f='${Package}=${Version}\n' "${pkgs[@]}"
	sha256sum "$0" "$(dirname "$0")/lib.sh" | cut -d' ' -f1
} | sha256sum | cut -c1-16)
img=$cache/guest-os-$key.img
if [ -s "$img" ]; then
	echo "$img"
	exit 0
fi
echo "rootfs: building the guest OS image from ${#pkgs[@]} packages" >&2

stage=$(mktemp -d "$cache/stage.XXXXXX")
trap 'rm -rf "$stage" "$img.tmp"' EXIT
# A mktemp directory is 0700: the guest's root must be 0755, or every
# unprivileged process there gets EACCES.
chmod 0755 "$stage"
# The top-level symlinks of a merged-/usr host, so that files listed under
# /bin or /lib land in /usr as on the host.
vm_usr_merge_links "$stage"

{
	dpkg-query -L "${pkgs[@]}" 2>/dev/null
	find /usr/lib/python3* -name __pycache__ 2>/dev/null
	find /usr/lib/python3* -path '*/__pycache__/*' 2>/dev/null
	echo /etc/ld.so.cache
	echo /etc/alternatives
	find /etc/alternatives -mindepth 1 2>/dev/null
} | vm_copy_host_files "$stage" 'doc|man|info|locale|lintian|bug|bash-completion'

mkdir -p "$stage"/{proc,sys,dev,tmp,run,root,vm/run} "$stage/sys/fs/cgroup"
chmod 1777 "$stage/tmp"
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"
cp "$(dpkg-query -L busybox-static | grep -m1 '/busybox$')" "$stage/vm/busybox"
# The stub init: mount the per-run disk (the second namespace of the NVMe
# controller) and run the init it carries.
cat >"$stage/vm/init" <<'STUB'
#!/vm/busybox sh
/vm/busybox mount -t devtmpfs devtmpfs /dev || exit 1
/vm/busybox mount -t ext4 -o ro /dev/nvme0n2 /vm/run || { echo "stub init: no per-run disk" >/dev/console; /vm/busybox poweroff -f; }
exec /vm/busybox sh /vm/run/init
STUB
chmod 0755 "$stage/vm/init" "$stage/vm" "$stage/vm/run"

size=$(du -sm "$stage" | cut -f1)
truncate -s "$((size * 5 / 4 + 64))M" "$img.tmp"
mke2fs -q -t ext4 -O ^has_journal -m 0 -L guest-os -d "$stage" "$img.tmp"
mv "$img.tmp" "$img"
# Older images of other package versions are not needed any more.
find "$cache" -maxdepth 1 -name 'guest-os-*.img' ! -path "$img" -delete
echo "$img"
