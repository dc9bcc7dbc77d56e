#!/bin/bash
# Installs, from Debian's packages, what the tests and the benchmark need:
# gcc, g++ and python3, run inside sandboxes (and bare, by make bench); for
# make test-python, pytest, pip and setuptools (pip installs api/python in a
# test); chromium, which the playground's browser test drives (chromedp); and
# from npm, piston-client, which the Piston gateway's test drives.
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v g++ >/dev/null || need+=(g++)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
/usr/bin/python3 -c 'import setuptools' 2>/dev/null || need+=(python3-setuptools)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# piston-client into run/node (npm's own cache makes it quick once fetched).
pc=run/node/node_modules/piston-client/package.json
if [ ! -f "$pc" ]; then
	command -v npm >/dev/null || { echo "deps: npm is needed for piston-client (the Piston gateway's test)" >&2; exit 1; }
	mkdir -p run/node
	npm install --silent --no-audit --no-fund --prefix run/node piston-client@1.0.2 >/dev/null
fi
