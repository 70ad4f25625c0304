# vxswitch. `make demo` builds and runs the two-host lab; `make test` runs
# every test (root-only tests skip without root unless CI is set).
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := bin/vxswitch
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/vxswitch/vxswitch/control.Version=$(VERSION)

.PHONY: all build test test-short demo bench bench-micro lint deps clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vxswitch

deps:
	./scripts/install-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# -p 2: the netns tests move real traffic; two packages at a time on two cores.
test: deps lint build
	$(GO) test -race -p 2 -timeout 25m -count=1 ./...

test-short: build
	$(GO) test -short -count=1 ./...

demo: deps build
	$(GO) run ./bench/cmd/demo -vxswitch $(BIN)

bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./fdb/ ./dataplane/ ./overlay/ ./internal/...

bench: deps build
	$(GO) run ./bench/cmd/vxbench -vxswitch $(BIN)

clean:
	rm -rf bin
