// Command snapfixture starts goroutines in every state a snapshot must handle, each
// group knowing its own truth (ids, status, wait reason, expected stack), and prints
// that truth as one line `READY {json}` on stdout once every goroutine is in place.
// It then runs until killed, or until -lifetime has passed.
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

// Group kinds decide when a goroutine counts as "in place".
const (
	kindWaiting = "waiting" // parked: its traceback header must show a wait reason
	kindSyscall = "syscall" // in a blocking syscall: header "syscall"
	kindRunning = "running" // on a CPU (or runnable after a preemption): any header
)

type group struct {
	Name       string   `json:"name"`
	Function   string   `json:"function"`
	Count      int      `json:"count"`
	Status     string   `json:"status"`
	Statuses   []string `json:"statuses"`
	WaitReason string   `json:"wait_reason"`
	Functions  []string `json:"functions"`
	Inlined    []string `json:"inlined"`

	IDs           []int64                      `json:"ids"`
	Labels        map[string]map[string]string `json:"labels,omitempty"`
	RuntimeStates map[string]int               `json:"runtime_states"`
	RuntimeView   []goroutineView              `json:"runtime_view"`

	mu      sync.Mutex
	started sync.WaitGroup
}

type goroutineView struct {
	ID     int64    `json:"id"`
	Header string   `json:"header"`
	State  string   `json:"state"`
	Extras []string `json:"extras"`
	Frames []string `json:"frames"`
	Elided bool     `json:"elided"`
}

type report struct {
	Schema             int      `json:"schema"`
	Program            string   `json:"program"`
	PID                int      `json:"pid"`
	GoVersion          string   `json:"go_version"`
	GOOS               string   `json:"goos"`
	GOARCH             string   `json:"goarch"`
	GOMAXPROCS         int      `json:"gomaxprocs"`
	RecursionDepth     int      `json:"recursion_depth"`
	ExpectedGoroutines int      `json:"expected_goroutines"`
	NumGoroutine       int      `json:"num_goroutine"`
	Settled            bool     `json:"settled"`
	SettleMillis       int64    `json:"settle_ms"`
	ForcedGC           bool     `json:"forced_gc"`
	ReadyUnixNanos     int64    `json:"ready_unix_ns"`
	Executable         string   `json:"executable"`
	Args               []string `json:"args"`
	Groups             []*group `json:"groups"`
	// The runtime's own traceback of every goroutine, taken after settling (and the
	// GCs) with runtime.Stack(all=true): what pprof's debug=2 prints, at the default
	// level (runtime.Stack forces it): no unexported runtime frame, no wrapper.
	// (The system level, every frame, is only printed by a crash: SIGQUIT.)
	Tracebacks []traceback `json:"tracebacks"`
}

// traceback is one goroutine of a runtime.Stack(all=true) dump, every frame with its
// position. A stack of more than 100 frames is printed as its 50 innermost, a line
// "...N frames elided...", and its 50 outermost: Frames holds the printed ones,
// ElidedAt the index in Frames where the N missing ones were.
type traceback struct {
	ID       int64     `json:"id"`
	State    string    `json:"state"`
	Frames   []tbFrame `json:"frames"`
	Elided   int       `json:"elided"`
	ElidedAt int       `json:"elided_at"`
}

type tbFrame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

func newGroup(name, function, status, reason string, n int, functions ...string) *group {
	statuses := []string{status}
	if status == kindRunning {
		statuses = append(statuses, "runnable") // preempted at the instant of the snapshot
	}
	g := &group{
		Name: name, Function: function, Count: n, Status: status, Statuses: statuses,
		WaitReason: reason, Functions: functions, Inlined: []string{},
		IDs: []int64{}, RuntimeStates: map[string]int{}, RuntimeView: []goroutineView{},
	}
	g.started.Add(n)
	return g
}

func (g *group) kind() string { return g.Status }

