// Package mappingtest is an in-memory MappingService for tests and benchmarks: per portal, a
// table of domain → HubSpot company id (what the matcher would answer from its CRM mirror).
package mappingtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
)

// Server implements BatchResolveAccounts and ResolveAccount over its tables.
type Server struct {
	mappingv1.UnimplementedMappingServiceServer

	// Latency is added to every call (to widen race windows in tests).
	Latency time.Duration
	// Fail, when it returns an error for a portal, makes that portal's calls fail with it.
	Fail func(portal string) error

	mu       sync.RWMutex
	portals  map[string]map[string]string
	inflight map[string]int
	peak     map[string]int
	calls    atomic.Int64
}

// New returns an empty Server.
func New() *Server {
	return &Server{portals: map[string]map[string]string{}, inflight: map[string]int{}, peak: map[string]int{}}
}

// Set maps domain to companyID in the portal ("" removes the domain).
func (s *Server) Set(portal, domain, companyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.portals[portal]
	if m == nil {
		m = map[string]string{}
		s.portals[portal] = m
	}
	if companyID == "" {
		delete(m, domain)
		return
	}
	m[domain] = companyID
}

// Calls is the number of calls served.
func (s *Server) Calls() int64 { return s.calls.Load() }

// PeakConcurrency is the most calls for the portal that were in flight at once.
func (s *Server) PeakConcurrency(portal string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.peak[portal]
}

func (s *Server) enter(portal string) func() {
	s.calls.Add(1)
	s.mu.Lock()
	s.inflight[portal]++
	s.peak[portal] = max(s.peak[portal], s.inflight[portal])
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.inflight[portal]--
		s.mu.Unlock()
	}
}

func (s *Server) answer(portal string, q *mappingv1.AccountQuery) *mappingv1.AccountAnswer {
	if q.GetDomain() == "" {
		return &mappingv1.AccountAnswer{Error: "account.domain is required", UnmatchedReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_DOMAIN}
	}
	m, ok := s.portals[portal]
	if !ok {
		return &mappingv1.AccountAnswer{UnmatchedReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_PORTAL_NOT_MIRRORED}
	}
	for _, d := range append([]string{q.GetDomain()}, q.GetAliases()...) {
		if id, ok := m[d]; ok {
			return &mappingv1.AccountAnswer{Company: &signalsv1.CompanyMatch{CompanyId: id,
				Evidence: &signalsv1.MatchEvidence{MatchedDomain: d, MatchedProperty: "domain"}}}
		}
	}
	return &mappingv1.AccountAnswer{UnmatchedReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY}
}

func (s *Server) wait(ctx context.Context) error {
	if s.Latency <= 0 {
		return nil
	}
	t := time.NewTimer(s.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BatchResolveAccounts answers in request order.
func (s *Server) BatchResolveAccounts(ctx context.Context, req *mappingv1.BatchResolveAccountsRequest) (*mappingv1.BatchResolveAccountsResponse, error) {
	defer s.enter(req.GetPortalId())()
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	if s.Fail != nil {
		if err := s.Fail(req.GetPortalId()); err != nil {
			return nil, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := &mappingv1.BatchResolveAccountsResponse{Answers: make([]*mappingv1.AccountAnswer, len(req.GetAccounts()))}
	for i, q := range req.GetAccounts() {
		out.Answers[i] = s.answer(req.GetPortalId(), q)
	}
	return out, nil
}

// ResolveAccount answers one query.
func (s *Server) ResolveAccount(ctx context.Context, req *mappingv1.ResolveAccountRequest) (*mappingv1.ResolveAccountResponse, error) {
	defer s.enter(req.GetPortalId())()
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &mappingv1.ResolveAccountResponse{Answer: s.answer(req.GetPortalId(), req.GetAccount())}, nil
}
