# shellcheck shell=bash
# What make test-v2 and make test-systemd share (scripts/test-v2.sh,
# scripts/test-systemd.sh, and their guest images scripts/vm/rootfs.sh and
# scripts/vm/rootfs-systemd.sh). Sourced, not run. The test scripts define
# step and die before they call these.

# --- the host side: packages, the guest kernel, qemu ------------------------

# vm_install_host_packages ROOTFS_SCRIPT installs from Debian's packages what
# is missing of qemu, e2fsprogs, and the packages ROOTFS_SCRIPT makes the
# guest OS of (ROOTFS_SCRIPT --packages).
vm_install_host_packages() {
	local need=() p
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	command -v mke2fs >/dev/null || need+=(e2fsprogs)
	for p in $("$1" --packages); do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || need+=("$p")
	done
	if [ ${#need[@]} -gt 0 ]; then
		step "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

# vm_kernel_abi prints the kernel package linux-image-cloud-amd64 depends on.
# The ABI in its name changes with Debian's point releases, so it is read
# from the metapackage rather than written down.
vm_kernel_abi() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}

# vm_fetch_kernel CACHE OPTION... sets pkg (Debian's cloud kernel package)
# and kdir (CACHE/pkg, holding vmlinuz and config): the package is
# downloaded and unpacked once, never installed. The guest has no initramfs
# and no modules, so each CONFIG_OPTION must be built in.
vm_fetch_kernel() {
	local cache=$1 tmp opt missing=()
	shift
	pkg=$(vm_kernel_abi)
	if [ -z "$pkg" ]; then
		apt-get update -qq
		pkg=$(vm_kernel_abi)
	fi
	[ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64 to a kernel package"
	kdir=$cache/$pkg
	if [ ! -s "$kdir/vmlinuz" ]; then
		step "fetching $pkg"
		tmp=$(mktemp -d "$cache/kernel.XXXXXX")
		if ! (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1); then
			# The lists may name a version the mirror no longer has.
			apt-get update -qq
			pkg=$(vm_kernel_abi)
			kdir=$cache/$pkg
			(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
		fi
		dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -C "$tmp" -x --wildcards './boot/vmlinuz-*' './boot/config-*'
		mkdir -p "$kdir"
		mv "$tmp"/boot/vmlinuz-* "$kdir/vmlinuz.tmp"
		mv "$tmp"/boot/config-* "$kdir/config"
		mv "$kdir/vmlinuz.tmp" "$kdir/vmlinuz"
		rm -rf "$tmp"
	fi
	for opt in "$@"; do
		grep -qx "CONFIG_$opt=y" "$kdir/config" || missing+=("$opt")
	done
	[ ${#missing[@]} -eq 0 ] || die "$pkg lacks built-in ${missing[*]}"
}

# vm_accel [ACCEL] prints ACCEL if given, else kvm where the CPU shows
# hardware virtualisation and /dev/kvm is writable, else tcg: a nested
# paravirtual /dev/kvm without vmx/svm makes qemu abort or the guest hang.
vm_accel() {
	if [ -n "${1:-}" ]; then
		echo "$1"
	elif grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
		echo kvm
	else
		echo tcg
	fi
}

# vm_watch QPID LOG UP_LINE BOOT_TIMEOUT VM_TIMEOUT BOOT_WHY waits while qemu
# (QPID) runs. It kills it when LOG has no UP_LINE after BOOT_TIMEOUT
# seconds (why=BOOT_WHY), or after VM_TIMEOUT seconds. Sets started (when
# the wait began, in SECONDS) and why (empty when the guest ended by itself).
vm_watch() {
	local qpid=$1 log=$2 up=$3 boot_timeout=$4 vm_timeout=$5 boot_why=$6
	started=$SECONDS
	why=""
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 1
		if [ $((SECONDS - started)) -ge "$boot_timeout" ] && ! grep -qa "$up" "$log"; then
			why=$boot_why
		elif [ $((SECONDS - started)) -ge "$vm_timeout" ]; then
			why="the guest did not finish within ${vm_timeout}s"
		fi
		if [ -n "$why" ]; then
			kill "$qpid" 2>/dev/null || true
			sleep 2
			kill -9 "$qpid" 2>/dev/null || true
			break
		fi
	done
}

# --- the guest OS images ------------------------------------------------------

# vm_require_installed WHO INSTALLER PACKAGE... fails, naming WHO and the
# script that installs them, unless every PACKAGE is installed on the host.
vm_require_installed() {
	local who=$1 installer=$2 p
	shift 2
	for p in "$@"; do
		if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
			echo "$who: package $p is not installed ($installer installs it)" >&2
			exit 1
		fi
	done
}

# vm_closure SEED... prints every installed package the seeds need, one a
# line: their Depends and Pre-Depends, transitively. Of alternatives (a | b)
# the first one installed is taken; a virtual name stands for the installed
# packages that provide it.
vm_closure() {
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

# vm_usr_merge_links STAGE makes the top-level symlinks of a merged-/usr
# host in STAGE, so that files listed under /bin or /lib land in /usr as on
# the host.
vm_usr_merge_links() {
	local stage=$1 d target
	for d in bin sbin lib lib32 lib64 libx32; do
		if [ -L "/$d" ]; then
			target=$(readlink "/$d")
			ln -s "$target" "$stage/$d"
			mkdir -p "$stage/${target#/}"
		fi
	done
}

# vm_copy_host_files STAGE SKIP copies the host paths read on stdin into
# STAGE as they are (owners, modes, links), but those under /usr/share/D
# for each D of SKIP (an ERE alternation: "doc|man").
vm_copy_host_files() {
	local stage=$1 skip=$2 list=$1.list f
	grep -vE "^/usr/share/($skip)(/|\$)" | grep -v '^/\.$' | sort -u | while IFS= read -r f; do
		# dpkg's lists hold paths that diversions or the usr merge moved.
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "$f"; fi
	done >"$list"
	sed -i 's|^/||' "$list"
	tar -C / --no-recursion -cf - -T "$list" | tar -C "$stage" --keep-directory-symlink -xpf -
	rm -f "$list"
}