// register records the calling goroutine's id (and pprof labels, if any). It must be
// called from inside the goroutine, before it parks.
func (g *group) register(labels map[string]string) {
	id := goid()
	g.mu.Lock()
	g.IDs = append(g.IDs, id)
	if labels != nil {
		if g.Labels == nil {
			g.Labels = map[string]map[string]string{}
		}
		g.Labels[strconv.FormatInt(id, 10)] = labels
	}
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

// allStacks is runtime.Stack(all=true), with a buffer grown until everything fits.
func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// parseStacks splits a runtime.Stack(all=true) dump into goroutines by id.
func parseStacks(dump []byte) map[int64]*goroutineView {
	out := map[int64]*goroutineView{}
	var cur *goroutineView
	for _, line := range bytes.Split(dump, []byte("\n")) {
		l := string(line)
		switch {
		case strings.HasPrefix(l, "goroutine "):
			cur = parseHeader(l)
			if cur != nil {
				out[cur.ID] = cur
			}
		case cur == nil || l == "" || strings.HasPrefix(l, "\t"):
		case strings.HasPrefix(l, "created by "):
			// the creator is not a frame of this goroutine
		case strings.HasPrefix(l, "..."):
			cur.Elided = true
		default:
			cur.Frames = append(cur.Frames, funcName(l))
		}
	}
	return out
}

// parseTracebacks reads every goroutine of a runtime.Stack(all=true) dump, frames with
// their positions ("\t/path/file.go:123 +0x1d fp=... sp=... pc=..."). The creator
// ("created by ...") is not a frame.
func parseTracebacks(dump []byte) []traceback {
	var out []traceback
	var cur *traceback
	creator := false
	for _, line := range strings.Split(string(dump), "\n") {
		switch {
		case strings.HasPrefix(line, "goroutine "):
			v := parseHeader(line)
			if v == nil {
				cur = nil
				continue
			}
			out = append(out, traceback{ID: v.ID, State: v.State, Frames: []tbFrame{}})
			cur = &out[len(out)-1]
			creator = false
		case cur == nil || line == "":
		case strings.HasPrefix(line, "\t"):
			if creator || len(cur.Frames) == 0 {
				continue
			}
			pos := strings.Fields(line[1:])[0]
			i := strings.LastIndexByte(pos, ':')
			n, err := strconv.Atoi(pos[i+1:])
			if i < 0 || err != nil {
				panic("cannot parse traceback position " + strconv.Quote(line))
			}
			f := &cur.Frames[len(cur.Frames)-1]
			f.File, f.Line = pos[:i], n
		case strings.HasPrefix(line, "created by "):
			creator = true
		case strings.HasPrefix(line, "..."):
			// "...12 frames elided..."
			fields := strings.Fields(strings.Trim(line, "."))
			if n, err := strconv.Atoi(fields[0]); err == nil {
				cur.Elided, cur.ElidedAt = n, len(cur.Frames)
			}
		default:
			cur.Frames = append(cur.Frames, tbFrame{Function: funcName(line)})
		}
	}
	return out
}

// parseHeader reads "goroutine 18 [chan receive, 2 minutes]:" (newer runtimes may put
// more words between the id and the bracket).
func parseHeader(l string) *goroutineView {
	rest := strings.TrimPrefix(l, "goroutine ")
	sp := strings.IndexByte(rest, ' ')
	open := strings.IndexByte(rest, '[')
	closeIdx := strings.LastIndex(rest, "]")
	if sp <= 0 || open < 0 || closeIdx < open {
		return nil
	}
	id, err := strconv.ParseInt(rest[:sp], 10, 64)
	if err != nil {
		return nil
	}
	parts := strings.Split(rest[open+1:closeIdx], ", ")
	return &goroutineView{ID: id, Header: l, State: parts[0], Extras: parts[1:], Frames: []string{}}
}

// funcName strips the argument list: "main.(*server).serve(0xc000010000)" -> "main.(*server).serve".
func funcName(l string) string {
	if !strings.HasSuffix(l, ")") {
		return l
	}
	depth := 0
	for i := len(l) - 1; i >= 0; i-- {
		switch l[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				return l[:i]
			}
		}
	}
	return l
}

func inPlace(g *group, v *goroutineView) bool {
	if v == nil {
		return false
	}
	switch g.kind() {
	case kindWaiting:
		return v.State != "running" && v.State != "runnable" && v.State != "syscall"
	case kindSyscall:
		return v.State == "syscall"
	default:
		return true
	}
}

