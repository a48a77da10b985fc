# Lumberjack / Logstash output: the go-lumber receiver (tests/receiver) the interop tests
# talk to, the go-lumber sender the benchmark compares against, and redis-server for
# output.redis. Go modules come from the Go module proxy (pinned in go.sum).
APT_PACKAGES+=(redis-server)

_lj_go() {
  command -v go 2>/dev/null || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || true
}

_lj_build() {  # dir output
  local dir=$1 out=$2 go
  go=$(_lj_go)
  if [ -z "$go" ]; then
    echo "go is not installed: cannot build $dir" >&2
    return 1
  fi
  if [ -x "$out" ] && [ -z "$(find "$dir" -name '*.go' -newer "$out" -o -name 'go.*' -newer "$out")" ]; then
    return 0
  fi
  (cd "$dir" && "$go" build -o "$out" .)
}

setup_lumberjack() {
  _lj_build tests/receiver "$PWD/tests/receiver/lj-receiver"
  mkdir -p benchmarks/out
  _lj_build benchmarks/lj-sender "$PWD/benchmarks/out/lj-sender"
}
SETUP_STEPS+=(setup_lumberjack)
