// Command service is the demo Go service that sideeye-tui's demo debugs: a small bank
// of accounts behind an HTTP API, with its own load generator. Recognisable work:
//
//   - main.(*Server).handle serves /transfer; it carries a *Request (ID, User{Name},
//     Start, AccountID, Amount) and pprof labels request_id and user;
//   - main.(*Server).lockAccount waits on the per-account sync.Mutex that another
//     request holds (the hot account 1 gets half of the traffic);
//   - main.(*Server).queryDB simulates a slow query (a sleep) while holding the lock;
//   - main.worker goroutines consume audit jobs from a channel;
//   - main.reportStats ticks once a second;
//   - main.loadGenerator goroutines issue requests to the service itself, on 127.0.0.1.
//
// It prints one line `READY {json}` on stdout (pid, addr, ...) once requests flow, and
// runs until killed or until -lifetime has passed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// User is who asked.
type User struct {
	Name string
	ID   int
}

// Request is one /transfer call, alive in the frames of its handler.
type Request struct {
	ID        uint64
	User      User
	Start     time.Time
	AccountID int
	Amount    int64
	Path      string
}

// Account is a balance and the lock that serialises transfers on it.
type Account struct {
	ID      int
	Balance int64
	mu      sync.Mutex
	Holder  atomic.Uint64 // ID of the request holding mu, 0 if none
}

// Job is an audit record handed to the worker pool.
type Job struct {
	Req      *Request
	Balance  int64
	Enqueued time.Time
}

// Stats are the service's counters.
type Stats struct {
	Requests   atomic.Uint64
	InFlight   atomic.Int64
	LockWaits  atomic.Uint64
	JobsDone   atomic.Uint64
	LastRate   atomic.Uint64 // requests in the last stats period
	LastReport atomic.Int64  // unix ns
}

// Server holds the accounts, the job queue and the stats.
type Server struct {
	accounts  map[int]*Account
	jobs      chan *Job
	stats     Stats
	nextID    atomic.Uint64
	dbLatency time.Duration
	verbose   bool
}

func newServer(nAccounts, queue int, dbLatency time.Duration, verbose bool) *Server {
	s := &Server{
		accounts:  make(map[int]*Account, nAccounts),
		jobs:      make(chan *Job, queue),
		dbLatency: dbLatency,
		verbose:   verbose,
	}
	for i := 1; i <= nAccounts; i++ {
		s.accounts[i] = &Account{ID: i, Balance: 1000 * int64(i)}
	}
	return s
}

// handle serves GET /transfer?account=N&user=NAME&amount=M.
//
//go:noinline
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	accountID, err := strconv.Atoi(q.Get("account"))
	if err != nil || s.accounts[accountID] == nil {
		http.Error(w, "unknown account", http.StatusNotFound)
		return
	}
	amount, _ := strconv.ParseInt(q.Get("amount"), 10, 64)
	uid, _ := strconv.Atoi(q.Get("uid"))
	req := &Request{
		ID:        s.nextID.Add(1),
		User:      User{Name: q.Get("user"), ID: uid},
		Start:     time.Now(),
		AccountID: accountID,
		Amount:    amount,
		Path:      r.URL.Path,
	}
	s.stats.Requests.Add(1)
	s.stats.InFlight.Add(1)
	defer s.stats.InFlight.Add(-1)

	ctx := pprof.WithLabels(r.Context(), pprof.Labels(
		"request_id", strconv.FormatUint(req.ID, 10), "user", req.User.Name))
	pprof.SetGoroutineLabels(ctx)
	defer pprof.SetGoroutineLabels(context.Background())

	acct := s.lockAccount(req)
	balance := s.queryDB(req, acct)
	s.jobs <- &Job{Req: req, Balance: balance, Enqueued: time.Now()}
	s.unlockAccount(acct, req)

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"request_id": req.ID,
		"user":       req.User.Name,
		"account":    req.AccountID,
		"balance":    balance,
		"took_us":    time.Since(req.Start).Microseconds(),
	})
}

// lockAccount takes the account's lock, waiting while another request holds it.
//
//go:noinline
func (s *Server) lockAccount(req *Request) *Account {
	acct := s.accounts[req.AccountID]
	if !acct.mu.TryLock() {
		s.stats.LockWaits.Add(1)
		acct.mu.Lock()
	}
	acct.Holder.Store(req.ID)
	return acct
}

//go:noinline
func (s *Server) unlockAccount(acct *Account, req *Request) {
	if acct.Holder.Load() == req.ID {
		acct.Holder.Store(0)
	}
	acct.mu.Unlock()
}

// queryDB is the slow query: it sleeps between 0.5x and 1.5x the -db-latency, then
// applies the transfer.
//
//go:noinline
func (s *Server) queryDB(req *Request, acct *Account) int64 {
	d := s.dbLatency/2 + time.Duration(rand.Int63n(int64(s.dbLatency)+1))
	time.Sleep(d)
	acct.Balance += req.Amount
	return acct.Balance
}

