# Tokfence — build, run and test.
#
#   make run    build, make sure a Secret Service exists, run the daemon
#   make test   vet, gofmt, and the whole test suite under -race
#   make bench  the benchmarks of the hot paths
#   make prices the embedded price table from a genai-prices release (GENAI_PRICES=VERSION)

SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

GO      ?= go
BIN     := bin/tokfence
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/tokfence/tokfence/daemon.Version=$(VERSION)
APT_PKGS := gnome-keyring dbus dbus-bin libsecret-tools curl util-linux

.PHONY: build deps run test unit soak fuzz vet fmt bench prices clean

FUZZEXECS := testdata/fuzz-execs
FUZZSCALE ?= 1
# go test's -timeout does not cover fuzzing, so a hang would run forever:
# each target gets this much wall time, far past its budget, at most.
FUZZLIMIT ?= 5m
SOAK     ?= 2m

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tokfence

# deps installs the Debian packages the keychain path and the tests need,
# only when one is missing (root, or sudo without a password).
deps:
	@missing=""; \
	for b in gnome-keyring-daemon dbus-daemon dbus-run-session dbus-send secret-tool curl setpriv unshare; do \
	  command -v $$b >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing $(APT_PKGS)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi
	$(GO) mod download

# run starts the daemon in the foreground. With a desktop keyring already on
# the session bus it uses that. On a headless box it starts a private D-Bus
# session and a gnome-keyring whose login keyring is unlocked with a random
# password and lives in a throwaway directory: the real OS-keychain code
# path, with nothing left behind. It prints the bus address so that a second
# shell can run `tokfence key set` against the same keyring.
run: build deps
	@if [ -n "$$DBUS_SESSION_BUS_ADDRESS" ] && dbus-send --session --print-reply --dest=org.freedesktop.DBus \
	    /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; then \
	  echo "using the Secret Service on your session bus"; exec ./$(BIN) daemon; \
	fi; \
	kr=$$(mktemp -d /tmp/tokfence-keyring.XXXXXX); trap 'rm -rf "$$kr"' EXIT; \
	exec dbus-run-session -- sh -c ' \
	  head -c 24 /dev/urandom | od -An -tx1 | tr -d " \n" | \
	    XDG_DATA_HOME="$$0" gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1; \
	  echo "private keyring up; in another shell run:"; \
	  echo "  export DBUS_SESSION_BUS_ADDRESS=$$DBUS_SESSION_BUS_ADDRESS"; \
	  echo "  ./$(BIN) key set openai   # then ./$(BIN) status"; \
	  exec ./$(BIN) daemon' "$$kr"

vet:
	$(GO) vet ./...
	@# The macOS fence cannot run here; it must at least build and vet.
	GOOS=darwin $(GO) vet ./daemon/fence/
	GOOS=darwin $(GO) build -o /dev/null ./cmd/tokfence
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# test is what CI runs: the whole suite under -race (the keychain and SDK
# tests fail rather than skip), then a bounded soak, then every fuzz target
# for its budget in testdata/fuzz-execs.
test: deps vet unit soak fuzz

unit:
	TOKFENCE_REQUIRE_KEYRING=1 TOKFENCE_REQUIRE_SDK=1 $(GO) test -race -count=1 -timeout 30m ./...

# soak prints a progress line every 15 s (the test logs it; -v streams it,
# and grep passes it on line by line, even into a pipe).
soak:
	@echo "soak: $(SOAK) of mixed traffic, grants, kills and policy reloads"
	$(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./daemon/ -args -soak=$(SOAK) | grep --line-buffered -E '^(---|ok|FAIL|PASS)|soak_test'

# fuzz prints each target's start and end with its time, and the total.
fuzz:
	@mod=$$($(GO) list -m); log=$$(mktemp /tmp/tokfence-fuzz.XXXXXX); trap 'rm -f "$$log"' EXIT; \
	all=$$(date +%s); \
	for pkg in $$($(GO) list ./...); do \
	  rel=".$${pkg#$$mod}"; \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    n=$$(awk -v p="$$rel" -v f="$$f" '$$1 == p && $$2 == f { print $$3 }' $(FUZZEXECS)); \
	    if [ -z "$$n" ]; then echo "fuzz: $$f in $$rel has no budget in $(FUZZEXECS)"; exit 1; fi; \
	    n=$$((n * $(FUZZSCALE))); \
	    echo "fuzz: $$f in $$rel, $$n execs ..."; t0=$$(date +%s); \
	    timeout -k 30s $(FUZZLIMIT) $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime "$${n}x" -fuzzminimizetime 5s $$pkg >"$$log" 2>&1 || \
	      { rc=$$?; cat "$$log"; [ $$rc = 124 ] && echo "fuzz: $$f did not finish its budget within $(FUZZLIMIT): a hang"; exit 1; }; \
	    echo "fuzz: $$f done in $$(( $$(date +%s) - t0 )) s"; \
	  done; \
	done; \
	echo "fuzz: every target done in $$(( $$(date +%s) - all )) s"

# bench runs the hot-path benchmarks, then the load harness (cmd/tfbench)
# against a real daemon process; results land in bench/results.json.
bench: build deps
	$(GO) test -run '^$$' -bench . -benchmem ./capability/ ./sensor/ ./daemon/ ./daemon/audit/ ./daemon/fence/
	$(GO) test -run '^$$' -bench Exec -benchtime 60x ./cmd/tokfence/
	$(GO) run ./cmd/tfbench $(BENCHFLAGS)

# prices regenerates daemon/prices/ from the npm package @pydantic/genai-prices
# (the latest release, or GENAI_PRICES=0.1.8) and runs the pricing tests.
# Needs node and npm.
GENAI_PRICES ?= latest
prices:
	tools/prices/update.sh $(GENAI_PRICES)

clean:
	rm -rf bin
