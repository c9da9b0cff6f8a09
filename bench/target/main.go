// Command target is the benchmark target: N goroutines parked on a channel receive,
// a hiccup meter, and an HTTP server on 127.0.0.1 with net/http/pprof and
//
//	GET /hiccup/reset  starts a new measurement period
//	GET /work          a request of the latency benchmark (hash, locked map, JSON)
//	GET /hiccup/max    {"max_gap_ns": ..., "samples": ..., "since_reset_ns": ...,
//	                    "mean_period_ns": ..., "interval_ns": ..., "enabled": ...}
//
// The hiccup meter loops on time.Sleep(-hiccup-interval) and keeps the largest delay of
// a wake-up beyond the requested sleep since the last reset: a stop-the-world pause,
// or a debugger's pause of the process, shows up as a gap of about its length.
//
// A second meter spins instead of sleeping, for sub-millisecond gaps:
//
//	GET /hiccup/spin?ms=N   starts a goroutine reading the clock in a loop for N ms
//	                        (answers once it runs), keeping the largest interval
//	GET /hiccup/spin/stop   ends it early (or waits for its end) and returns
//	                        {"max_gap_ns": ..., "samples": ..., "spun_ns": ...}
//
// The sleeping meter resolves about a millisecond (an idle process wakes from sleeps
// that short about once a millisecond); the spinning one resolves the clock's cost, at
// the price of a CPU while it spins, so it only runs in measurement windows.
//
// It prints one line `READY {json}` on stdout (pid, addr, goroutines, ...) once the
// goroutines are parked, and runs until killed or until -lifetime has passed.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var never = make(chan int)

// parked is where the -goroutines goroutines wait.
//
//go:noinline
func parked(ready *sync.WaitGroup) int {
	ready.Done()
	return <-never
}

// benchRequest is what parkedWithValues holds, for the value-capture benchmark.
type benchRequest struct {
	ID    int
	Path  string
	Start time.Time
}

// parkedWithValues is where the goroutines wait with -with-values: three variables
// (an int, a string, a pointer to a struct) live across the receive.
//
//go:noinline
func parkedWithValues(ready *sync.WaitGroup, id int, name string, req *benchRequest) int {
	ready.Done()
	v := <-never
	benchSink = name // keeps the whole string (not just its length) alive across the receive
	return v + id + req.ID + len(req.Path)
}

var benchSink string

// The state /work updates: a request's worth of work under a shared lock.
var (
	workMu    sync.Mutex
	workCount = map[int]int{}
)

// serveWork is a request of the latency benchmark (bench/latency.py): about 0.1 ms of
// CPU (hashing 32 KiB), a map update under a lock shared by all requests, a small JSON
// answer.
func serveWork(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	sum := sha256.Sum256(buf)
	workMu.Lock()
	workCount[int(sum[0])]++
	n := len(workCount)
	workMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"keys\":%d,\"sum\":\"%x\"}\n", n, sum[:8])
}

// hiccupMeter measures wake-up delays.
type hiccupMeter struct {
	interval time.Duration
	mu       sync.Mutex
	maxGap   time.Duration
	maxAt    time.Time
	samples  uint64
	reset    time.Time
	running  atomic.Bool
}

func (h *hiccupMeter) Reset() {
	h.mu.Lock()
	h.maxGap, h.maxAt, h.samples, h.reset = 0, time.Time{}, 0, time.Now()
	h.mu.Unlock()
}

// hiccupLoop runs forever on its own goroutine.
//
//go:noinline
func hiccupLoop(h *hiccupMeter) {
	h.running.Store(true)
	prev := time.Now()
	for {
		time.Sleep(h.interval)
		now := time.Now()
		gap := now.Sub(prev) - h.interval
		prev = now
		h.mu.Lock()
		h.samples++
		if gap > h.maxGap {
			h.maxGap, h.maxAt = gap, now
		}
		h.mu.Unlock()
	}
}

