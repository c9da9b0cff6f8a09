package main

import (
	"net/http"
	"sync"
)

// Server is the fixture's bank: handlers take an account's lock to move money.
type Server struct {
	mu       sync.Mutex
	accounts map[int64]float64
}

type Request struct {
	Path string
	User string
	Body []byte
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	req := parse(r)
	account := int64(7)
	s.lockAccount(account)
	defer s.mu.Unlock()
	s.transfer(account, 12.5)
	w.WriteHeader(http.StatusOK)
	_ = req
}

func (s *Server) lockAccount(account int64) {
	s.mu.Lock()
	_ = account
}

func (s *Server) transfer(fromAccount int64, amount float64) {
	s.accounts[fromAccount] -= amount
	for i := 0; i < 1000000; i++ {
		s.accounts[fromAccount] += 0
	}
}

func parse(r *http.Request) Request {
	return Request{Path: r.URL.Path, User: r.Header.Get("X-User")}
}
