package main

// The holders: each goroutine parks inside a function of its own whose parameters
// and locals hold values of every kind. Every holder is //go:noinline, takes its
// values from its caller (so the compiler cannot fold them into constants), records
// the truth, parks on a receive from `park`, and afterwards passes every value to
// keep, so each one is live across the park and DWARF gives it a stack location at
// the return address of the receive.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

type Color int

type User struct {
	Name string
	Age  int
}

type Request struct {
	ID    string
	User  *User
	Start time.Time
	Tags  []string
	Meta  map[string]string
}

type Node struct {
	Val  int
	Next *Node
}

type Base struct {
	Kind    string
	Version int
}

// Settings has an embedded struct and unexported fields.
type Settings struct {
	Base
	Name    string
	limit   int
	enabled bool
	ratio   float64
}

// Labels and IDs are named map and slice types.
type Labels map[string]string

type IDs []int

type Point struct {
	X, Y int
}

type MyErr struct {
	Code int
}

func (e *MyErr) Error() string { return "myerr " + strconv.Itoa(e.Code) }

// Temp is a fmt.Stringer held by value.
type Temp float64

func (t Temp) String() string { return strconv.FormatFloat(float64(t), 'f', 1, 64) + "C" }

type Server struct {
	Name    string
	handled int
}

// park is never sent to nor closed: every holder blocks on it until the program exits.
var park = make(chan struct{})

// keep uses a value after the park, so the compiler keeps it alive across it.
//
//go:noinline
func keep[T any](v T) {
	keepSink.Lock()
	keepCount++
	keepSink.Unlock()
	_ = v
}

var (
	keepSink  sync.Mutex
	keepCount int
)

func addrOf(p unsafe.Pointer) string { return fmt.Sprintf("%#x", uintptr(p)) }

// ---- scalars (two goroutines, different values) ---------------------------------------

//go:noinline
func holdScalars(label string, b bool, i8 int8, i16 int16, i32 int32, i64 int64,
	u8 uint8, u16 uint16, u32 uint32, u64 uint64, up uintptr,
	f32 float32, f64 float64, c128 complex128, color Color, d time.Duration) {
	h := begin("scalars/" + label)
	put(h, "label", label)
	put(h, "b", b)
	put(h, "i8", i8)
	put(h, "i16", i16)
	put(h, "i32", i32)
	put(h, "i64", i64)
	put(h, "u8", u8)
	put(h, "u16", u16)
	put(h, "u32", u32)
	put(h, "u64", u64)
	put(h, "up", up)
	put(h, "f32", f32)
	put(h, "f64", f64)
	put(h, "c128", c128)
	put(h, "color", color)
	put(h, "d", d)
	h.done()
	<-park
	keep(label)
	keep(b)
	keep(i8)
	keep(i16)
	keep(i32)
	keep(i64)
	keep(u8)
	keep(u16)
	keep(u32)
	keep(u64)
	keep(up)
	keep(f32)
	keep(f64)
	keep(c128)
	keep(color)
	keep(d)
}

// ---- strings, bytes and times ---------------------------------------------------------

//go:noinline
func holdStrings(short, empty, long, invalid string, raw []byte) {
	h := begin("strings")
	words := strings.Fields(short) // a local computed at run time
	put(h, "short", short)
	put(h, "empty", empty)
	put(h, "long", long)
	put(h, "invalid", invalid)
	put(h, "raw", raw)
	put(h, "words", words)
	// Taking the address of a slice local keeps its DWARF location (an address-taken
	// int local or parameter would lose it: see tests/go/README.md).
	h.addresses["words"] = addrOf(unsafe.Pointer(&words))
	h.done()
	<-park
	keep(short)
	keep(empty)
	keep(long)
	keep(invalid)
	keep(raw)
	keep(words)
}

// holdTimes takes its time.Time values as register parameters and uses them before
// the park, so the compiler spills them and describes the slots. (Passed on the stack,
// or used only by generic calls, such parameters get no location at the park; a small
// struct LOCAL gets no DWARF entry at all.)
//
//go:noinline
func holdTimes(utc, zoned time.Time) {
	h := begin("times")
	seconds := utc.Unix() + zoned.Unix()
	put(h, "utc", utc)
	put(h, "zoned", zoned)
	put(h, "seconds", seconds)
	h.done()
	<-park
	keep(utc)
	keep(zoned)
	keep(seconds)
}

// ---- pointers -------------------------------------------------------------------------

//go:noinline
func holdPointers(req *Request, nilReq *Request, pp **User, list *Node, cycle *Node) {
	h := begin("pointers")
	userName := nameOf(req) // locals computed at run time, by calls the compiler cannot redo
	tagCount := countTags(req)
	put(h, "req", req)
	put(h, "nilReq", nilReq)
	put(h, "pp", pp)
	put(h, "list", list)
	put(h, "cycle", cycle)
	put(h, "userName", userName)
	put(h, "tagCount", tagCount)
	h.done()
	<-park
	keep(req)
	keep(nilReq)
	keep(pp)
	keep(list)
	keep(cycle)
	keep(userName)
	keep(tagCount)
}

