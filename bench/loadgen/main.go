// Command loadgen drives an HTTP endpoint on loopback with a bounded closed loop, for
// bench/latency.py: -workers goroutines each send a request, wait for the whole
// answer, pause -think, and again, until -for has passed. Bounded, so that the service
// leaves CPU time unused (as a real one does) and a tool at idle priority can run.
//
// It prints one JSON object on stdout: {"latencies_us": [...], "errors": N}, one
// latency per completed request, in microseconds, in completion order.
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
		errors int
		wg     sync.WaitGroup
	)
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int64
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
				}
				time.Sleep(*think)
			}
			mu.Lock()
			lat = append(lat, mine...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"latencies_us": lat, "errors": errors}); err != nil {
		os.Exit(1)
	}
}
