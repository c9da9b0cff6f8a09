package main

// One round of the workload and its truth. Every call of a probed function is made
// here (or, for recurse's inner levels, by recurse itself) and measured around the
// call by its caller, so a probe's entry and return both fall inside the measured
// time: a traced duration is at least the call's sleep_ns and at most its measured_ns.

import (
	"fmt"
	"os"
	"sync"
	"time"

	"example.com/eventfixture/sub"
)

// Sizes of a round (the tests read them from the truth, not from here).
const (
	handleCalls  = 10
	recurseDepth = 50
	panicCalls   = 6
	growCalls    = 3
	growLevels   = 64 // 64 KiB of frames: past a new goroutine's 8 KiB stack
	smallCalls   = 100
	loopCount    = 37
)

// call is one call of a probed function.
type call struct {
	Goid       int64          `json:"goid"`
	Args       map[string]any `json:"args"`
	Results    map[string]any `json:"results,omitempty"`
	Returned   bool           `json:"returned"`
	SleepNs    int64          `json:"sleep_ns"`
	MeasuredNs int64          `json:"measured_ns"`
	// Function-specific facts.
	Instantiation string `json:"instantiation,omitempty"` // sumOf: the symbol of the instantiation called
	Moved         *bool  `json:"stack_moved,omitempty"`   // growStack: its frame moved during the call
}

type lineTruth struct {
	Count int   `json:"count"`
	Goid  int64 `json:"goid"`
}

type truth struct {
	Schema    int                  `json:"schema"`
	Program   string               `json:"program"`
	PID       int                  `json:"pid"`
	Round     int                  `json:"round"`
	StartNs   int64                `json:"started_unix_ns"`
	EndNs     int64                `json:"ended_unix_ns"`
	Functions map[string][]call    `json:"functions"`
	Lines     map[string]lineTruth `json:"lines"`
	Ticks     int64                `json:"ticks"`
}

// inGoroutine runs f in a new goroutine and waits for it.
func inGoroutine(f func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f()
	}()
	wg.Wait()
}

func since(t0 time.Time) int64 { return int64(time.Since(t0)) }

// recurseMeasured[n] is the measured duration of the call recurse(n) of this round.
var recurseMeasured [recurseDepth + 1]int64

func runHandles() []call {
	calls := []call{}
	inGoroutine(func() {
		g := goid()
		for i := 0; i < handleCalls; i++ {
			req := &Request{ID: int64(100 + i), AccountID: int64(i%3 + 5), User: &User{Name: fmt.Sprintf("user-%d", i)}}
			if i == handleCalls-1 {
				req.User = nil
			}
			name := fmt.Sprintf("call-%d", i)
			n := i*i - 3
			var tags []string
			if i > 0 {
				tags = make([]string, i%4)
				for j := range tags {
					tags[j] = fmt.Sprintf("tag-%d-%d", i, j)
				}
			}
			t0 := time.Now()
			r0, r1 := handle(req, name, n, tags)
			d := since(t0)
			reqJSON := map[string]any{"ID": req.ID, "AccountID": req.AccountID, "User": nil}
			if req.User != nil {
				reqJSON["User"] = map[string]any{"Name": req.User.Name}
			}
			var errJSON any
			if r1 != nil {
				errJSON = map[string]any{"$type": fmt.Sprintf("%T", r1), "$value": map[string]any{"Code": r1.(*codeError).Code}}
			}
			calls = append(calls, call{
				Goid: g, Args: map[string]any{"req": reqJSON, "name": name, "n": n, "tags": tags},
				Results: map[string]any{"~r0": r0, "~r1": errJSON}, Returned: true,
				SleepNs: int64(handleSleep(req.ID)), MeasuredNs: d,
			})
		}
	})
	return calls
}

