// nfsd-test: an NFSv3 server for wirebeat's live tests, built on github.com/willscott/go-nfs.
//
// It serves a directory on 127.0.0.1 (every subdirectory is an export, "/ro" and below
// read-only, so that writes there fail with NFS3ERR_ROFS) and
// writes one JSON line per RPC message it receives or sends to the log file: the ground
// truth the tests compare wirebeat's events with. The log is read off the server's own
// socket, below go-nfs, by this program's record reader (RFC 5531 §11), not by wirebeat.
//
// Usage: nfsd-test -dir DIR -port N -log FILE
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

type entry struct {
	Dir    string `json:"dir"` // "call" or "reply"
	Xid    uint32 `json:"xid"`
	Prog   uint32 `json:"prog,omitempty"`
	Vers   uint32 `json:"vers,omitempty"`
	Proc   uint32 `json:"proc"`
	Reply  int64  `json:"reply_stat"`
	Accept int64  `json:"accept_stat"`
	Status int64  `json:"status"`
	Size   int    `json:"size"`
	Port   int    `json:"client_port"`
}

var (
	logMu  sync.Mutex
	logOut *os.File
)

func write(e entry) {
	b, _ := json.Marshal(e)
	logMu.Lock()
	defer logMu.Unlock()
	logOut.Write(append(b, '\n'))
}

// recorder cuts one direction of the connection into RPC records and logs each.
type recorder struct {
	buf   []byte
	frags []byte
	dir   string
	port  int
}

func (r *recorder) feed(p []byte) {
	r.buf = append(r.buf, p...)
	for len(r.buf) >= 4 {
		marker := binary.BigEndian.Uint32(r.buf)
		size := int(marker & 0x7fffffff)
		if len(r.buf) < 4+size {
			return
		}
		r.frags = append(r.frags, r.buf[4:4+size]...)
		r.buf = r.buf[4+size:]
		if marker&0x80000000 != 0 {
			r.message(r.frags)
			r.frags = nil
		}
	}
}

func word(b []byte, i int) int64 {
	if len(b) < 4*(i+1) {
		return -1
	}
	return int64(binary.BigEndian.Uint32(b[4*i:]))
}

func (r *recorder) message(m []byte) {
	e := entry{Dir: r.dir, Size: len(m), Port: r.port, Reply: -1, Accept: -1, Status: -1}
	e.Xid = uint32(word(m, 0))
	if r.dir == "call" {
		e.Prog, e.Vers, e.Proc = uint32(word(m, 3)), uint32(word(m, 4)), uint32(word(m, 5))
	} else {
		e.Reply = word(m, 2)
		if e.Reply == 0 {
			vlen := word(m, 4)
			at := 5 + int((vlen+3)/4)
			e.Accept = word(m, at)
			if e.Accept == 0 {
				e.Status = word(m, at+1)
			}
		}
	}
	write(e)
}

type loggedConn struct {
	net.Conn
	in, out *recorder
}

func (c *loggedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.in.feed(p[:n])
	}
	return n, err
}

func (c *loggedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.out.feed(p[:n])
	}
	return n, err
}

type loggedListener struct{ net.Listener }

func (l loggedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	port := c.RemoteAddr().(*net.TCPAddr).Port
	return &loggedConn{c, &recorder{dir: "call", port: port}, &recorder{dir: "reply", port: port}}, nil
}

// readOnly hides the write capability: go-nfs then answers writes with NFS3ERR_ROFS.
type readOnly struct{ billy.Filesystem }

func (readOnly) Capabilities() billy.Capability {
	return billy.ReadCapability | billy.SeekCapability
}

// settable adds billy.Change (SETATTR: mode, owner, times) to an os-backed filesystem.
type settable struct{ billy.Filesystem }

func (s settable) real(name string) string { return s.Join(s.Root(), name) }

func (s settable) Chmod(name string, mode os.FileMode) error { return os.Chmod(s.real(name), mode) }

func (s settable) Lchown(name string, uid, gid int) error { return os.Lchown(s.real(name), uid, gid) }

func (s settable) Chown(name string, uid, gid int) error { return os.Chown(s.real(name), uid, gid) }

func (s settable) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(s.real(name), atime, mtime)
}

// exports: every directory is an export; "/ro" and below are read-only.
type exports struct {
	nfs.Handler
	dir string
}

func (h exports) Mount(ctx context.Context, conn net.Conn, req nfs.MountRequest) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
	p := path.Clean("/" + string(req.Dirpath))
	if st, err := os.Stat(filepath.Join(h.dir, p)); err != nil || !st.IsDir() {
		return nfs.MountStatusErrNoEnt, nil, nil
	}
	var fs billy.Filesystem = settable{osfs.New(filepath.Join(h.dir, p))}
	if p == "/ro" || strings.HasPrefix(p, "/ro/") {
		fs = readOnly{fs}
	}
	return nfs.MountStatusOk, fs, []nfs.AuthFlavor{nfs.AuthFlavorNull}
}

// Change: the mounted filesystem's own, if it has one (the read-only export has none).
func (h exports) Change(fs billy.Filesystem) billy.Change {
	if c, ok := fs.(billy.Change); ok {
		return c
	}
	return nil
}

func main() {
	dir := flag.String("dir", "", "directory to serve")
	port := flag.Int("port", 0, "TCP port on 127.0.0.1")
	logPath := flag.String("log", "", "JSON lines of the RPC messages seen")
	flag.Parse()
	var err error
	if logOut, err = os.Create(*logPath); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	base := nfshelper.NewNullAuthHandler(osfs.New(*dir))
	handler := nfshelper.NewCachingHandler(exports{base, *dir}, 4096)
	fmt.Printf("listening on %s\n", listener.Addr())
	os.Stdout.Sync()
	fmt.Fprintln(os.Stderr, nfs.Serve(loggedListener{listener}, handler))
}
