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
// It prints one line `READY {json}` on stdout once every goroutine shows
// `[chan receive]` with main.deep on its stack in runtime.Stack(all=true). On the first
// SIGUSR1 it changes every goroutine's heap values (p.N, m["b"] and one more element in
// ch) without any deep goroutine running, and writes the same report with the new
// values to -moved FILE (FILE.tmp, then a rename). It runs until killed, or until
// -lifetime has passed.
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

// settled reports whether count goroutines are parked in a receive inside main.deep.
func settled(count int) bool {
	buf := make([]byte, 64<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	parked := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("[chan receive")) && bytes.Contains(g, []byte("main.deep(")) {
			parked++
		}
	}
	return parked == count
}

func main() {
	goroutines := flag.Int("goroutines", 1000, "goroutines parked in main.deep")
	depth := flag.Int("depth", 11, "main.deep frames per goroutine")
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
	deadline := time.Now().Add(*settleTimeout)
	ok := settled(*goroutines)
	for !ok && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		ok = settled(*goroutines)
	}
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
