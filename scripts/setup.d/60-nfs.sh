# NFS live tests (tests/integration/test_nfs_live.py): an NFSv3 server of ours
# (tests/nfs/server, on github.com/willscott/go-nfs from the Go module proxy) and libnfs
# clients: libnfs-utils' nfs-ls/nfs-cat/nfs-cp and tests/nfs/nfs-op.c (built against
# libnfs-dev) for mkdir, rename, remove ...
# NFSv4 (tests/integration/test_nfs4_live.py): NFS-Ganesha with its in-memory FSAL, started
# by the test with rpcbind in network and mount namespaces of its own (util-linux unshare,
# nsenter). Installing the packages starts no service (no init system here).
#
# go-nfs v0.0.4 numbers accept_stat without PROG_MISMATCH (its PROC_UNAVAIL goes out as 2,
# which libnfs cannot decode) and has no MOUNTPROC3_EXPORT, which libnfs calls right after
# MNT. The module is copied out of the read-only module cache, the numbering fixed and an
# empty EXPORT handler added (tests/nfs/server/mount_export.go.in) before `go build`.
APT_PACKAGES+=(libnfs-utils libnfs-dev gcc libc6-dev nfs-ganesha nfs-ganesha-mem rpcbind util-linux iproute2)
GO_NFS_VERSION=v0.0.4

_nfs_dir() {
  echo "${WIREBEAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wirebeat}/nfs-$GO_NFS_VERSION"
}

setup_nfs() {
  local dir go src stamp build
  dir=$(_nfs_dir)
  stamp=$(cat tests/nfs/server/main.go tests/nfs/server/go.mod tests/nfs/server/go.sum \
    tests/nfs/server/mount_export.go.in tests/nfs/nfs-op.c | sha256sum | cut -c1-16)
  if [ -x "$dir/nfsd-test" ] && [ -x "$dir/nfs-op" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  go=$(command -v go 2>/dev/null || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || true)
  if [ -z "$go" ]; then
    echo "go is not installed: cannot build the NFS test server" >&2
    return 1
  fi
  src=$(cd /tmp && "$go" mod download -json "github.com/willscott/go-nfs@$GO_NFS_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  build="$dir/build"
  rm -rf "$build"
  mkdir -p "$build"
  cp -r "$src" "$build/go-nfs"
  chmod -R u+w "$build/go-nfs"
  sed -i 's/^\tResponseCodeProgUnavailable$/&\n\tResponseCodeProgMismatch/' "$build/go-nfs/conn.go"
  if ! grep -q '^	ResponseCodeProgMismatch$' "$build/go-nfs/conn.go"; then
    echo "go-nfs $GO_NFS_VERSION: accept_stat numbering not found where expected" >&2
    return 1
  fi
  cp tests/nfs/server/mount_export.go.in "$build/go-nfs/mount_export.go"
  cp tests/nfs/server/main.go tests/nfs/server/go.mod tests/nfs/server/go.sum "$build/"
  echo "replace github.com/willscott/go-nfs => ./go-nfs" >> "$build/go.mod"
  (cd "$build" && "$go" build -o "$dir/nfsd-test.tmp" .)
  mv "$dir/nfsd-test.tmp" "$dir/nfsd-test"
  cc -O2 -Wall -o "$dir/nfs-op.tmp" tests/nfs/nfs-op.c -lnfs
  mv "$dir/nfs-op.tmp" "$dir/nfs-op"
  echo "$stamp" > "$dir/stamp"
  rm -rf "$build"
}
SETUP_STEPS+=(setup_nfs)
