// Command deepfixture parks goroutines deep in a recursion, every frame of it holding
// values it knows, to check that a snapshot captures the values of every frame of a
// spec'd function, however many there are.
//
// Each of -goroutines goroutines calls main.deep(n, id, m, ch, s, p) with n = -depth-1,
// which calls itself with n-1 down to n = 0, which calls main.park, parked on a channel
// receive that never completes: -depth frames of main.deep a goroutine, the innermost
// holding n = 0.
// Every parameter is used after the call a frame is parked in, so each has a stack
// location there. The heap values (m, ch, p) belong to the goroutine; s is "g<id>".
//
// -loopers goroutines wait in main.loop(st, ...), st.N = their index + 1, on a receive
// inside a loop: woken, a looper adds 1000 to st.N, grows its stack past 32 KiB (the
// runtime copies it) and waits again at the same call: same pc, same depth, another
// stack.
//
// With -wide, one more goroutine waits in main.wide(a []string, p *bag), 32 strings in
// each of a, p.S, p.T and p.U: captured as a, p.S and p.T, a frame with more to copy
// (102 copies: headers and 96 string contents) than the 64 that may wait at once in
// the probe's queue, never more than 33 at the same time (one expression is chased
// after the other); captured as p, 96 contents wait at once.
//
// It prints one line `READY {json}` on stdout once every goroutine shows
// `[chan receive]` with main.deep (main.loop) on its stack in runtime.Stack(all=true).
// On the first SIGUSR1 it changes every deep goroutine's heap values (p.N, m["b"] and
// one more element in ch) without any deep goroutine running, wakes every looper once,
// waits until they all wait again, and writes the same report with the new values to
// -moved FILE (FILE.tmp, then a rename). It runs until killed, or until -lifetime has
// passed.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

type item struct {
	Name string
	N    int
}

// block is never ready: every deep goroutine parks on it.
var block = make(chan struct{})

type holder struct {
	id int
	m  map[string]int
	ch chan int
	s  string
	p  *item
}

type chanView struct {
	Len    int  `json:"len"`
	Cap    int  `json:"cap"`
	Closed bool `json:"closed"`
}

type truth struct {
	Goid int64 `json:"goid"`
	ID   int   `json:"id"`
	// Ns holds n in each main.deep frame, innermost first.
	Ns     []int          `json:"ns"`
	Values map[string]any `json:"values"`
}

type looperTruth struct {
	Goid int64 `json:"goid"`
	N    int   `json:"n"`
}

type report struct {
	Schema     int      `json:"schema"`
	Program    string   `json:"program"`
	PID        int      `json:"pid"`
	GoVersion  string   `json:"go_version"`
	Executable string   `json:"executable"`
	Args       []string `json:"args"`
	Settled    bool     `json:"settled"`
	SettleMS   int64    `json:"settle_ms"`
	Depth      int      `json:"depth"`
	Function   string   `json:"function"`
	Goroutines []truth  `json:"goroutines"`
	// Loopers: each looper's goid and the n its main.loop frame holds.
	Loopers []looperTruth `json:"loopers"`
	// Wide: the goroutine in main.wide (with -wide) and its a and b.
	Wide *wideTruth `json:"wide,omitempty"`
}

type wideTruth struct {
	Goid   int64          `json:"goid"`
	Values map[string]any `json:"values"`
}

type bag struct {
	S []string
	T []string
	U []string
}

//go:noinline
func wide(a []string, p *bag, ready chan<- int64) int {
	ready <- goid()
	<-block
	wideSink = a // every word of a live across the receive
	return len(a) + len(p.S) + len(p.T) + len(p.U)
}

var wideSink []string

type looper struct {
	wake chan struct{}
	done chan int // n after a wake, before it waits again
	goid int64
	n    int
}

// counter is a looper's count: on the heap, so that its frame's pointer to it has a
// stack location at the receive (a loop-carried int has none there).
type counter struct {
	N int
}

//go:noinline
func loop(st *counter, wake <-chan struct{}, done chan<- int) int {
	for {
		<-wake
		st.N += 1000
		sink += growStack()
		done <- st.N
	}
}

var sink uint64

//go:noinline
func growStack() uint64 {
	var pad [32 << 10]byte
	for i := range pad {
		pad[i] = byte(i)
	}
	var sum uint64
	for _, b := range pad {
		sum += uint64(b)
	}
	return sum
}

//go:noinline
func deep(n int, id int, m map[string]int, ch chan int, s string, p *item, ready chan<- int64) int {
	var r int
	if n > 0 {
		r = deep(n-1, id, m, ch, s, p, ready)
	} else {
		r = park(ready)
	}
	return r + n + id + len(m) + len(ch) + len(s) + int(s[0]) + p.N
}

//go:noinline
func park(ready chan<- int64) int {
	ready <- goid()
	<-block
	return 0
}

