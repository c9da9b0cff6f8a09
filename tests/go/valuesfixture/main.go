// Command valuesfixture parks goroutines inside functions whose parameters and locals
// hold values of every kind, and prints the truth about them (each holder's goroutine
// id, function, and every variable rendered by a reflect-based encoder) as one line
// `READY {json}` on stdout once every holder is parked. It then runs until killed, or
// until -lifetime has passed. The format is described in tests/go/README.md.
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

// holder is the truth about one frame of a holder function.
type holder struct {
	Name      string            `json:"name"`
	Goid      int64             `json:"goid"`
	Function  string            `json:"function"`
	Innermost bool              `json:"innermost"` // parked in this frame (false: a caller of one)
	Values    map[string]any    `json:"values"`
	Order     []string          `json:"order"` // variable names in the order recorded
	Cut       []string          `json:"cut"`
	Addresses map[string]string `json:"addresses"`
	Shadowed  map[string]any    `json:"shadowed"` // outer variables hidden by an inner one at the park

	innermost bool
	addresses map[string]string
	shadowed  map[string]any
}

type report struct {
	Schema      int       `json:"schema"`
	Program     string    `json:"program"`
	PID         int       `json:"pid"`
	GoVersion   string    `json:"go_version"`
	GOOS        string    `json:"goos"`
	GOARCH      string    `json:"goarch"`
	Executable  string    `json:"executable"`
	Args        []string  `json:"args"`
	Settled     bool      `json:"settled"`
	Goroutines  int       `json:"goroutines"` // holder goroutines
	ReadyUnixNs int64     `json:"ready_unix_ns"`
	Budgets     budgets   `json:"budgets"`
	Holders     []*holder `json:"holders"`
}

type budgets struct {
	StringBytes int `json:"string_bytes"`
	SliceBytes  int `json:"slice_bytes"`
	MapBytes    int `json:"map_bytes"`
	Pointers    int `json:"pointers"`
}

var (
	registry   []*holder
	registryMu sync.Mutex
	registered = make(chan struct{}, 64)
)

// begin starts the record of the holder that calls it: its goroutine id and its
// function as the runtime names it. FuncForPC gets the pc of the call instruction
// (return pc - 1): the return pc may already belong to code inlined after the call.
//
//go:noinline
func begin(name string) *holder {
	pcs := make([]uintptr, 1)
	runtime.Callers(2, pcs)
	return &holder{
		Name: name, Goid: currentGoid(), Function: runtime.FuncForPC(pcs[0] - 1).Name(),
		Values: map[string]any{}, Cut: []string{}, innermost: true,
		addresses: map[string]string{}, shadowed: map[string]any{},
	}
}

func put[T any](h *holder, name string, v T) {
	out, cut := encodeVar(v)
	h.Values[name] = out
	h.Order = append(h.Order, name)
	if cut {
		h.Cut = append(h.Cut, name)
	}
}

func (h *holder) done() {
	h.Innermost = h.innermost
	h.Addresses = h.addresses
	h.Shadowed = h.shadowed
	registryMu.Lock()
	registry = append(registry, h)
	registryMu.Unlock()
	registered <- struct{}{}
}

func currentGoid() int64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	fields := strings.Fields(string(buf))
	id, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		panic("valuesfixture: cannot parse goroutine id from " + string(buf))
	}
	return id
}

// parkedIDs returns the goroutines that are blocked on a channel receive with fn on
// their stack, from the runtime's own traceback of every goroutine.
func parkedIDs() map[int64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		lines := strings.Split(string(block), "\n")
		var id int64
		var state string
		if _, err := fmt.Sscanf(lines[0], "goroutine %d [", &id); err != nil {
			continue
		}
		open, end := strings.Index(lines[0], "["), strings.Index(lines[0], "]")
		if open < 0 || end < open {
			continue
		}
		state = strings.SplitN(lines[0][open+1:end], ",", 2)[0]
		out[id] = state + "\n" + strings.Join(lines[1:], "\n")
	}
	return out
}

func main() {
	var (
		lifetime   = flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
		settle     = flag.Duration("settle-timeout", 30*time.Second, "report anyway (settled=false) after this long")
		reportFile = flag.String("report", "", "also write the report JSON to this file")
	)
	flag.Parse()

	start := time.Now()
	goroutines := startHolders()
	records := goroutines + 1 // holdOuter and holdInner share a goroutine
	for i := 0; i < records; i++ {
		<-registered
	}
	registryMu.Lock()
	holders := append([]*holder(nil), registry...)
	registryMu.Unlock()
	sort.Slice(holders, func(i, j int) bool { return holders[i].Name < holders[j].Name })

	rep := &report{
		Schema: 1, Program: "valuesfixture", PID: os.Getpid(), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Args: os.Args[1:], Goroutines: goroutines,
		Budgets: budgets{budgetStringBytes, budgetSliceBytes, budgetMapBytes, budgetPointers},
		Holders: holders,
	}
	rep.Executable, _ = os.Executable()

	deadline := start.Add(*settle)
	for {
		views := parkedIDs()
		ok := true
		for _, h := range holders {
			v := views[h.Goid]
			if !strings.HasPrefix(v, "chan receive\n") || !strings.Contains(v, h.Function+"(") {
				ok = false
				break
			}
		}
		if ok || time.Now().After(deadline) {
			rep.Settled = ok
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rep.ReadyUnixNs = time.Now().UnixNano()
	out, err := json.Marshal(rep)
	must(err)
	if *reportFile != "" {
		tmp := *reportFile + ".tmp"
		must(os.WriteFile(tmp, append(out, '\n'), 0o644))
		must(os.Rename(tmp, *reportFile))
	}
	fmt.Printf("READY %s\n", out)

	if *lifetime > 0 {
		time.Sleep(*lifetime)
		os.Exit(0)
	}
	for {
		time.Sleep(time.Hour)
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "valuesfixture:", err)
		os.Exit(2)
	}
}
