// lj-receiver: a Lumberjack v2 receiver built on Elastic's go-lumber server (the library
// libbeat's own tests use). It acknowledges each batch after writing its events, one raw
// JSON document per line, to -out (an empty -out only counts them).
//
//	lj-receiver -listen 127.0.0.1:5044 -out events.ndjson [-cert c.pem -key k.pem] [-ack-delay 10ms]
//
// Once listening it prints "listening on ADDR" on stdout.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	v2 "github.com/elastic/go-lumber/server/v2"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5044", "address to listen on")
	out := flag.String("out", "", "append received events here (one JSON document per line); empty: count only")
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS private key (PEM)")
	ackDelay := flag.Duration("ack-delay", 0, "wait this long before acknowledging each batch")
	keepalive := flag.Duration("keepalive", 3*time.Second, "interval of keep-alive ACK 0 frames (0: off)")
	timeout := flag.Duration("timeout", 30*time.Second, "network timeout")
	maxWindow := flag.Uint("max-window", 10000, "largest accepted window (0: no limit)")
	flag.Parse()

	opts := []v2.Option{
		v2.Keepalive(*keepalive),
		v2.Timeout(*timeout),
		v2.MaxWindowSize(uint32(*maxWindow)),
		// Keep each event's bytes as sent, so tests compare exactly what the client wrote.
		v2.JSONDecoder(func(b []byte, v interface{}) error {
			if !json.Valid(b) {
				return fmt.Errorf("invalid JSON payload")
			}
			raw := make(json.RawMessage, len(b))
			copy(raw, b)
			*(v.(*interface{})) = raw
			return nil
		}),
	}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatalf("loading TLS certificate: %v", err)
		}
		opts = append(opts, v2.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	}

	var w *os.File
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatalf("opening %s: %v", *out, err)
		}
		w = f
	}

	s, err := v2.ListenAndServe(*listen, opts...)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	fmt.Printf("listening on %s\n", *listen)
	os.Stdout.Sync()

	var events, batches atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf bytes.Buffer
		for b := range s.ReceiveChan() {
			if w != nil {
				buf.Reset()
				for _, e := range b.Events {
					raw, ok := e.(json.RawMessage)
					if !ok {
						raw, _ = json.Marshal(e)
					}
					buf.Write(raw)
					buf.WriteByte('\n')
				}
				// One write per batch, before the ACK: an acknowledged event is in the file.
				if _, err := w.Write(buf.Bytes()); err != nil {
					log.Fatalf("write: %v", err)
				}
			}
			events.Add(int64(len(b.Events)))
			batches.Add(1)
			if *ackDelay > 0 {
				time.Sleep(*ackDelay)
			}
			b.ACK()
		}
	}()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = s.Close()
	<-done
	fmt.Printf("received %d events in %d batches\n", events.Load(), batches.Load())
	if w != nil {
		_ = w.Close()
	}
}