func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseInt(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

func (h *holder) values() map[string]any {
	m := map[string]any{}
	for k, v := range h.m {
		m[k] = v
	}
	return map[string]any{
		"id": h.id,
		"m":  m,
		"ch": chanView{Len: len(h.ch), Cap: cap(h.ch)},
		"s":  h.s,
		"p":  map[string]any{"Name": h.p.Name, "N": h.p.N},
	}
}

// settled reports whether count goroutines are parked in a receive inside main.deep,
// loopers inside main.loop and wides inside main.wide.
func settled(count, loopers, wides int) bool {
	buf := make([]byte, 64<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	parked, looping, wide := 0, 0, 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("[chan receive")) {
			continue
		}
		if bytes.Contains(g, []byte("main.deep(")) {
			parked++
		}
		if bytes.Contains(g, []byte("main.loop(")) {
			looping++
		}
		if bytes.Contains(g, []byte("main.wide(")) {
			wide++
		}
	}
	return parked == count && looping == loopers && wide == wides
}

func main() {
	goroutines := flag.Int("goroutines", 1000, "goroutines parked in main.deep")
	depth := flag.Int("depth", 11, "main.deep frames per goroutine")
	loopers := flag.Int("loopers", 0, "goroutines waiting in main.loop, woken on SIGUSR1")
	withWide := flag.Bool("wide", false, "one goroutine waiting in main.wide(a, p)")
	moved := flag.String("moved", "", "write the report after SIGUSR1's change here")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
	settleTimeout := flag.Duration("settle-timeout", 60*time.Second, "give up waiting after this")
	flag.Parse()
	if *depth < 1 {
		fmt.Fprintln(os.Stderr, "deepfixture: -depth must be at least 1")
		os.Exit(2)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)

	start := time.Now()
	holders := make([]*holder, *goroutines)
	goids := make([]int64, *goroutines)
	for i := range holders {
		id := i + 1
		h := &holder{
			id: id,
			m:  map[string]int{"a": id, "b": 2 * id},
			ch: make(chan int, 4),
			s:  "g" + strconv.Itoa(id),
		}
		h.p = &item{Name: h.s, N: 7 * id}
		h.ch <- id
		holders[i] = h
		ready := make(chan int64, 1)
		go deep(*depth-1, h.id, h.m, h.ch, h.s, h.p, ready)
		goids[i] = <-ready
	}
	loops := make([]*looper, *loopers)
	for i := range loops {
		l := &looper{wake: make(chan struct{}), done: make(chan int), n: i + 1}
		loops[i] = l
		ready := make(chan int64)
		go func() {
			ready <- goid()
			loop(&counter{N: l.n}, l.wake, l.done)
		}()
		l.goid = <-ready
	}
	var wideT *wideTruth
	if *withWide {
		a, b, c, d := make([]string, 32), make([]string, 32), make([]string, 32), make([]string, 32)
		for i := range a {
			a[i] = fmt.Sprintf("a%02d-%s", i, strconv.Itoa(i*i))
			b[i] = fmt.Sprintf("b%02d-%s", i, strconv.Itoa(i*i*i))
			c[i] = fmt.Sprintf("c%02d-%s", i, strconv.Itoa(i*7))
			d[i] = fmt.Sprintf("d%02d-%s", i, strconv.Itoa(i*11))
		}
		ready := make(chan int64, 1)
		go wide(a, &bag{S: b, T: c, U: d}, ready)
		p := map[string]any{"S": b, "T": c, "U": d}
		wideT = &wideTruth{Goid: <-ready, Values: map[string]any{"a": a, "p": p}}
	}
	wideCount := 0
	if *withWide {
		wideCount = 1
	}
	wait := func() bool {
		deadline := time.Now().Add(*settleTimeout)
		ok := settled(*goroutines, *loopers, wideCount)
		for !ok && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			ok = settled(*goroutines, *loopers, wideCount)
		}
		return ok
	}
	ok := wait()
	ns := make([]int, *depth)
	for i := range ns {
		ns[i] = i
	}
	build := func() report {
		exe, _ := os.Executable()
		r := report{
			Schema: 1, Program: "deepfixture", PID: os.Getpid(), GoVersion: runtime.Version(),
			Executable: exe, Args: os.Args[1:], Settled: ok,
			SettleMS: time.Since(start).Milliseconds(), Depth: *depth, Function: "main.deep",
		}
		for i, h := range holders {
			r.Goroutines = append(r.Goroutines, truth{Goid: goids[i], ID: h.id, Ns: ns, Values: h.values()})
		}
		r.Wide = wideT
		r.Loopers = []looperTruth{}
		for _, l := range loops {
			r.Loopers = append(r.Loopers, looperTruth{Goid: l.goid, N: l.n})
		}
		return r
	}
	line, err := json.Marshal(build())
	if err != nil {
		panic(err)
	}
	fmt.Printf("READY %s\n", line)

	go func() {
		<-usr1
		signal.Stop(usr1)
		// The deep goroutines stay parked: only their heap changes.
		for _, h := range holders {
			h.p.N += 1000
			h.m["b"] += 1000
			h.ch <- -h.id
		}
		for _, l := range loops {
			l.wake <- struct{}{}
			l.n = <-l.done
		}
		ok = wait()
		if *moved == "" {
			return
		}
		data, err := json.Marshal(build())
		if err != nil {
			panic(err)
		}
		if err := os.WriteFile(*moved+".tmp", data, 0o644); err != nil {
			panic(err)
		}
		if err := os.Rename(*moved+".tmp", *moved); err != nil {
			panic(err)
		}
	}()
	if *lifetime > 0 {
		time.Sleep(*lifetime)
		return
	}
	select {}
}