// worker consumes audit jobs.
//
//go:noinline
func worker(id int, s *Server, jobs <-chan *Job) {
	for job := range jobs {
		audit(id, job)
		s.stats.JobsDone.Add(1)
	}
}

//go:noinline
func audit(workerID int, job *Job) {
	// Writing the audit log takes a little while.
	time.Sleep(2*time.Millisecond + time.Duration(job.Req.ID%3)*time.Millisecond)
	if job.Req.User.Name == "" {
		fmt.Fprintf(os.Stderr, "worker %d: request %d has no user\n", workerID, job.Req.ID)
	}
}

// reportStats ticks once a second and keeps the request rate.
//
//go:noinline
func reportStats(s *Server, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	var last uint64
	for now := range t.C {
		n := s.stats.Requests.Load()
		rate := n - last
		last = n
		s.stats.LastRate.Store(rate)
		s.stats.LastReport.Store(now.UnixNano())
		if s.verbose {
			fmt.Fprintf(os.Stderr, "stats: %d req/period, %d in flight, %d lock waits, %d jobs\n",
				rate, s.stats.InFlight.Load(), s.stats.LockWaits.Load(), s.stats.JobsDone.Load())
		}
	}
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"requests":   s.stats.Requests.Load(),
		"in_flight":  s.stats.InFlight.Load(),
		"lock_waits": s.stats.LockWaits.Load(),
		"jobs_done":  s.stats.JobsDone.Load(),
		"last_rate":  s.stats.LastRate.Load(),
	})
}

var userNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}

// loadGenerator sends transfers to the service itself until the process ends. Half of
// them go to account 1, so requests queue on its lock.
//
//go:noinline
func loadGenerator(id int, baseURL string, accounts int, think time.Duration, ok *atomic.Uint64) {
	client := &http.Client{Timeout: 30 * time.Second}
	rng := rand.New(rand.NewSource(int64(id) + 1))
	for {
		account := 1
		if rng.Intn(2) == 1 && accounts > 1 {
			account = 2 + rng.Intn(accounts-1)
		}
		uid := rng.Intn(len(userNames))
		url := fmt.Sprintf("%s/transfer?account=%d&user=%s&uid=%d&amount=%d",
			baseURL, account, userNames[uid], uid+100, rng.Intn(200)-100)
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok.Add(1)
			}
		} else {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(think/2 + time.Duration(rng.Int63n(int64(think)+1)))
	}
}

func main() {
	var (
		addr      = flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
		clients   = flag.Int("clients", 8, "load generator goroutines (0: no load)")
		workers   = flag.Int("workers", 4, "audit worker goroutines")
		accounts  = flag.Int("accounts", 4, "accounts (account 1 is hot)")
		dbLatency = flag.Duration("db-latency", 40*time.Millisecond, "mean simulated query time")
		think     = flag.Duration("think", 20*time.Millisecond, "mean pause between a client's requests")
		lifetime  = flag.Duration("lifetime", 10*time.Minute, "exit after this long (0: never)")
		verbose   = flag.Bool("verbose", false, "print stats on stderr every second")
	)
	flag.Parse()
	if *accounts < 1 {
		*accounts = 1
	}

	s := newServer(*accounts, 64, *dbLatency, *verbose)
	mux := http.NewServeMux()
	mux.HandleFunc("/transfer", s.handle)
	mux.HandleFunc("/stats", s.serveStats)
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(2)
	}
	go func() {
		err := http.Serve(ln, mux)
		fmt.Fprintln(os.Stderr, "service: serve:", err)
		os.Exit(2)
	}()
	for i := 0; i < *workers; i++ {
		go worker(i, s, s.jobs)
	}
	go reportStats(s, time.Second)

	baseURL := "http://" + ln.Addr().String()
	var ok atomic.Uint64
	for i := 0; i < *clients; i++ {
		go loadGenerator(i, baseURL, *accounts, *think, &ok)
	}
	// Ready once requests flow (or at once without load).
	deadline := time.Now().Add(20 * time.Second)
	for *clients > 0 && ok.Load() < uint64(*clients) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	out, _ := json.Marshal(map[string]any{
		"schema":        1,
		"program":       "demo-service",
		"pid":           os.Getpid(),
		"addr":          ln.Addr().String(),
		"url":           baseURL,
		"go_version":    runtime.Version(),
		"clients":       *clients,
		"workers":       *workers,
		"accounts":      *accounts,
		"db_latency_ms": dbLatency.Milliseconds(),
		"requests_ok":   ok.Load(),
		"endpoints":     []string{"/transfer", "/stats", "/debug/pprof/"},
		"functions": []string{
			"main.(*Server).handle", "main.(*Server).lockAccount", "main.(*Server).queryDB",
			"main.worker", "main.audit", "main.reportStats", "main.loadGenerator",
		},
	})
	fmt.Printf("READY %s\n", out)

	if *lifetime > 0 {
		time.Sleep(*lifetime)
		os.Exit(0)
	}
	for {
		time.Sleep(time.Hour)
	}
}