func runRecurse() []call {
	calls := []call{}
	inGoroutine(func() {
		g := goid()
		t0 := time.Now()
		recurse(recurseDepth)
		recurseMeasured[recurseDepth] = since(t0)
		for n := 1; n <= recurseDepth; n++ {
			// recurse(n) sleeps the leaf once and a level sleep in each level above 1.
			sleep := int64(recurseLeafSleep) + int64(n-1)*int64(recurseLevelSleep)
			calls = append(calls, call{
				Goid: g, Args: map[string]any{"n": n}, Results: map[string]any{"~r0": n},
				Returned: true, SleepNs: sleep, MeasuredNs: recurseMeasured[n],
			})
		}
	})
	return calls
}

func runPanics() []call {
	calls := []call{}
	inGoroutine(func() {
		g := goid()
		for n := 0; n < panicCalls; n++ {
			t0 := time.Now()
			panicked := callRecover(n)
			d := since(t0)
			c := call{Goid: g, Args: map[string]any{"n": n}, Returned: !panicked, MeasuredNs: d}
			if panicked {
				c.SleepNs = int64(panicSleep)
			} else {
				c.SleepNs = int64(returnSleep)
				c.Results = map[string]any{"~r0": n}
			}
			calls = append(calls, c)
		}
	})
	return calls
}

func runGrow() []call {
	calls := []call{}
	for i := 0; i < growCalls; i++ {
		// A new goroutine each time: its stack starts small and must grow.
		inGoroutine(func() {
			g := goid()
			t0 := time.Now()
			moved := growStack(growLevels)
			d := since(t0)
			calls = append(calls, call{
				Goid: g, Args: map[string]any{"levels": growLevels}, Results: map[string]any{"~r0": moved},
				Returned: true, SleepNs: int64(growSleep), MeasuredNs: d, Moved: &moved,
			})
		})
	}
	return calls
}

func runGeneric() []call {
	calls := []call{}
	inGoroutine(func() {
		g := goid()
		for _, xs := range [][]int{{1, 2, 3}, {4, 5}, {}} {
			t0 := time.Now()
			r := sumOf(xs)
			calls = append(calls, call{
				Goid: g, Args: map[string]any{"xs": xs}, Results: map[string]any{"~r0": r},
				Returned: true, SleepNs: int64(genericSleep), MeasuredNs: since(t0),
				Instantiation: "main.sumOf[go.shape.int]",
			})
		}
		for _, xs := range [][]string{{"a", "b"}, {"c"}} {
			t0 := time.Now()
			r := sumOf(xs)
			calls = append(calls, call{
				Goid: g, Args: map[string]any{"xs": xs}, Results: map[string]any{"~r0": r},
				Returned: true, SleepNs: int64(genericSleep), MeasuredNs: since(t0),
				Instantiation: "main.sumOf[go.shape.string]",
			})
		}
	})
	return calls
}

func runSmall() []call {
	calls := []call{}
	inGoroutine(func() {
		g := goid()
		callSmall(smallCalls)
		for i := 0; i < smallCalls; i++ {
			calls = append(calls, call{Goid: g, Args: map[string]any{"x": i - smallCalls/2}, Returned: true})
		}
	})
	return calls
}

func runLines() (lineTruth, lineTruth) {
	var loop, subLine lineTruth
	inGoroutine(func() {
		g := goid()
		loopLines(loopCount)
		sub.Twice(loopCount)
		loop = lineTruth{Count: loopCount, Goid: g}
		subLine = lineTruth{Count: 1, Goid: g}
	})
	return loop, subLine
}

func runRound(round int) *truth {
	t := &truth{
		Schema: 1, Program: "eventfixture", PID: os.Getpid(), Round: round,
		StartNs: time.Now().UnixNano(), Functions: map[string][]call{},
	}
	t.Functions["main.handle"] = runHandles()
	t.Functions["main.recurse"] = runRecurse()
	t.Functions["main.mayPanic"] = runPanics()
	t.Functions["main.growStack"] = runGrow()
	t.Functions["main.sumOf[...]"] = runGeneric()
	t.Functions["main.small"] = runSmall()
	loop, subLine := runLines()
	t.Lines = map[string]lineTruth{"loop": loop, "sub": subLine, "nocode": {}}
	t.EndNs = time.Now().UnixNano()
	return t
}
