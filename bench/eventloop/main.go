// Command eventloop is the dynamic-events benchmark's target: a loop calling a small
// noinline function, main.work(a, b, c int) int, on command, timed by itself.
//
// It prints one line `READY {json}` on stdout (pid, executable, function), then reads
// commands from stdin, one per line, and answers each with one line on stdout:
//
//	run N        calls main.work N times as fast as it can
//	pace R S G   calls main.work R times a second for S seconds from G goroutines
//	             (each busy-waits for its next call's time; a call that is late is
//	             made at once, so R is a ceiling)
//
// answer: `RESULT {"calls": N, "ns": elapsed, "ns_per_call": ..., "sum": ...}`. It exits
// at the end of its stdin, or when killed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// work is what the benchmark probes: three scalar arguments to capture.
//
//go:noinline
func work(a, b, c int) int {
	return a ^ (b << 1) ^ (c << 2)
}

type result struct {
	Calls     int     `json:"calls"`
	Ns        int64   `json:"ns"`
	NsPerCall float64 `json:"ns_per_call"`
	Sum       int     `json:"sum"`
}

func run(n int) result {
	sum := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		sum += work(i, i+1, i+2)
	}
	d := time.Since(t0)
	return result{Calls: n, Ns: int64(d), NsPerCall: float64(d) / float64(n), Sum: sum}
}

func pace(rate int, seconds float64, workers int) result {
	n := int(float64(rate) * seconds)
	step := time.Second * time.Duration(workers) / time.Duration(rate)
	sums := make([]int, workers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			start := t0.Add(time.Second * time.Duration(w) / time.Duration(rate))
			for i := 0; i*workers+w < n; i++ {
				due := start.Add(time.Duration(i) * step)
				for time.Now().Before(due) {
				}
				k := i*workers + w
				sums[w] += work(k, k+1, k+2)
			}
		}(w)
	}
	wg.Wait()
	d := time.Since(t0)
	sum := 0
	for _, s := range sums {
		sum += s
	}
	return result{Calls: n, Ns: int64(d), NsPerCall: float64(d) / float64(n), Sum: sum}
}

func main() {
	exe, _ := os.Executable()
	ready, _ := json.Marshal(map[string]any{
		"program": "eventloop", "pid": os.Getpid(), "executable": exe, "function": "main.work",
	})
	fmt.Printf("READY %s\n", ready)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var r result
		switch {
		case len(f) == 2 && f[0] == "run":
			n, err := strconv.Atoi(f[1])
			if err != nil || n <= 0 {
				fmt.Fprintln(os.Stderr, "eventloop: bad count", f[1])
				os.Exit(2)
			}
			r = run(n)
		case len(f) == 4 && f[0] == "pace":
			rate, err1 := strconv.Atoi(f[1])
			secs, err2 := strconv.ParseFloat(f[2], 64)
			workers, err3 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || err3 != nil || rate <= 0 || secs <= 0 || workers <= 0 {
				fmt.Fprintln(os.Stderr, "eventloop: bad pace", f[1:])
				os.Exit(2)
			}
			r = pace(rate, secs, workers)
		default:
			fmt.Fprintln(os.Stderr, "eventloop: unknown command", sc.Text())
			os.Exit(2)
		}
		out, _ := json.Marshal(r)
		fmt.Printf("RESULT %s\n", out)
	}
}
