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
# versions and this script, so it is rebuilt only when one of them changes.
set -euo pipefail
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

# closure prints every installed package the seeds need, one a line: their
# Depends and Pre-Depends, transitively. Of alternatives (a | b) the first
# one installed is taken; a virtual name stands for the installed packages
# that provide it.
closure() {
	dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n' |
		awk -F'\t' -v seeds="$*" '
		function names(field, out,   n, i, parts) {
			gsub(/\([^)]*\)/, "", field); gsub(/:[a-z0-9]+/, "", field); gsub(/ /, "", field)
			return split(field, out, ",")
		}
		$1 ~ /^ii/ {
			deps[$2] = $3
			installed[$2] = 1
			n = names($4, p)
			for (i = 1; i <= n; i++) if (p[i] != "" && !(p[i] in provider)) provider[p[i]] = $2
		}
		END {
			n = split(seeds, queue, " ")
			for (head = 1; head <= n; head++) {
				pkg = queue[head]
				if (!(pkg in installed) && (pkg in provider)) pkg = provider[pkg]
				if (!(pkg in installed) || (pkg in seen)) continue
				seen[pkg] = 1
				print pkg
				m = names(deps[pkg], d)
				for (i = 1; i <= m; i++) {
					k = split(d[i], alts, "|")
					for (j = 1; j <= k; j++) {
						if (alts[j] in installed || alts[j] in provider) { queue[++n] = alts[j]; break }
					}
				}
			}
		}'
}

for p in "${seeds[@]}"; do
	if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
		echo "rootfs: package $p is not installed (scripts/test-v2.sh installs it)" >&2
		exit 1
	fi
done
mapfile -t pkgs < <(closure "${seeds[@]}" | sort)
key=$( {
	dpkg-query -W -f='${Package}=${Version}\n' "${pkgs[@]}"
	sha256sum "$0" | cut -d' ' -f1
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
for d in bin sbin lib lib32 lib64 libx32; do
	if [ -L "/$d" ]; then
		target=$(readlink "/$d")
		ln -s "$target" "$stage/$d"
		mkdir -p "$stage/${target#/}"
	fi
done

list=$stage.list
{
	dpkg-query -L "${pkgs[@]}" 2>/dev/null
	find /usr/lib/python3* -name __pycache__ 2>/dev/null
	find /usr/lib/python3* -path '*/__pycache__/*' 2>/dev/null
	echo /etc/ld.so.cache
	echo /etc/alternatives
	find /etc/alternatives -mindepth 1 2>/dev/null
} | grep -vE '^/usr/share/(doc|man|info|locale|lintian|bug|bash-completion)(/|$)' |
	grep -v '^/\.$' | sort -u | while IFS= read -r f; do
	# dpkg's lists hold paths that diversions or the usr merge moved.
	if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "$f"; fi
done >"$list"
sed -i 's|^/||' "$list"
tar -C / --no-recursion -cf - -T "$list" | tar -C "$stage" --keep-directory-symlink -xpf -
rm -f "$list"

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
