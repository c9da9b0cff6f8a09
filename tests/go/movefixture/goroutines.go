package main

// The goroutine bodies. Every function a test expects to find on a stack is marked
// //go:noinline.

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// sink keeps results alive so the compiler cannot drop the work that produces them.
var sink atomic.Uint64

// never is closed by nobody: everything that receives from it parks forever.
var never = make(chan int)

// neverA and neverB are the never-ready channels of the movers' final select.
var neverA, neverB = make(chan int), make(chan int)

// group is one kind of goroutine; its members record their own goids.
type group struct {
	mu      sync.Mutex
	ids     []int64
	started sync.WaitGroup
}

func newGroup(n int) *group {
	g := &group{ids: []int64{}}
	g.started.Add(n)
	return g
}

// register records the calling goroutine's id. Called from inside the goroutine,
// before it parks.
func (g *group) register() {
	id := goid()
	g.mu.Lock()
	g.ids = append(g.ids, id)
	g.mu.Unlock()
	g.started.Done()
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

// ---- stayers: parked on a receive from the start to the end ------------------------

//go:noinline
func stayer(ch <-chan int) int {
	return <-ch
}

func startStayers(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register()
			sink.Add(uint64(stayer(never)))
		}()
	}
}

// ---- movers: a receive until the move, then a select for good ------------------------

//go:noinline
func beforeMove(release <-chan struct{}) {
	<-release
}

// afterMove first grows the goroutine's stack past 32 KiB, so the runtime copies it
// to a new, larger stack (copystack): what a walk before the move read of the stack
// is stale too. Then it parks for good on a select of two never-ready channels.
//
//go:noinline
func afterMove(a, b <-chan int) int {
	sink.Add(growStack())
	select {
	case v := <-a:
		return v
	case v := <-b:
		return v + 1
	}
}

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

func startMovers(g *group, n int, release <-chan struct{}) {
	for i := 0; i < n; i++ {
		go func() {
			g.register()
			beforeMove(release)
			sink.Add(uint64(afterMove(neverA, neverB)))
		}()
	}
}

// ---- leavers: a receive until the move, then they return -----------------------------

//go:noinline
func leaver(release <-chan struct{}) {
	<-release
}

func startLeavers(g *group, n int, release <-chan struct{}) {
	for i := 0; i < n; i++ {
		go func() {
			g.register()
			leaver(release)
		}()
	}
}

// ---- newcomers: started at the move, parked on a receive ------------------------------

//go:noinline
func newcomer(ch <-chan int) int {
	return <-ch
}

func startNewcomers(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register()
			sink.Add(uint64(newcomer(never)))
		}()
	}
}