func (h *hiccupMeter) serveMax(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	out := map[string]any{
		"max_gap_ns":     h.maxGap.Nanoseconds(),
		"samples":        h.samples,
		"since_reset_ns": time.Since(h.reset).Nanoseconds(),
		"interval_ns":    h.interval.Nanoseconds(),
		"enabled":        h.running.Load(),
	}
	if h.samples > 0 {
		// Sub-millisecond sleeps wake up about once a millisecond when the process is
		// idle (the netpoller's timeout granularity): this is the meter's resolution.
		out["mean_period_ns"] = time.Since(h.reset).Nanoseconds() / int64(h.samples)
	}
	if !h.maxAt.IsZero() {
		out["max_at_unix_ns"] = h.maxAt.UnixNano()
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (h *hiccupMeter) serveReset(w http.ResponseWriter, r *http.Request) {
	h.Reset()
	h.serveMax(w, r)
}

// spinMeter measures the largest interval between two consecutive clock readings of
// a goroutine that does nothing else: while its thread is stopped, it reads no clock.
type spinMeter struct {
	mu      sync.Mutex
	stop    atomic.Bool
	done    chan struct{}
	maxGap  time.Duration
	samples uint64
	spun    time.Duration
}

// spinLoop runs on its own goroutine for at most d.
//
//go:noinline
func (s *spinMeter) spinLoop(d time.Duration, started chan<- struct{}, done chan<- struct{}) {
	start := time.Now()
	prev := start
	var maxGap time.Duration
	var samples uint64
	close(started)
	for !s.stop.Load() {
		now := time.Now()
		if gap := now.Sub(prev); gap > maxGap {
			maxGap = gap
		}
		prev = now
		samples++
		if now.Sub(start) >= d {
			break
		}
	}
	s.mu.Lock()
	s.maxGap, s.samples, s.spun = maxGap, samples, prev.Sub(start)
	s.mu.Unlock()
	close(done)
}

func (s *spinMeter) serveStart(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms <= 0 {
		http.Error(w, "ms: a positive number of milliseconds", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.done != nil {
		select {
		case <-s.done:
		default:
			s.mu.Unlock()
			http.Error(w, "already spinning", http.StatusConflict)
			return
		}
	}
	started, done := make(chan struct{}), make(chan struct{})
	s.done = done
	s.stop.Store(false)
	s.mu.Unlock()
	go s.spinLoop(time.Duration(ms)*time.Millisecond, started, done)
	<-started
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"spinning": true})
}

func (s *spinMeter) serveStop(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		http.Error(w, "not spinning", http.StatusConflict)
		return
	}
	s.stop.Store(true)
	<-done
	s.mu.Lock()
	out := map[string]any{
		"max_gap_ns": s.maxGap.Nanoseconds(),
		"samples":    s.samples,
		"spun_ns":    s.spun.Nanoseconds(),
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func main() {
	var (
		n        = flag.Int("goroutines", 1000, "goroutines parked on a channel receive in main.parked")
		hiccup   = flag.Bool("hiccup", true, "run the hiccup meter")
		interval = flag.Duration("hiccup-interval", 100*time.Microsecond, "hiccup meter sleep")
		addr     = flag.String("addr", "127.0.0.1:0", "HTTP listen address (loopback only)")
		lifetime = flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
		values   = flag.Bool("with-values", false, "park in main.parkedWithValues (id, name, req)")
	)
	flag.Parse()
	start := time.Now()

	h := &hiccupMeter{interval: *interval, reset: time.Now()}
	http.HandleFunc("/hiccup/max", h.serveMax)
	http.HandleFunc("/hiccup/reset", h.serveReset)
	spin := &spinMeter{}
	http.HandleFunc("/hiccup/spin", spin.serveStart)
	http.HandleFunc("/hiccup/spin/stop", spin.serveStop)
	http.HandleFunc("/work", serveWork)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "target:", err)
		os.Exit(2)
	}
	go func() {
		err := http.Serve(ln, nil)
		fmt.Fprintln(os.Stderr, "target: serve:", err)
		os.Exit(2)
	}()

	var ready sync.WaitGroup
	ready.Add(*n)
	for i := 0; i < *n; i++ {
		if *values {
			req := &benchRequest{ID: i, Path: fmt.Sprintf("/orders/%d", i), Start: start}
			go parkedWithValues(&ready, i, fmt.Sprintf("worker-%d", i), req)
		} else {
			go parked(&ready)
		}
	}
	ready.Wait()
	// Done() comes just before the receive: give the last ones time to park, and let
	// a GC run so that every parked goroutine has a wait-since time.
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	if *hiccup {
		go hiccupLoop(h)
		for !h.running.Load() {
			time.Sleep(time.Millisecond)
		}
	}
	h.Reset()

	out, _ := json.Marshal(map[string]any{
		"schema":        1,
		"program":       "bench-target",
		"pid":           os.Getpid(),
		"addr":          ln.Addr().String(),
		"url":           "http://" + ln.Addr().String(),
		"go_version":    runtime.Version(),
		"goroutines":    *n,
		"num_goroutine": runtime.NumGoroutine(),
		"hiccup":        *hiccup,
		"startup_ms":    time.Since(start).Milliseconds(),
	})
	fmt.Printf("READY %s\n", out)

	if *lifetime > 0 {
		time.Sleep(*lifetime)
		os.Exit(0)
	}
	for {
		time.Sleep(time.Hour)
	}
}
