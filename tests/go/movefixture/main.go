// Command movefixture changes its goroutines on cue, to test that a snapshot shows
// them as they are at the pause and not as an earlier walk saw them.
//
// It starts stayers (parked in main.stayer for good), movers (parked in
// main.beforeMove until the move), and leavers (parked in main.leaver until the
// move), waits until every one is parked, and prints one line `READY {json}` on
// stdout. On the first SIGUSR1 it performs the move: movers leave main.beforeMove and
// park for good in a select in main.afterMove, leavers return (their goroutines
// exit), and newcomers start and park in main.newcomer. Once the runtime's own view
// (runtime.Stack of every goroutine) shows that new state, it writes the move report
// to -moved FILE (FILE.tmp, then a rename). Later SIGUSR1s are ignored. It runs until
// killed, or until -lifetime has passed.
//
// Besides the groups, two goroutines live from before READY to the end: main (goid
// 1), which takes the signal, performs the move and then waits for -lifetime, and the
// os/signal.loop goroutine that signal.Notify starts. Both reports list them as
// `helpers`; no goroutine is started or ends apart from the groups' members.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Wait reasons as the runtime spells them, the same in every Go since 1.18.
const (
	reasonRecv   = "chan receive"
	reasonSelect = "select"
)

type helper struct {
	Goid   int64    `json:"goid"`
	State  string   `json:"state"`
	Frames []string `json:"frames"`
}

type readyReport struct {
	Schema       int               `json:"schema"`
	Program      string            `json:"program"`
	PID          int               `json:"pid"`
	GoVersion    string            `json:"go_version"`
	Executable   string            `json:"executable"`
	Args         []string          `json:"args"`
	Settled      bool              `json:"settled"`
	SettleMillis int64             `json:"settle_ms"`
	Stay         []int64           `json:"stay"`
	Move         []int64           `json:"move"`
	Exit         []int64           `json:"exit"`
	Helpers      []helper          `json:"helpers"`
	NumGoroutine int               `json:"num_goroutine"`
	Functions    map[string]string `json:"functions"`
	WaitReasons  map[string]string `json:"wait_reasons"`
}

type movedReport struct {
	Schema        int                       `json:"schema"`
	Program       string                    `json:"program"`
	PID           int                       `json:"pid"`
	Settled       bool                      `json:"settled"`
	SettleMillis  int64                     `json:"settle_ms"`
	Stay          []int64                   `json:"stay"`
	Move          []int64                   `json:"move"`
	Exit          []int64                   `json:"exit"`
	Spawn         []int64                   `json:"spawn"`
	Helpers       []helper                  `json:"helpers"`
	NumGoroutine  int                       `json:"num_goroutine"`
	Functions     map[string]string         `json:"functions"`
	WaitReasons   map[string]string         `json:"wait_reasons"`
	RuntimeStates map[string]map[string]int `json:"runtime_states"`
}

// expect is what the runtime's view must show of a group's goroutines.
type expect struct {
	name   string
	ids    []int64
	gone   bool     // the goroutines must have exited
	state  string   // header state, e.g. "chan receive"
	has    []string // functions that must be on the stack
	hasNot []string // functions that must not be
}

func (e expect) holds(v *view) bool {
	if e.gone {
		return v == nil
	}
	if v == nil || v.State != e.state {
		return false
	}
	for _, f := range e.has {
		if !contains(v.Frames, f) {
			return false
		}
	}
	for _, f := range e.hasNot {
		if contains(v.Frames, f) {
			return false
		}
	}
	return true
}

