# Thin wrapper: npm scripts do the work; this adds the system set-up.
.PHONY: setup build run test test-systemd test-vm lint bench install-systemd clean

setup:
	@scripts/setup.sh

# Compiled (and the node bootstrap bundled) only when a source changed, so that make run starts at once.
TS_SOURCES := $(shell find daemon cli console bench test -name '*.ts') $(wildcard runtimes/node/*.mjs) console/index.html console/app.css tsconfig.json package.json package-lock.json

dist/.built: $(TS_SOURCES)
	@npm run --silent build
	@touch $@

build: setup dist/.built

run: build
	node dist/daemon/main.js

lint: setup
	@npm run --silent lint

# Lint, tap, then hearth.service under systemd in nspawn and in VMs (scripts/test-all.sh).
test: build
	@scripts/test-all.sh

# A real systemd in a container running hearth.service (debootstrap once, cached).
test-systemd: build
	@scripts/test-systemd.sh

# The production path: systemd + cgroup v2 in QEMU guests of Debian 12 and 13 (images cached).
test-vm: build
	@scripts/test-vm.sh

bench: build
	node dist/bench/run.js

install-systemd: build
	scripts/install-systemd.sh

clean:
	rm -rf dist build .tap
