package hubspottest

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults injects failures into one portal's API. Set it with Portal.Faults;
// the zero value injects nothing.
type Faults struct {
	// ErrorRate is the fraction (0..1) of matching requests answered with
	// ErrorStatus instead of being served.
	ErrorRate float64
	// ErrorStatus is the status of injected errors (default 500; 502, 503,
	// 504 and 423 are useful too).
	ErrorStatus int
	// NextErrors answers the next N matching requests with ErrorStatus.
	NextErrors int
	// Latency is added before every matching request is handled.
	Latency time.Duration
	// Storm429 answers every matching request with a TEN_SECONDLY_ROLLING 429
	// until the faults are replaced.
	Storm429 bool
	// Next429 answers the next N matching requests with a
	// TEN_SECONDLY_ROLLING 429.
	Next429 int
	// Method and PathPrefix restrict the faults to matching requests; the
	// prefix applies to the canonical path (/crm/v3/..., /crm/v4/...), so
	// "/crm/v3/objects/companies/batch" also matches the date-versioned path.
	Method     string
	PathPrefix string
	// Seed makes ErrorRate's choices reproducible (default 1).
	Seed int64
}

type faultState struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func (fs *faultState) set(f Faults) {
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	fs.mu.Lock()
	fs.f = f
	fs.rng = rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	fs.mu.Unlock()
}

// decision is what faults do to one request.
type decision struct {
	latency time.Duration
	fail    int  // status to fail with, 0 for none
	storm   bool // answer 429
}

func (fs *faultState) decide(r *http.Request) decision {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := &fs.f
	if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
		return decision{}
	}
	if f.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, canonicalPath(f.PathPrefix)) {
		return decision{}
	}
	d := decision{latency: f.Latency}
	status := f.ErrorStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	switch {
	case f.Storm429:
		d.storm = true
	case f.Next429 > 0:
		f.Next429--
		d.storm = true
	case f.NextErrors > 0:
		f.NextErrors--
		d.fail = status
	case f.ErrorRate > 0 && fs.rng != nil && fs.rng.Float64() < f.ErrorRate:
		d.fail = status
	}
	return d
}

// applyFaults applies the portal's faults to r. It reports whether it wrote
// the response itself.
func (p *Portal) applyFaults(w http.ResponseWriter, r *http.Request, ti *tokenInfo) bool {
	d := p.faults.decide(r)
	if d.latency > 0 {
		t := time.NewTimer(d.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	switch {
	case d.storm:
		p.stats.fault()
		p.stats.rateLimited(PolicyTenSecondly)
		p.stats.status(http.StatusTooManyRequests)
		p.limiter.setHeaders(w, ti, 0)
		write429(w, PolicyTenSecondly, "You have reached your ten_secondly_rolling limit.")
		return true
	case d.fail != 0:
		p.stats.fault()
		p.stats.status(d.fail)
		writeError(w, newAPIError(d.fail, "INTERNAL_ERROR", "Internal error (injected by the sandbox)."))
		return true
	}
	return false
}
