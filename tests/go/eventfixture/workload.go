package main

// The functions a trace probes. Each is //go:noinline unless it is meant to be inlined
// (small), and none records anything itself: the callers in round.go measure and
// record the truth, so what a probe sees is only the function's own work.
//
// Lines with a LINE mark comment are reported in READY (main.go) for line probes.

import (
	"strconv"
	"time"
	"unsafe"
)

// User and Request are the struct pointer argument of handle.
type User struct {
	Name string
}

type Request struct {
	ID        int64
	AccountID int64
	User      *User
}

// codeError is the error handle returns for odd n.
type codeError struct {
	Code int
}

func (e *codeError) Error() string { return "code " + strconv.Itoa(e.Code) }

// handleSleep is how long handle sleeps for a request id.
func handleSleep(id int64) time.Duration {
	return time.Duration(id%4+1) * time.Millisecond
}

// handle takes arguments of several kinds (a struct pointer, a string, an int, a
// slice), sleeps a known time and returns (int, error): (n*10 + len(tags), nil) for
// even n, (len(name), &codeError{n}) for odd n.
//
//go:noinline
func handle(req *Request, name string, n int, tags []string) (int, error) {
	time.Sleep(handleSleep(req.ID))
	if n%2 != 0 {
		return len(name), &codeError{Code: n}
	}
	return n*10 + len(tags), nil
}

// recurse calls itself down to n == 1, which sleeps recurseLeafSleep; every level
// then sleeps recurseLevelSleep after its inner call returned, so a level's call
// lasts longer than the call it made.
//
//go:noinline
func recurse(n int) int {
	if n <= 1 {
		time.Sleep(recurseLeafSleep)
		return 1
	}
	t0 := time.Now()
	r := recurse(n-1) + 1
	recurseMeasured[n-1] = since(t0) // the truth, measured around the inner call
	time.Sleep(recurseLevelSleep)
	return r
}

const (
	recurseLeafSleep  = time.Millisecond
	recurseLevelSleep = 100 * time.Microsecond
)

// mayPanic sleeps, then panics for odd n (its caller recovers) and returns n for even
// n. A panicking call never reaches a return instruction of mayPanic.
//
//go:noinline
func mayPanic(n int) int {
	if n%2 != 0 {
		time.Sleep(panicSleep)
		panic(&codeError{Code: n})
	}
	time.Sleep(returnSleep)
	return n
}

const (
	panicSleep  = 5 * time.Millisecond
	returnSleep = time.Millisecond
)

// callRecover recovers mayPanic's panic; it reports whether there was one.
//
//go:noinline
func callRecover(n int) (panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	mayPanic(n)
	return false
}

// growStack is in flight while its goroutine's stack grows: deep's big frames
// overflow a new goroutine's stack, so the runtime copies the whole stack (growStack's
// frame included) to a larger one. It reports whether its own frame moved.
//
//go:noinline
func growStack(levels int) bool {
	var marker int
	before := uintptr(unsafe.Pointer(&marker))
	deep(levels)
	time.Sleep(growSleep)
	after := uintptr(unsafe.Pointer(&marker))
	return before != after
}

const growSleep = 2 * time.Millisecond

// deep recurses with a 1 KiB frame per level.
//
//go:noinline
func deep(n int) int {
	var buf [1024]byte
	buf[n%len(buf)] = byte(n)
	if n <= 0 {
		return int(buf[0])
	}
	return deep(n-1) + int(buf[n%len(buf)])
}

// sumOf is generic: int and string have different GC shapes, so the binary holds two
// instantiations, main.sumOf[go.shape.int] and main.sumOf[go.shape.string].
//
//go:noinline
func sumOf[T int | string](xs []T) T {
	var total T
	for _, x := range xs {
		total += x
	}
	time.Sleep(genericSleep)
	return total
}

const genericSleep = 500 * time.Microsecond

// small is inlined into callSmall (no //go:noinline, and cheap enough for the
// inliner), so the binary has no function main.small.
func small(x int) int {
	if x < 0 {
		return -x
	}
	return x*3 + 1
}

// callSmall calls the inlined small n times.
//
//go:noinline
func callSmall(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		total += small(i - n/2)
	}
	return total
}

// loopLines runs the marked line n times. The line's only code is a call of step,
// so the line table marks one statement start for it.
//
//go:noinline
func loopLines(n int) int {
	acc := 0
	for i := 0; i < n; i++ {
		acc ^= step(i) // LINE:loop
	}
	// LINE:nocode (a comment: no code on this line)
	return acc
}

//go:noinline
func step(i int) int {
	return i*2654435761 + 1
}

// tick is what the -tick background goroutine calls, forever.
//
//go:noinline
func tick(i int) int {
	return i + 1
}
