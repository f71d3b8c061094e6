# Thin wrapper: npm scripts do the work; this adds the system set-up.
.PHONY: setup build run test test-systemd lint bench install-systemd clean

setup:
	@scripts/setup.sh

# Compiled only when a source changed, so that make run starts at once.
TS_SOURCES := $(shell find daemon bench test -name '*.ts') tsconfig.json package.json package-lock.json

dist/.built: $(TS_SOURCES)
	@npm run --silent build
	@touch $@

build: setup dist/.built

run: build
	node dist/daemon/main.js

lint: setup
	@npm run --silent lint

test: build
	@npm run --silent lint
	@npm test
	@scripts/test-systemd.sh

# A real systemd in a container running hearth.service (debootstrap once, cached).
test-systemd: build
	@scripts/test-systemd.sh

bench: build
	node dist/bench/run.js

install-systemd: build
	scripts/install-systemd.sh

clean:
	rm -rf dist build .tap