func main() {
	var (
		nPark      = flag.Int("park", 2000, "goroutines parked on a channel receive in main.parkedRecv")
		nSelect    = flag.Int("select", 4, "goroutines in main.parkedSelect")
		nSleep     = flag.Int("sleep", 4, "goroutines in main.sleeper (time.Sleep)")
		nMutex     = flag.Int("mutex", 4, "goroutines in main.mutexWaiter (one more holds the lock)")
		nWG        = flag.Int("wg", 3, "goroutines in main.wgWaiter")
		nNet       = flag.Int("net", 2, "goroutines in main.netReader (TCP read on 127.0.0.1)")
		nCond      = flag.Int("cond", 3, "goroutines in main.condWaiter")
		nSpin      = flag.Int("spin", 2, "goroutines spinning on a CPU in main.spinner")
		nSyscall   = flag.Int("syscall", 2, "goroutines in a raw read(2) of a blocking pipe in main.syscaller")
		nNanosleep = flag.Int("nanosleep", 1, "goroutines in syscall.Nanosleep in main.nanosleeper")
		nRecurse   = flag.Int("recurse", 1, "goroutines parked at the bottom of main.recurse")
		depth      = flag.Int("depth", 600, "frames of main.recurse per recursing goroutine")
		nInlined   = flag.Int("inlined", 2, "goroutines parked under the inlined main.inlinedHelper")
		nClosures  = flag.Int("closures", 2, "goroutines parked in main.startClosures.func1")
		nGeneric   = flag.Int("generic", 2, "goroutines parked in main.genericWait[...]")
		nServers   = flag.Int("servers", 1, "goroutines parked in main.(*server).serve")
		nLabeled   = flag.Int("labeled", 3, "goroutines with pprof labels parked in main.labeled")
		nPtrWrap   = flag.Int("ptrwrapper", 2, "goroutines parked in main.valueWaiter.wait via its <autogenerated> pointer wrapper")
		nDictWrap  = flag.Int("dictwrapper", 2, "goroutines parked in main.(*box[...]).wait via its generic dictionary wrapper")
		lifetime   = flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
		settle     = flag.Duration("settle-timeout", 30*time.Second, "report anyway (settled=false) after this long")
		reportFile = flag.String("report", "", "also write the report JSON to this file")
		eintr      = flag.String("eintr", "", "append a line to this file whenever a nanosleeper's call ends with EINTR")
	)
	flag.Parse()
	eintrFile = *eintr
	if *depth < 1 {
		*depth = 1
	}

	mainG := newGroup("main", "main.main", kindWaiting, "sleep", 1, "time.Sleep", "main.main")
	groups := []*group{
		mainG,
		newGroup("parkedRecv", "main.parkedRecv", kindWaiting, "chan receive", *nPark,
			"main.parkedRecv", "main.startParked.func1"),
		newGroup("parkedSelect", "main.parkedSelect", kindWaiting, "select", *nSelect,
			"main.parkedSelect", "main.startSelect.func1"),
		newGroup("sleeper", "main.sleeper", kindWaiting, "sleep", *nSleep,
			"time.Sleep", "main.sleeper", "main.startSleepers.func1"),
		newGroup("mutexHolder", "main.mutexHolder", kindWaiting, "chan receive", 1,
			"main.mutexHolder", "main.startMutex.func1"),
		newGroup("mutexWaiter", "main.mutexWaiter", kindWaiting, "sync.Mutex.Lock", *nMutex,
			"sync.(*Mutex).Lock", "main.mutexWaiter", "main.startMutex.func2"),
		newGroup("wgWaiter", "main.wgWaiter", kindWaiting, wgWaitReason(), *nWG,
			"sync.(*WaitGroup).Wait", "main.wgWaiter", "main.startWaitGroup.func1"),
		newGroup("netReader", "main.netReader", kindWaiting, "IO wait", *nNet,
			"internal/poll.(*FD).Read", "net.(*conn).Read", "main.netReader", "main.startNet.func1"),
		newGroup("condWaiter", "main.condWaiter", kindWaiting, "sync.Cond.Wait", *nCond,
			"sync.(*Cond).Wait", "main.condWaiter", "main.startCond.func1"),
		newGroup("spinner", "main.spinner", kindRunning, "", *nSpin,
			"main.spinner", "main.startSpinners.func1"),
		newGroup("syscaller", "main.syscaller", kindSyscall, "", *nSyscall,
			"syscall.Syscall", "main.syscaller", "main.startSyscallers.func1"),
		newGroup("nanosleeper", "main.nanosleeper", kindSyscall, "", *nNanosleep,
			"syscall.Nanosleep", "main.nanosleeper", "main.startNanosleepers.func1"),
		newGroup("recurse", "main.recurse", kindWaiting, "chan receive", *nRecurse,
			append(repeat("main.recurse", *depth), "main.startRecurse.func1")...),
		newGroup("inlined", "main.inlinedPark", kindWaiting, "chan receive", *nInlined,
			"main.inlinedPark", "main.inlinedHelper", "main.inlinedOuter", "main.startInlined.func1"),
		newGroup("closure", "main.startClosures.func1", kindWaiting, "chan receive", *nClosures,
			"main.startClosures.func1"),
		newGroup("generic", "main.genericWait[...]", kindWaiting, "chan receive", *nGeneric,
			"main.genericWait[...]", "main.startGeneric.func1"),
		newGroup("server", "main.(*server).serve", kindWaiting, "chan receive", *nServers,
			"main.(*server).serve"),
		newGroup("labeled", "main.labeled", kindWaiting, "chan receive", *nLabeled,
			"main.labeled", "main.startLabeled.func1.1", "runtime/pprof.Do", "main.startLabeled.func1"),
		newGroup("ptrWrapper", "main.valueWaiter.wait", kindWaiting, "chan receive", *nPtrWrap,
			"main.valueWaiter.wait", "main.waitVia", "main.startPtrWrapper.func1"),
		newGroup("dictWrapper", "main.(*box[...]).wait", kindWaiting, "chan receive", *nDictWrap,
			"main.(*box[...]).wait", "main.waitVia", "main.startDictWrapper.func1"),
	}
	byName := map[string]*group{}
	for _, g := range groups {
		byName[g.Name] = g
	}
	byName["inlined"].Inlined = []string{"main.inlinedHelper"}

	start := time.Now()
	mainG.register(nil)
	startParked(byName["parkedRecv"], *nPark)
	startSelect(byName["parkedSelect"], *nSelect)
	startSleepers(byName["sleeper"], *nSleep)
	startMutex(byName["mutexHolder"], byName["mutexWaiter"], *nMutex)
	startWaitGroup(byName["wgWaiter"], *nWG)
	must(startNet(byName["netReader"], *nNet))
	startCond(byName["condWaiter"], *nCond)
	startSpinners(byName["spinner"], *nSpin)
	must(startSyscallers(byName["syscaller"], *nSyscall))
	startNanosleepers(byName["nanosleeper"], *nNanosleep)
	startRecurse(byName["recurse"], *nRecurse, *depth)
	startInlined(byName["inlined"], *nInlined)
	startClosures(byName["closure"], *nClosures)
	startGeneric(byName["generic"], *nGeneric)
	startServers(byName["server"], *nServers)
	startLabeled(byName["labeled"], *nLabeled)
	startPtrWrapper(byName["ptrWrapper"], *nPtrWrap)
	startDictWrapper(byName["dictWrapper"], *nDictWrap)

	rep := &report{
		Schema: 1, Program: "snapfixture", PID: os.Getpid(), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GOMAXPROCS: runtime.GOMAXPROCS(0),
		RecursionDepth: *depth, Groups: groups, Args: os.Args[1:],
	}
	rep.Executable, _ = os.Executable()
	for _, g := range groups {
		rep.ExpectedGoroutines += g.Count
	}

	// The reporter is a goroutine of its own so that main is asleep, like after READY,
	// when the runtime's view is taken. It exits once the report is out.
	go func() {
		for _, g := range groups {
			g.started.Wait()
		}
		deadline := start.Add(*settle)
		for {
			views := parseStacks(allStacks())
			ok := true
			for _, g := range groups {
				for _, id := range g.IDs {
					if !inPlace(g, views[id]) {
						ok = false
						break
					}
				}
			}
			if ok || time.Now().After(deadline) {
				rep.Settled = ok
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		rep.SettleMillis = time.Since(start).Milliseconds()
		// A GC's mark phase stamps g.waitsince on parked goroutines with the time the
		// previous GC started (work.tstart), which is 0 before any GC finished: two.
		runtime.GC()
		runtime.GC()
		rep.ForcedGC = true
		views := parseStacks(allStacks())
		for _, g := range groups {
			sort.Slice(g.IDs, func(i, j int) bool { return g.IDs[i] < g.IDs[j] })
			for _, id := range g.IDs {
				v := views[id]
				if v == nil {
					g.RuntimeStates["<missing>"]++
					continue
				}
				g.RuntimeStates[v.State]++
				if len(g.RuntimeView) < 3 {
					g.RuntimeView = append(g.RuntimeView, *v)
				}
			}
		}
		rep.Tracebacks = parseTracebacks(allStacks())
		rep.NumGoroutine = runtime.NumGoroutine() - 1 // less this reporter
		rep.ReadyUnixNanos = time.Now().UnixNano()
		out, err := json.Marshal(rep)
		must(err)
		if *reportFile != "" {
			tmp := *reportFile + ".tmp"
			must(os.WriteFile(tmp, append(out, '\n'), 0o644))
			must(os.Rename(tmp, *reportFile))
		}
		fmt.Printf("READY %s\n", out)
	}()

	if *lifetime > 0 {
		time.Sleep(*lifetime)
		os.Exit(0)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// wgWaitReason is how the runtime names a goroutine blocked in sync.WaitGroup.Wait:
// plain "semacquire" before Go 1.24, which added waitReasonSyncWaitGroupWait.
func wgWaitReason() string {
	if goMinor() < 24 {
		return "semacquire"
	}
	return "sync.WaitGroup.Wait"
}

// goMinor is 22 for "go1.22.12"; development builds count as new.
func goMinor() int {
	v := runtime.Version()
	i := strings.Index(v, "go1.")
	if i < 0 {
		return 1 << 30
	}
	rest := v[i+len("go1."):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil || strings.HasPrefix(v, "devel") {
		return 1 << 30
	}
	return n
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapfixture:", err)
		os.Exit(2)
	}
}
