package main

// The goroutine bodies. Every function a test expects to find on a stack is marked
// //go:noinline, except inlinedHelper, which must be inlined (check with
// `go build -gcflags=-m`: "can inline inlinedHelper" and "inlining call to inlinedHelper").

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// sink keeps results alive so the compiler cannot drop the work that produces them.
var sink atomic.Uint64

// keep holds on to everything the parked goroutines block on, for the fixture's lifetime.
var keep []any

// never is closed by nobody: everything that receives from it parks forever.
var never = make(chan int)

// ---- chan receive -------------------------------------------------------------------

//go:noinline
func parkedRecv(ch <-chan int) int {
	return <-ch
}

func startParked(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			sink.Add(uint64(parkedRecv(never)))
		}()
	}
}

// ---- select ---------------------------------------------------------------------------

//go:noinline
func parkedSelect(a, b <-chan int) int {
	select {
	case v := <-a:
		return v
	case v := <-b:
		return v + 1
	}
}

func startSelect(g *group, n int) {
	a, b := make(chan int), make(chan int)
	keep = append(keep, a, b)
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			sink.Add(uint64(parkedSelect(a, b)))
		}()
	}
}

// ---- sleep -----------------------------------------------------------------------------

//go:noinline
func sleeper(d time.Duration) {
	for {
		time.Sleep(d)
	}
}

func startSleepers(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			sleeper(time.Hour)
		}()
	}
}

// ---- sync.Mutex ------------------------------------------------------------------------

//go:noinline
func mutexHolder(mu *sync.Mutex, locked chan<- struct{}, hold <-chan int) int {
	mu.Lock()
	close(locked)
	v := <-hold // parks holding mu, forever
	mu.Unlock()
	return v
}

//go:noinline
func mutexWaiter(mu *sync.Mutex) {
	mu.Lock()
	sink.Add(1)
	mu.Unlock()
}

func startMutex(holder, waiters *group, n int) {
	mu := new(sync.Mutex)
	locked := make(chan struct{})
	keep = append(keep, mu)
	go func() {
		holder.register(nil)
		sink.Add(uint64(mutexHolder(mu, locked, never)))
	}()
	<-locked
	for i := 0; i < n; i++ {
		go func() {
			waiters.register(nil)
			mutexWaiter(mu)
		}()
	}
}

// ---- sync.WaitGroup --------------------------------------------------------------------

//go:noinline
func wgWaiter(wg *sync.WaitGroup) {
	wg.Wait()
	sink.Add(1)
}

func startWaitGroup(g *group, n int) {
	wg := new(sync.WaitGroup)
	wg.Add(1) // never Done
	keep = append(keep, wg)
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			wgWaiter(wg)
		}()
	}
}

// ---- IO wait (TCP read that never receives data) ---------------------------------------

//go:noinline
func netReader(c net.Conn) int {
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return -1
	}
	return n
}

func startNet(g *group, n int) error {
	if n == 0 {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	keep = append(keep, ln)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		peer, err := ln.Accept() // kept open and silent
		if err != nil {
			return err
		}
		keep = append(keep, c, peer)
		go func() {
			g.register(nil)
			sink.Add(uint64(netReader(c)))
		}()
	}
	return nil
}

// ---- sync.Cond ---------------------------------------------------------------------------

//go:noinline
func condWaiter(c *sync.Cond) {
	c.L.Lock()
	for {
		c.Wait() // nobody signals
	}
}

func startCond(g *group, n int) {
	c := sync.NewCond(new(sync.Mutex))
	keep = append(keep, c)
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			condWaiter(c)
		}()
	}
}

// ---- running on a CPU ------------------------------------------------------------------

//go:noinline
func spinStep(x uint64) uint64 {
	return x*6364136223846793005 + 1442695040888963407
}

//go:noinline
func spinner(seed uint64) {
	x := seed
	for {
		x = spinStep(x)
		if x == 0 {
			sink.Add(1)
		}
	}
}

func startSpinners(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			spinner(uint64(i) + 1)
		}()
	}
}

// ---- blocking syscalls -------------------------------------------------------------------

// syscaller reads a blocking pipe fd with a raw read(2): the goroutine sits in the
// syscall (status _Gsyscall) and holds its OS thread, unlike os.Pipe, whose reads go
// through the netpoller.
//
//go:noinline
func syscaller(fd int) int {
	var b [1]byte
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1)
		if errno == syscall.EINTR {
			continue
		}
		return int(n)
	}
}

func startSyscallers(g *group, n int) error {
	for i := 0; i < n; i++ {
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil { // pipe2(p, 0): blocking
			return err
		}
		keep = append(keep, p) // both ends stay open: read never sees EOF
		go func() {
			g.register(nil)
			sink.Add(uint64(syscaller(p[0])))
		}()
	}
	return nil
}

// eintrFile, when set (-eintr FILE), gets a line each time a nanosleeper's sleep ends
// with EINTR: a signal handler ran on its thread in the middle of the call. A ptrace
// stop alone restarts the call unseen, so a debugger that leaves the program unchanged
// leaves the file absent.
var eintrFile string