// ---- structs, arrays, slices ----------------------------------------------------------

//go:noinline
func holdAggregates(arr [4]int, points [2]Point, ints []int, bigInts []int,
	strs []string, users []*User, bs []byte, nilSlice []int, emptySlice []int, ids IDs) {
	h := begin("aggregates")
	settings := makeSettings()
	total := 0
	for _, n := range ints {
		total += n
	}
	put(h, "settings", settings)
	put(h, "arr", arr)
	put(h, "points", points)
	put(h, "ints", ints)
	put(h, "bigInts", bigInts)
	put(h, "strs", strs)
	put(h, "users", users)
	put(h, "bs", bs)
	put(h, "nilSlice", nilSlice)
	put(h, "emptySlice", emptySlice)
	put(h, "ids", ids)
	put(h, "total", total)
	h.done()
	<-park
	keep(settings)
	keep(arr)
	keep(points)
	keep(ints)
	keep(bigInts)
	keep(strs)
	keep(users)
	keep(bs)
	keep(nilSlice)
	keep(emptySlice)
	keep(ids)
	keep(total)
}

// ---- maps -----------------------------------------------------------------------------

//go:noinline
func holdMaps(counts map[string]int, names map[int]string, users map[string]*User,
	bigMap map[int]int, emptyMap map[string]int, nilMap map[string]int, labels Labels) {
	h := begin("maps")
	put(h, "counts", counts)
	put(h, "names", names)
	put(h, "users", users)
	put(h, "bigMap", bigMap)
	put(h, "emptyMap", emptyMap)
	put(h, "nilMap", nilMap)
	put(h, "labels", labels)
	h.done()
	<-park
	keep(counts)
	keep(names)
	keep(users)
	keep(bigMap)
	keep(emptyMap)
	keep(nilMap)
	keep(labels)
}

// ---- interfaces -----------------------------------------------------------------------

//go:noinline
func holdInterfaces(anyInt, anyStr, anyPtr, anyStruct, anyNil any,
	errBoom, errCustom, errNil error, stringer fmt.Stringer) {
	h := begin("interfaces")
	put(h, "anyInt", anyInt)
	put(h, "anyStr", anyStr)
	put(h, "anyPtr", anyPtr)
	put(h, "anyStruct", anyStruct)
	put(h, "anyNil", anyNil)
	put(h, "errBoom", errBoom)
	put(h, "errCustom", errCustom)
	put(h, "errNil", errNil)
	put(h, "stringer", stringer)
	h.done()
	<-park
	keep(anyInt)
	keep(anyStr)
	keep(anyPtr)
	keep(anyStruct)
	keep(anyNil)
	keep(errBoom)
	keep(errCustom)
	keep(errNil)
	keep(stringer)
}

// ---- channels and funcs ---------------------------------------------------------------

//go:noinline
func holdChans(buffered chan int, closed chan int, nilChan chan int, fn func() int, nilFn func() int) {
	h := begin("chans")
	put(h, "buffered", buffered)
	put(h, "closed", closed)
	put(h, "nilChan", nilChan)
	put(h, "fn", fn)
	put(h, "nilFn", nilFn)
	h.done()
	<-park
	keep(buffered)
	keep(closed)
	keep(nilChan)
	keep(fn)
	keep(nilFn)
}

// ---- generic, method, closure ---------------------------------------------------------

//go:noinline
func holdGeneric[T any](v T) {
	h := begin("generic/" + fmt.Sprintf("%T", v))
	put(h, "v", v)
	h.done()
	<-park
	keep(v)
}

//go:noinline
func (s *Server) handle(req *Request) {
	h := begin("method")
	put(h, "s", s)
	put(h, "req", req)
	h.done()
	<-park
	s.handled++
	keep(s)
	keep(req)
}

// startClosure parks a closure that captures count and name (by value) and hits (by
// reference: it is assigned after the capture).
//
//go:noinline
func startClosure(count int, name string) {
	hits := 0
	f := func() {
		h := begin("closure")
		put(h, "count", count)
		put(h, "name", name)
		put(h, "hits", hits)
		h.done()
		<-park
		hits++
		keep(count)
		keep(name)
	}
	hits = count * 2
	go f()
}

// ---- nested holders: holdInner parks three frames under holdOuter ----------------------

//go:noinline
func holdOuter(outerID int, outerName string) {
	h := begin("outer")
	h.innermost = false
	put(h, "outerID", outerID)
	put(h, "outerName", outerName)
	h.done()
	nestMid1(outerID + 1)
	keep(outerID)
	keep(outerName)
}

//go:noinline
func nestMid1(n int) { nestMid2(n + 1) }

//go:noinline
func nestMid2(n int) { holdInner(n+1, "inner-"+strconv.Itoa(n)) }

