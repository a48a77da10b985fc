// lj-sender: go-lumber's own client (what libbeat's Logstash output uses) sending the
// events of an ndjson file, cycled, for the throughput comparison in
// benchmarks/bench_lumberjack.py. Events are decoded into maps first (not timed), so the
// client JSON-encodes them as libbeat does.
//
//	lj-sender -addr 127.0.0.1:5044 -events events.ndjson -count 200000 -compress 3 -batch 2048 -pipeline 2
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	v2 "github.com/elastic/go-lumber/client/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5044", "receiver address")
	events := flag.String("events", "", "ndjson file of events")
	count := flag.Int("count", 100000, "events to send")
	compress := flag.Int("compress", 3, "compression level 0-9")
	batch := flag.Int("batch", 2048, "events per window")
	pipeline := flag.Int("pipeline", 2, "windows in flight (0: synchronous client)")
	timeout := flag.Duration("timeout", 30*time.Second, "network timeout")
	raw := flag.Bool("raw", false, "send the file's JSON as is (no encoding: the wire path alone)")
	flag.Parse()

	f, err := os.Open(*events)
	if err != nil {
		log.Fatal(err)
	}
	var docs []interface{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		if *raw {
			docs = append(docs, append([]byte(nil), sc.Bytes()...))
			continue
		}
		var m map[string]interface{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			log.Fatal(err)
		}
		docs = append(docs, m)
	}
	opts := []v2.Option{v2.CompressionLevel(*compress), v2.Timeout(*timeout)}
	if *raw {
		opts = append(opts, v2.JSONEncoder(func(v interface{}) ([]byte, error) { return v.([]byte), nil }))
	}
	if len(docs) == 0 {
		log.Fatal("no events")
	}
	next := 0
	take := func(n int) []interface{} {
		out := make([]interface{}, n)
		for i := range out {
			out[i] = docs[next%len(docs)]
			next++
		}
		return out
	}

	start := time.Now()
	sent := 0
	if *pipeline == 0 {
		cl, err := v2.SyncDial(*addr, opts...)
		if err != nil {
			log.Fatal(err)
		}
		for sent < *count {
			n := min(*batch, *count-sent)
			if _, err := cl.Send(take(n)); err != nil {
				log.Fatal(err)
			}
			sent += n
		}
		_ = cl.Close()
	} else {
		cl, err := v2.AsyncDial(*addr, *pipeline, opts...)
		if err != nil {
			log.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failure error
		for sent < *count {
			n := min(*batch, *count-sent)
			wg.Add(1)
			err := cl.Send(func(seq uint32, err error) {
				if err != nil {
					mu.Lock()
					failure = err
					mu.Unlock()
				}
				wg.Done()
			}, take(n))
			if err != nil {
				log.Fatal(err)
			}
			sent += n
		}
		wg.Wait()
		_ = cl.Close()
		if failure != nil {
			log.Fatal(failure)
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("{\"events\": %d, \"seconds\": %.4f, \"eps\": %.1f}\n", sent, secs, float64(sent)/secs)
}
