// Command loadgen drives an HTTP endpoint on loopback with a bounded closed loop, for
// bench/latency.py: -workers goroutines each send a request, wait for the whole
// answer, pause -think, and again, until -for has passed. Bounded, so that the service
// leaves CPU time unused (as a real one does) and a tool at idle priority can run.
//
// It prints one JSON object on stdout: {"latencies_us": [...], "errors": N}, one
// latency per completed request, in microseconds (with -starts, "starts_unix_us" too:
// when each began, in the same order).
package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	var (
		url     = flag.String("url", "", "endpoint to GET")
		workers = flag.Int("workers", 4, "requests in flight at most")
		think   = flag.Duration("think", 2*time.Millisecond, "pause after each answer")
		length  = flag.Duration("for", 10*time.Second, "how long to drive it")
		starts  = flag.Bool("starts", false, "also print each request's start (unix µs)")
	)
	flag.Parse()
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: *workers},
		Timeout:   30 * time.Second,
	}
	deadline := time.Now().Add(*length)
	var (
		mu     sync.Mutex
		lat    []int64
		begun  []int64
		errors int
		wg     sync.WaitGroup
	)
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine, mineBegun []int64
			bad := 0
			for time.Now().Before(deadline) {
				start := time.Now()
				resp, err := client.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					bad++
				} else {
					mine = append(mine, time.Since(start).Microseconds())
					mineBegun = append(mineBegun, start.UnixMicro())
				}
				time.Sleep(*think)
			}
			mu.Lock()
			lat = append(lat, mine...)
			begun = append(begun, mineBegun...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	out := map[string]any{"latencies_us": lat, "errors": errors}
	if *starts {
		out["starts_unix_us"] = begun
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
