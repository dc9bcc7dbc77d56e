# make install / make uninstall: sandboxd as a systemd service (included by
# the Makefile). PREFIX and DESTDIR as usual:
#
#   make install                                 # /usr/local, the default
#   make install PREFIX=/usr DESTDIR=$PWD/pkg    # a package's tree
#
# Units, sysusers.d and tmpfiles.d entries go under $(PREFIX)/lib, which
# Debian's systemd reads for both /usr and /usr/local (systemd-analyze
# unit-paths lists /usr/local/lib/systemd/system, and sysusers and tmpfiles
# read /usr/local/lib/{sysusers,tmpfiles}.d): a local install stays out of
# the package manager's /usr/lib, and PREFIX=/usr is what a package uses.
# The config goes to /etc/sandboxd/sandboxd.toml unless one is there.
# Nothing is started or enabled: see README.md, "Run it as a service".
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
CONFDIR     ?= /etc/sandboxd

.PHONY: install uninstall test-systemd

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 bin/sandboxd bin/sandboxctl $(DESTDIR)$(BINDIR)/
	@# The service names the binary where it was installed.
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/sandboxd.service >$(DESTDIR)$(UNITDIR)/sandboxd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sandboxd.service
	install -m 0644 dist/systemd/sandboxd.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 dist/systemd/sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf
	install -m 0644 dist/systemd/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/sandboxd.conf
	install -d -m 0755 $(DESTDIR)$(CONFDIR)
	@if [ -e $(DESTDIR)$(CONFDIR)/sandboxd.toml ]; then \
		echo "$(DESTDIR)$(CONFDIR)/sandboxd.toml exists: left as it is (the shipped one is dist/sandboxd.toml)"; \
	else \
		echo "install -m 0644 dist/sandboxd.toml $(DESTDIR)$(CONFDIR)/sandboxd.toml"; \
		install -m 0644 dist/sandboxd.toml $(DESTDIR)$(CONFDIR)/sandboxd.toml; \
	fi

# The config stays if it was changed: it is the operator's.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sandboxd $(DESTDIR)$(BINDIR)/sandboxctl
	rm -f $(DESTDIR)$(UNITDIR)/sandboxd.service $(DESTDIR)$(UNITDIR)/sandboxd.socket
	rm -f $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf $(DESTDIR)$(TMPFILESDIR)/sandboxd.conf
	@if cmp -s dist/sandboxd.toml $(DESTDIR)$(CONFDIR)/sandboxd.toml; then \
		rm -f $(DESTDIR)$(CONFDIR)/sandboxd.toml; rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(CONFDIR)/sandboxd.toml ]; then \
		echo "$(DESTDIR)$(CONFDIR)/sandboxd.toml was changed: left in place"; \
	fi

# The units, make install and the daemon under a real systemd (Debian's, as
# PID 1 of a throwaway VM), as make test-v2 boots it. See scripts/test-systemd.sh.
test-systemd: build
	@./scripts/test-systemd.sh
