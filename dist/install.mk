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
# The configs go to /etc/sandboxd/sandboxd.toml and gateway.toml, each
# unless one is there. Nothing is started or enabled, sandboxd-gateway.service
# included: see README.md, "Running it as a service".
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
	@# The services name the binary where it was installed.
	for u in sandboxd.service sandboxd-gateway.service; do \
		sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 dist/systemd/sandboxd.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 dist/systemd/sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf
	install -m 0644 dist/systemd/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/sandboxd.conf
	install -d -m 0755 $(DESTDIR)$(CONFDIR)
	@for f in sandboxd.toml gateway.toml; do \
		if [ -e $(DESTDIR)$(CONFDIR)/$$f ]; then \
			echo "$(DESTDIR)$(CONFDIR)/$$f exists: left as it is (the shipped one is dist/$$f)"; \
		else \
			echo "install -m 0644 dist/$$f $(DESTDIR)$(CONFDIR)/$$f"; \
			install -m 0644 dist/$$f $(DESTDIR)$(CONFDIR)/$$f || exit 1; \
		fi; \
	done

# A config stays if it was changed: it is the operator's.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sandboxd $(DESTDIR)$(BINDIR)/sandboxctl
	rm -f $(DESTDIR)$(UNITDIR)/sandboxd.service $(DESTDIR)$(UNITDIR)/sandboxd.socket $(DESTDIR)$(UNITDIR)/sandboxd-gateway.service
	rm -f $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf $(DESTDIR)$(TMPFILESDIR)/sandboxd.conf
	@for f in sandboxd.toml gateway.toml; do \
		if cmp -s dist/$$f $(DESTDIR)$(CONFDIR)/$$f; then \
			rm -f $(DESTDIR)$(CONFDIR)/$$f; \
		elif [ -e $(DESTDIR)$(CONFDIR)/$$f ]; then \
			echo "$(DESTDIR)$(CONFDIR)/$$f was changed: left in place"; \
		fi; \
	done
	@rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true

# The units, make install and the daemon under a real systemd (Debian's, as
# PID 1 of a throwaway VM), as make test-v2 boots it. See scripts/test-systemd.sh.
test-systemd: build
	@./scripts/test-systemd.sh