//go:noinline
func nanosleeper(sec int64) {
	for {
		ts := syscall.Timespec{Sec: sec}
		if err := syscall.Nanosleep(&ts, nil); err == syscall.EINTR && eintrFile != "" {
			f, ferr := os.OpenFile(eintrFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if ferr == nil {
				fmt.Fprintf(f, "EINTR in main.nanosleeper at %s\n", time.Now().Format(time.RFC3339Nano))
				f.Close()
			}
		}
	}
}

func startNanosleepers(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			nanosleeper(3600)
		}()
	}
}

// ---- deep recursion ----------------------------------------------------------------------

// recurse puts exactly depth frames of main.recurse on the stack, then parks in the
// innermost one.
//
//go:noinline
func recurse(depth int, ch <-chan int) int {
	if depth <= 1 {
		return <-ch
	}
	return recurse(depth-1, ch) + 1
}

func startRecurse(g *group, n, depth int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			sink.Add(uint64(recurse(depth, never)))
		}()
	}
}

// ---- inlining ----------------------------------------------------------------------------

//go:noinline
func inlinedPark(ch <-chan int) int {
	return <-ch
}

// inlinedHelper is small enough to be inlined into inlinedOuter: the stack has a
// physical frame for inlinedOuter whose PC maps to an inlined call of inlinedHelper.
func inlinedHelper(ch <-chan int) int {
	return inlinedPark(ch)*2 + 1
}

//go:noinline
func inlinedOuter(ch <-chan int) int {
	v := inlinedHelper(ch)
	return v + 3
}

func startInlined(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			sink.Add(uint64(inlinedOuter(never)))
		}()
	}
}

// ---- closures, generics, methods ---------------------------------------------------------

func startClosures(g *group, n int) {
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("closure-%d", i)
		go func() {
			g.register(nil)
			v := <-never
			sink.Add(uint64(len(name) + v))
		}()
	}
}

//go:noinline
func genericWait[T any](ch <-chan T) T {
	return <-ch
}

func startGeneric(g *group, n int) {
	ints := make(chan int)
	strs := make(chan string)
	keep = append(keep, ints, strs)
	for i := 0; i < n; i++ {
		go func() {
			g.register(nil)
			if i%2 == 0 {
				sink.Add(uint64(genericWait(ints)))
			} else {
				sink.Add(uint64(len(genericWait(strs))))
			}
		}()
	}
}

type server struct {
	name   string
	reqs   chan int
	served int
	g      *group
}

//go:noinline
func (s *server) serve() {
	s.g.register(nil)
	for r := range s.reqs {
		s.served += r
	}
}

func startServers(g *group, n int) {
	for i := 0; i < n; i++ {
		s := &server{name: fmt.Sprintf("server-%d", i), reqs: make(chan int), g: g}
		keep = append(keep, s)
		go s.serve()
	}
}

// ---- pprof labels ------------------------------------------------------------------------

//go:noinline
func labeled(ch <-chan int) int {
	return <-ch
}

// LabelWorkerBase is the "worker" label of the first labeled goroutine.
const LabelWorkerBase = 7

func startLabeled(g *group, n int) {
	for i := 0; i < n; i++ {
		go func() {
			worker := strconv.Itoa(LabelWorkerBase + i)
			labels := map[string]string{"worker": worker, "role": "labeled"}
			g.register(labels)
			pprof.Do(context.Background(), pprof.Labels("worker", worker, "role", "labeled"),
				func(context.Context) {
					sink.Add(uint64(labeled(never)))
				})
		}()
	}
}

// ---- compiler-made wrappers ----------------------------------------------------------------

// waiter is called through an interface, so that the call goes through the method
// wrappers the compiler makes (funcID wrapper in the pclntab), which Go's default
// traceback elides: the `<autogenerated>` pointer-receiver wrapper of a value method,
// and the instantiation of a generic type's method that passes the dictionary on to
// its shaped body.
type waiter interface {
	wait(ch <-chan int) int
}

type valueWaiter struct{ n int }

//go:noinline
func (v valueWaiter) wait(ch <-chan int) int {
	return <-ch + v.n
}

type box[T any] struct{ v T }

//go:noinline
func (b *box[T]) wait(ch <-chan int) int {
	return <-ch
}

// waitVia takes the interface as a parameter, so the call cannot be devirtualized.
//
//go:noinline
func waitVia(w waiter, ch <-chan int) int {
	return w.wait(ch)
}

func startPtrWrapper(g *group, n int) {
	for i := 0; i < n; i++ {
		w := &valueWaiter{n: i}
		keep = append(keep, w)
		go func() {
			g.register(nil)
			sink.Add(uint64(waitVia(w, never)))
		}()
	}
}

func startDictWrapper(g *group, n int) {
	for i := 0; i < n; i++ {
		w := &box[int]{v: i}
		keep = append(keep, w)
		go func() {
			g.register(nil)
			sink.Add(uint64(waitVia(w, never)))
		}()
	}
}