// settle polls the runtime's view until every expectation holds and
// runtime.NumGoroutine agrees with the view's count, or until the deadline. It
// returns whether it settled and the last view.
func settle(exps []expect, deadline time.Time) (bool, map[int64]*view) {
	for {
		views := parseStacks(allStacks())
		ok := runtime.NumGoroutine() == len(views)
		for _, e := range exps {
			for _, id := range e.ids {
				if !e.holds(views[id]) {
					ok = false
					break
				}
			}
		}
		if ok || time.Now().After(deadline) {
			return ok, views
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// helpers are the goroutines of the view that belong to no group, by goid.
func helpers(views map[int64]*view, exps []expect) []helper {
	known := map[int64]bool{}
	for _, e := range exps {
		for _, id := range e.ids {
			known[id] = true
		}
	}
	out := []helper{}
	for id, v := range views {
		if !known[id] {
			out = append(out, helper{Goid: id, State: v.State, Frames: v.Frames})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Goid < out[j].Goid })
	return out
}

func runtimeStates(views map[int64]*view, exps []expect) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, e := range exps {
		states := map[string]int{}
		for _, id := range e.ids {
			if v := views[id]; v != nil {
				states[v.State]++
			} else {
				states["<missing>"]++
			}
		}
		out[e.name] = states
	}
	return out
}

func sortedIDs(g *group) []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := append([]int64{}, g.ids...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func main() {
	var (
		nStay    = flag.Int("stay", 1000, "goroutines parked for good on a channel receive in main.stayer")
		nMove    = flag.Int("move", 200, "goroutines parked in main.beforeMove until the move, then in a select in main.afterMove")
		nExit    = flag.Int("exit", 50, "goroutines parked in main.leaver until the move, then they exit")
		nSpawn   = flag.Int("spawn", 100, "goroutines started at the move, parked on a channel receive in main.newcomer")
		moved    = flag.String("moved", "", "write the move report to `FILE` (FILE.tmp, then a rename); default: a line MOVED {json} on stderr")
		lifetime = flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
		settleTO = flag.Duration("settle-timeout", 30*time.Second, "report anyway (settled=false) after this long")
	)
	flag.Parse()

	functions := map[string]string{
		"stay": "main.stayer", "move": "main.beforeMove", "moved": "main.afterMove",
		"exit": "main.leaver", "spawn": "main.newcomer",
	}

	// Before any goroutine starts: a SIGUSR1 that comes early waits in the channel
	// instead of killing the process. The buffer of one also drops later signals.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)

	start := time.Now()
	stay, move, exit, spawn := newGroup(*nStay), newGroup(*nMove), newGroup(*nExit), newGroup(*nSpawn)
	releaseMove, releaseExit := make(chan struct{}), make(chan struct{})
	startStayers(stay, *nStay)
	startMovers(move, *nMove, releaseMove)
	startLeavers(exit, *nExit, releaseExit)
	stay.started.Wait()
	move.started.Wait()
	exit.started.Wait()

	before := []expect{
		{name: "stay", ids: sortedIDs(stay), state: reasonRecv, has: []string{functions["stay"]}},
		{name: "move", ids: sortedIDs(move), state: reasonRecv, has: []string{functions["move"]}},
		{name: "exit", ids: sortedIDs(exit), state: reasonRecv, has: []string{functions["exit"]}},
	}
	ok, views := settle(before, start.Add(*settleTO))
	ready := &readyReport{
		Schema: 1, Program: "movefixture", PID: os.Getpid(), GoVersion: runtime.Version(),
		Args: os.Args[1:], Settled: ok, SettleMillis: time.Since(start).Milliseconds(),
		Stay: before[0].ids, Move: before[1].ids, Exit: before[2].ids,
		Helpers: helpers(views, before), NumGoroutine: runtime.NumGoroutine(),
		Functions: functions,
		WaitReasons: map[string]string{
			"stay": reasonRecv, "move": reasonRecv, "exit": reasonRecv,
			"moved": reasonSelect, "spawn": reasonRecv,
		},
	}
	ready.Executable, _ = os.Executable()
	out, err := json.Marshal(ready)
	must(err)
	fmt.Printf("READY %s\n", out)

	var expire <-chan time.Time
	if *lifetime > 0 {
		expire = time.After(*lifetime)
	}
	select {
	case <-sigs:
	case <-expire:
		os.Exit(0)
	}

	// The move: everything at once, then wait for the runtime to show it.
	t0 := time.Now()
	close(releaseMove)
	close(releaseExit)
	startNewcomers(spawn, *nSpawn)
	spawn.started.Wait()
	after := []expect{
		{name: "stay", ids: ready.Stay, state: reasonRecv, has: []string{functions["stay"]}},
		{name: "move", ids: ready.Move, state: reasonSelect,
			has: []string{functions["moved"]}, hasNot: []string{functions["move"]}},
		{name: "exit", ids: ready.Exit, gone: true},
		{name: "spawn", ids: sortedIDs(spawn), state: reasonRecv, has: []string{functions["spawn"]}},
	}
	ok, views = settle(after, t0.Add(*settleTO))
	rep := &movedReport{
		Schema: 1, Program: "movefixture", PID: os.Getpid(),
		Settled: ok, SettleMillis: time.Since(t0).Milliseconds(),
		Stay: ready.Stay, Move: ready.Move, Exit: ready.Exit, Spawn: after[3].ids,
		Helpers: helpers(views, after), NumGoroutine: runtime.NumGoroutine(),
		Functions: functions, WaitReasons: ready.WaitReasons,
		RuntimeStates: runtimeStates(views, after),
	}
	out, err = json.Marshal(rep)
	must(err)
	if *moved == "" {
		fmt.Fprintf(os.Stderr, "MOVED %s\n", out)
	} else {
		tmp := *moved + ".tmp"
		must(os.WriteFile(tmp, append(out, '\n'), 0o644))
		must(os.Rename(tmp, *moved))
	}

	if expire == nil {
		for {
			time.Sleep(time.Hour)
		}
	}
	<-expire
	os.Exit(0)
}

// ---- the runtime's view: runtime.Stack(all=true), parsed ----------------------------

type view struct {
	ID     int64
	State  string
	Frames []string
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
func parseStacks(dump []byte) map[int64]*view {
	out := map[int64]*view{}
	var cur *view
	for _, line := range bytes.Split(dump, []byte("\n")) {
		l := string(line)
		switch {
		case strings.HasPrefix(l, "goroutine "):
			cur = parseHeader(l)
			if cur != nil {
				out[cur.ID] = cur
			}
		case cur == nil || l == "" || strings.HasPrefix(l, "\t"):
		case strings.HasPrefix(l, "created by "), strings.HasPrefix(l, "..."):
		default:
			cur.Frames = append(cur.Frames, funcName(l))
		}
	}
	return out
}

// parseHeader reads "goroutine 18 [chan receive, 2 minutes]:" (newer runtimes may put
// more words between the id and the bracket).
func parseHeader(l string) *view {
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
	state := strings.Split(rest[open+1:closeIdx], ", ")[0]
	return &view{ID: id, State: state, Frames: []string{}}
}

// funcName strips the argument list: "main.stayer(0xc000010000)" -> "main.stayer".
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

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "movefixture:", err)
		os.Exit(2)
	}
}
