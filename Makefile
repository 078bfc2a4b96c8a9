# torrentfs — see README.md. `make run` and `make test` work on a fresh Debian machine
# with only Swift installed: both install what is missing first.

SWIFT ?= swift
PREFIX ?= /usr/local
SBINDIR ?= /sbin
# Debian's python3 has python3-libtorrent; a pyenv or venv python3 earlier on PATH does not.
PYTHON ?= /usr/bin/python3
DEBUG_BIN := .build/debug/torrentfs
RELEASE_BIN := .build/release/torrentfs

# System packages: FUSE (build and mount), and the independent peers and tools that tests
# and benchmarks compare against.
APT_PACKAGES := libfuse3-dev fuse3 pkg-config python3 python3-pytest python3-libtorrent \
	opentracker aria2 transmission-cli mktorrent openssl bc btfs ffmpeg nginx tmux man-db \
	miniupnpd-nftables nftables

.PHONY: all deps build release test test-unit test-interop fuzz bench install install-files uninstall run clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else echo "System packages: all present"; fi
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 is required (https://swift.org/install)"; exit 1; }

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

test: deps test-unit test-interop

test-unit:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

test-interop: build
	TORRENTFS_BIN=$(CURDIR)/$(DEBUG_BIN) timeout 1200 $(PYTHON) -m pytest -q -p no:cacheprovider Tests/interop

fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} scripts/fuzz.sh

# fast_seed_bench.py (issue 13): default and high_performance_seed() seeders, 8 rate-limited
# seeders, the mount against download; ~70 s on the 2-core machine, bounded at 20 min.
bench: deps release
	bench/create.sh $(RELEASE_BIN)
	$(PYTHON) bench/download_bench.py $(RELEASE_BIN)
	$(PYTHON) bench/mount_bench.py $(RELEASE_BIN)
	timeout 1200 $(PYTHON) bench/fast_seed_bench.py $(RELEASE_BIN)
	timeout 900 $(PYTHON) bench/http_bench.py $(RELEASE_BIN)
	timeout 600 $(PYTHON) bench/webseed_bench.py $(RELEASE_BIN)
	timeout 1800 $(PYTHON) bench/utp_bench.py $(RELEASE_BIN)
	timeout 600 $(PYTHON) bench/dht_bench.py $(RELEASE_BIN)
	timeout 900 $(PYTHON) bench/mse_download_bench.py $(RELEASE_BIN)
	timeout 1500 $(PYTHON) bench/mse_interop_bench.py $(RELEASE_BIN)
	timeout 600 $(PYTHON) bench/connect_bench.py $(RELEASE_BIN)

# mount(8) looks for helpers in /sbin: `mount -t torrentfs torrentfs /mnt/t` and fstab lines
# run /sbin/mount.torrentfs, a link to the binary (it picks the mount command by its name).
# The manual pages torrentfs(1) and mount.torrentfs(8) go to $(MANDIR). `install-files` copies
# without building: `make install-files DESTDIR=/tmp/stage RELEASE_BIN=.build/debug/torrentfs`.
MANDIR ?= $(PREFIX)/share/man

install: release
	$(MAKE) install-files

install-files:
	install -D -m 0755 $(RELEASE_BIN) $(DESTDIR)$(PREFIX)/bin/torrentfs
	install -d $(DESTDIR)$(SBINDIR)
	ln -sf $(PREFIX)/bin/torrentfs $(DESTDIR)$(SBINDIR)/mount.torrentfs
	install -D -m 0644 docs/man/torrentfs.1 $(DESTDIR)$(MANDIR)/man1/torrentfs.1
	install -D -m 0644 docs/man/mount.torrentfs.8 $(DESTDIR)$(MANDIR)/man8/mount.torrentfs.8

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/torrentfs $(DESTDIR)$(SBINDIR)/mount.torrentfs \
		$(DESTDIR)$(MANDIR)/man1/torrentfs.1 $(DESTDIR)$(MANDIR)/man8/mount.torrentfs.8

run: deps build
	scripts/demo.sh $(DEBUG_BIN)

clean:
	rm -rf .build .build-fuzz fuzz-artifacts
