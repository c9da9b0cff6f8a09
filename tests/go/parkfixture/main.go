// Command parkfixture parks goroutines in two shapes the capture must keep:
//
//   - deep: -deep N goroutines, each parked on a channel receive at the bottom of a
//     recursion of -depth calls of main.deep(n int, release chan struct{}), n counting
//     down to 0 in the innermost call (a value a spec can capture in every frame);
//   - select: -locked N goroutines that call runtime.LockOSThread and then park in a
//     select (Go prints them `[select, locked to thread]`), and -unlocked N that park
//     in the same select without locking.
//
// Once every goroutine has reached its park it prints one line `READY {json}` on
// stdout and runs until killed or until -lifetime has passed. The report carries each
// group's goids (read by each goroutine from its own traceback) and, for the select
// groups, the header the runtime itself prints for each of them (runtime.Stack of all
// goroutines, taken after they parked).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type report struct {
	Schema       int               `json:"schema"`
	Program      string            `json:"program"`
	PID          int               `json:"pid"`
	GoVersion    string            `json:"go_version"`
	Executable   string            `json:"executable"`
	Args         []string          `json:"args"`
	Settled      bool              `json:"settled"`
	Depth        int               `json:"depth"`
	Deep         []int64           `json:"deep"`
	Locked       []int64           `json:"locked"`
	Unlocked     []int64           `json:"unlocked"`
	Headers      map[string]string `json:"headers"`
	NumGoroutine int               `json:"num_goroutine"`
}

// group collects the goids of goroutines that reached their park.
type group struct {
	mu      sync.Mutex
	ids     []int64
	arrived sync.WaitGroup
}

func (g *group) arrive() {
	id := goid()
	g.mu.Lock()
	g.ids = append(g.ids, id)
	g.mu.Unlock()
	g.arrived.Done()
}

func (g *group) sorted() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]int64{}, g.ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// goid parses "goroutine N [" from the calling goroutine's own traceback.
func goid() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
	if i := strings.IndexByte(s, ' '); i > 0 {
		if id, err := strconv.ParseInt(s[:i], 10, 64); err == nil {
			return id
		}
	}
	panic("cannot parse goroutine id from " + strconv.Quote(string(buf[:n])))
}

var sink int

// deep recurses n more times, then parks until release is closed. n is used after
// the call, so it lives in the frame across it.
//
//go:noinline
func deep(n int, release chan struct{}, g *group) {
	if n == 0 {
		g.arrive()
		<-release
		return
	}
	deep(n-1, release, g)
	sink += n
}

// selectPark parks in a select of two channels nobody sends on.
//
//go:noinline
func selectPark(a, b chan int, g *group) {
	g.arrive()
	select {
	case <-a:
	case <-b:
	}
}

func startSelect(n int, lock bool, a, b chan int, g *group) {
	g.arrived.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			if lock {
				runtime.LockOSThread()
			}
			selectPark(a, b, g)
		}()
	}
}

// headers maps each goid of ids to the bracketed state the runtime prints for it
// ("select, locked to thread"), from runtime.Stack(all=true) with a big enough buffer.
func headers(ids []int64) map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[strconv.FormatInt(id, 10)] = true
	}
	out := map[string]string{}
	for _, line := range bytes.Split(buf, []byte("\n")) {
		l := strings.TrimPrefix(string(line), "goroutine ")
		sp, open, end := strings.IndexByte(l, ' '), strings.IndexByte(l, '['), strings.LastIndexByte(l, ']')
		if len(l) == len(line) || sp <= 0 || open < 0 || end < open || !want[l[:sp]] {
			continue
		}
		out[l[:sp]] = l[open+1 : end]
	}
	return out
}

func main() {
	nDeep := flag.Int("deep", 0, "goroutines parked at the bottom of a recursion")
	depth := flag.Int("depth", 11, "main.deep frames of each deep goroutine")
	nLocked := flag.Int("locked", 0, "goroutines locked to their thread, parked in a select")
	nUnlocked := flag.Int("unlocked", 0, "goroutines parked in the same select, not locked")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this long (0 = forever)")
	settleTimeout := flag.Duration("settle-timeout", 60*time.Second, "give up waiting after this")
	flag.Parse()
	if *depth < 1 {
		fmt.Fprintln(os.Stderr, "parkfixture: -depth must be at least 1")
		os.Exit(2)
	}

	var deepers, locked, unlocked group
	release := make(chan struct{})
	deepers.arrived.Add(*nDeep)
	for i := 0; i < *nDeep; i++ {
		go deep(*depth-1, release, &deepers)
	}
	a, b := make(chan int), make(chan int)
	startSelect(*nLocked, true, a, b, &locked)
	startSelect(*nUnlocked, false, a, b, &unlocked)

	done := make(chan struct{})
	go func() {
		deepers.arrived.Wait()
		locked.arrived.Wait()
		unlocked.arrived.Wait()
		close(done)
	}()
	settled := true
	select {
	case <-done:
	case <-time.After(*settleTimeout):
		settled = false
	}
	// Each goroutine arrived just before its park: give the last ones time to park.
	time.Sleep(50 * time.Millisecond)

	exe, _ := os.Executable()
	r := report{
		Schema:     1,
		Program:    "parkfixture",
		PID:        os.Getpid(),
		GoVersion:  runtime.Version(),
		Executable: exe,
		Args:       os.Args[1:],
		Settled:    settled,
		Depth:      *depth,
		Deep:       deepers.sorted(),
		Locked:     locked.sorted(),
		Unlocked:   unlocked.sorted(),
		Headers:    map[string]string{},
	}
	if *nLocked+*nUnlocked > 0 {
		r.Headers = headers(append(r.Locked, r.Unlocked...))
	}
	r.NumGoroutine = runtime.NumGoroutine()
	line, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Printf("READY %s\n", line)
	os.Stdout.Sync()
	if *lifetime == 0 {
		select {}
	}
	time.Sleep(*lifetime)
}
