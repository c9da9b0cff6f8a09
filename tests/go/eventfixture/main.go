// Command eventfixture runs a known workload on cue and reports its own truth, to test
// dynamic events (sideeye-tui trace) against it.
//
// It prints one line `READY {json}` on stdout (the functions and the marked source
// lines a trace can probe), then waits. Each SIGUSR1 runs one round of the workload
// (round.go): every probed function is called a known number of times with known
// arguments, from goroutines whose ids it reports, each call measured by its caller.
// After the round it writes the truth to -truth FILE (FILE.tmp, then a rename; without
// -truth, one line `TRUTH {json}` on stderr). A test attaches its trace first, then
// signals. With -tick D a background goroutine calls main.tick every D, forever (a
// steady stream of hits for tests that kill the tracer at random moments). It runs
// until killed, or until -lifetime has passed.
package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

//go:embed workload.go
var workloadSource []byte

//go:embed sub/workload.go
var subSource []byte

type lineRef struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

type readyReport struct {
	Schema     int                `json:"schema"`
	Program    string             `json:"program"`
	PID        int                `json:"pid"`
	GoVersion  string             `json:"go_version"`
	Executable string             `json:"executable"`
	Args       []string           `json:"args"`
	Functions  map[string]string  `json:"functions"`
	Generic    []string           `json:"generic_symbols"`
	Inlined    map[string]bool    `json:"inlined"`
	Lines      map[string]lineRef `json:"lines"`
	MainGoid   int64              `json:"main_goid"`
}

var markRE = regexp.MustCompile(`// LINE:([a-z]+)\b`)

// marks finds the `// LINE:<name>` marks of a source file: name -> line number.
func marks(src []byte) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		if m := markRE.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = n
		}
	}
	return out
}

// symbols is the set of function symbols of the executable (empty when stripped).
func symbols(exe string) map[string]bool {
	out := map[string]bool{}
	f, err := elf.Open(exe)
	must(err)
	defer f.Close()
	syms, err := f.Symbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return out // linked with -s: no symbol table
	}
	must(err)
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			out[s.Name] = true
		}
	}
	return out
}

// goid reads the calling goroutine's id from runtime.Stack's first line.
func goid() int64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(strings.TrimPrefix(string(buf), "goroutine "))
	id, err := strconv.ParseInt(f[0], 10, 64)
	must(err)
	return id
}

func main() {
	var (
		truthPath = flag.String("truth", "", "write each round's truth to `FILE` (FILE.tmp, then a rename); default: a line TRUTH {json} on stderr")
		tickEvery = flag.Duration("tick", 0, "call main.tick every D from a background goroutine (0: never)")
		lifetime  = flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
	)
	flag.Parse()

	// Before anything else: a SIGUSR1 that comes early waits in the channel.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGUSR1)

	exe, err := os.Executable()
	must(err)
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Dir(self)
	syms := symbols(exe)
	generic := []string{}
	for _, s := range []string{"main.sumOf[go.shape.int]", "main.sumOf[go.shape.string]"} {
		if syms[s] {
			generic = append(generic, s)
		}
	}
	lines := map[string]lineRef{}
	for name, n := range marks(workloadSource) {
		lines[name] = lineRef{File: filepath.Join(dir, "workload.go"), Line: n}
	}
	for name, n := range marks(subSource) {
		lines[name] = lineRef{File: filepath.Join(dir, "sub", "workload.go"), Line: n}
	}
	ready := &readyReport{
		Schema: 1, Program: "eventfixture", PID: os.Getpid(), GoVersion: runtime.Version(),
		Executable: exe, Args: os.Args[1:],
		Functions: map[string]string{
			"handle": "main.handle", "recurse": "main.recurse", "panic": "main.mayPanic",
			"grow": "main.growStack", "generic": "main.sumOf[...]", "inlined": "main.small",
			"inliner": "main.callSmall", "loop": "main.loopLines", "tick": "main.tick",
			"sub": "example.com/eventfixture/sub.Twice",
		},
		Generic: generic,
		// A function is inlined everywhere when the binary has no symbol for it.
		Inlined:  map[string]bool{"main.small": !syms["main.small"]},
		Lines:    lines,
		MainGoid: goid(),
	}
	out, err := json.Marshal(ready)
	must(err)
	fmt.Printf("READY %s\n", out)

	var ticks atomic.Int64
	if *tickEvery > 0 {
		go func() {
			for i := 0; ; i++ {
				tick(i)
				ticks.Add(1)
				time.Sleep(*tickEvery)
			}
		}()
	}

	var expire <-chan time.Time
	if *lifetime > 0 {
		expire = time.After(*lifetime)
	}
	for round := 1; ; round++ {
		select {
		case <-sigs:
		case <-expire:
			os.Exit(0)
		}
		t := runRound(round)
		t.Ticks = ticks.Load()
		out, err := json.Marshal(t)
		must(err)
		if *truthPath == "" {
			fmt.Fprintf(os.Stderr, "TRUTH %s\n", out)
		} else {
			tmp := *truthPath + ".tmp"
			must(os.WriteFile(tmp, append(out, '\n'), 0o644))
			must(os.Rename(tmp, *truthPath))
		}
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventfixture:", err)
		os.Exit(2)
	}
}