//go:noinline
func holdInner(innerID int, innerNote string) {
	h := begin("inner")
	put(h, "innerID", innerID)
	put(h, "innerNote", innerNote)
	h.done()
	<-park
	keep(innerID)
	keep(innerNote)
}

// ---- shadowing: an inner block's x hides the parameter x at the park ------------------

//go:noinline
func holdShadow(x int, y int) {
	h := begin("shadow")
	h.shadowed["x"] = mustEncode(x)
	put(h, "y", y)
	if y > 0 {
		x := strconv.Itoa(x*10) + "!"
		put(h, "x", x)
		h.done()
		<-park
		keep(x)
	}
	keep(x)
	keep(y)
}

func mustEncode[T any](v T) any {
	out, _ := encodeVar(v)
	return out
}

// ---- values ---------------------------------------------------------------------------

// Fixed times: one in UTC, one in a fixed non-UTC zone (the report shows both in UTC).
var (
	utcTime   = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	zonedTime = time.Date(2025, 6, 7, 8, 9, 10, 500, time.FixedZone("X", 5*3600+30*60))
)

func startHolders() int {
	n := 0
	run := func(f func()) {
		n++
		go f()
	}
	run(func() {
		holdScalars("a", true, -8, -1600, -320000, -6400000000, 8, 1600, 320000, 6400000000,
			0xdeadbeef, 1.5, 3.25, complex(1.5, -2.5), Color(3), 1500*time.Millisecond)
	})
	run(func() {
		holdScalars("b", false, math.MinInt8, math.MaxInt16, math.MinInt32, math.MaxInt64,
			math.MaxUint8, math.MaxUint16, math.MaxUint32, math.MaxUint64, 0, float32(math.Inf(-1)),
			math.NaN(), complex(math.Inf(1), 0.125), Color(-1), -90*time.Minute)
	})
	long := strings.Repeat("0123456789abcdefghij", 100) // 2000 bytes
	run(func() {
		holdStrings("hello gopher", "", long, "ok\xffok", []byte("bytes\x00\xff"))
	})
	run(func() { holdTimes(fixedUTC(), fixedZoned()) })

	ann := &User{Name: "ann", Age: 41}
	req := &Request{
		ID: "req-42", User: ann, Start: utcTime,
		Tags: []string{"a", "bb", "ccc"},
		Meta: map[string]string{"k": "v", "trace": "abc123"},
	}
	var list *Node
	for i := 20; i >= 1; i-- {
		list = &Node{Val: i, Next: list}
	}
	cycle := &Node{Val: 7}
	cycle.Next = cycle
	run(func() { holdPointers(req, nil, &ann, list, cycle) })

	bigInts := make([]int, 1000)
	for i := range bigInts {
		bigInts[i] = i * i
	}
	bob := &User{Name: "bob", Age: 7}
	run(func() {
		holdAggregates([4]int{1, 2, 3, 4}, [2]Point{{1, 2}, {-3, -4}}, []int{5, 6, 7},
			bigInts, []string{"x", "yy", ""}, []*User{ann, nil, bob}, []byte{0, 1, 254, 255},
			nil, []int{}, IDs{11, 22})
	})

	bigMap := make(map[int]int, 1000)
	for i := 0; i < 1000; i++ {
		bigMap[i] = -i
	}
	run(func() {
		holdMaps(map[string]int{"one": 1, "two": 2, "three": 3}, map[int]string{10: "ten", -1: "minus", 2: "two"},
			map[string]*User{"ann": ann, "none": nil}, bigMap, map[string]int{}, nil,
			Labels{"env": "test"})
	})

	run(func() {
		holdInterfaces(42, "str", ann, User{Name: "val", Age: 1}, nil,
			errors.New("boom"), &MyErr{Code: 7}, nil, Temp(21.5))
	})

	buffered := make(chan int, 8)
	buffered <- 1
	buffered <- 2
	buffered <- 3
	closed := make(chan int, 2)
	closed <- 9
	closeAndRemember(closed)
	run(func() { holdChans(buffered, closed, nil, answer, nil) })

	run(func() { holdGeneric(123) })
	run(func() { holdGeneric("generic string") })
	srv := &Server{Name: "api"}
	run(func() { srv.handle(&Request{ID: "req-7", User: bob, Start: zonedTime, Tags: nil, Meta: nil}) })
	n++
	startClosure(5, "closed-over")
	run(func() { holdOuter(100, "outer") })
	run(func() { holdShadow(4, 9) })
	return n
}

//go:noinline
func answer() int { return 42 }

//go:noinline
func nameOf(r *Request) string { return r.User.Name }

//go:noinline
func countTags(r *Request) int { return len(r.Tags) }

//go:noinline
func fixedUTC() time.Time { return utcTime }

//go:noinline
func fixedZoned() time.Time { return zonedTime }

//go:noinline
func makeSettings() Settings {
	return Settings{Base: Base{Kind: "cfg", Version: 3}, Name: "primary", limit: 10, enabled: true, ratio: 0.75}
}
