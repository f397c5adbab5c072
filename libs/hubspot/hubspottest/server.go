package hubspottest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configures a sandbox Server. The zero value is a usable,
// HubSpot-like configuration.
type Options struct {
	// Clock returns the current time (default time.Now). It drives record
	// timestamps, rate-limit windows, search-index lag, OAuth token expiry
	// and the X-HubSpot-Request-Timestamp of webhook deliveries.
	Clock func() time.Time
	// SearchIndexLag delays the visibility of writes in search results
	// (default 0: search sees every write at once).
	SearchIndexLag time.Duration
	// Logger receives the sandbox's own log lines (default: discarded).
	Logger *slog.Logger
	// DisableRateLimits turns off the per-portal rate limits. By default
	// they are enforced like HubSpot's.
	DisableRateLimits bool

	// WebhookRetryBase is the first retry delay of a failed webhook
	// delivery; each further retry doubles it (default 1 minute, which with
	// 10 retries spreads over ~17 hours like HubSpot). Tests shrink it.
	WebhookRetryBase time.Duration
	// WebhookMaxRetries bounds the retries of one delivery (default 10).
	WebhookMaxRetries int
	// WebhookTimeout bounds one delivery request (default 5 s, as HubSpot).
	WebhookTimeout time.Duration
	// WebhookFlushInterval is how long events wait to be batched before
	// delivery (default 50 ms).
	WebhookFlushInterval time.Duration
	// WebhookClient sends webhook deliveries (default: a plain client with
	// WebhookTimeout).
	WebhookClient *http.Client

	// ImportDelay is the pause before an import moves from STARTED to
	// PROCESSING and again before it finishes (default 20 ms).
	ImportDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WebhookRetryBase <= 0 {
		o.WebhookRetryBase = time.Minute
	}
	if o.WebhookMaxRetries <= 0 {
		o.WebhookMaxRetries = 10
	}
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = 5 * time.Second
	}
	if o.WebhookFlushInterval <= 0 {
		o.WebhookFlushInterval = 50 * time.Millisecond
	}
	if o.WebhookClient == nil {
		o.WebhookClient = &http.Client{Timeout: o.WebhookTimeout}
	}
	if o.ImportDelay <= 0 {
		o.ImportDelay = 20 * time.Millisecond
	}
	return o
}

// Server is an in-process fake of HubSpot's API for many portals.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port) of a server started by New
	// or NewTest; it is empty for NewUnstarted.
	URL string

	opts   Options
	log    *slog.Logger
	kinds  *kindRegistry
	atypes *assocRegistry
	mux    *http.ServeMux
	routes map[string]routeKind
	hs     *httptest.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	portals map[int64]*Portal
	tokens  map[string]*tokenInfo
	apps    map[int64]*app

	seq       atomic.Int64 // portal/app/owner id allocation
	eventSeq  atomic.Int64 // webhook event ids
	closeOnce sync.Once
}

// New starts a sandbox on 127.0.0.1 with a random port, like httptest.NewServer.
// Call Close when done.
func New(opts Options) *Server {
	s := NewUnstarted(opts)
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	return s
}

// NewTest starts a sandbox and closes it when the test ends.
func NewTest(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

// NewUnstarted builds a sandbox without a listener; serve Handler() on a
// listener of your own (the hubspot-sandbox binary does). Close still stops
// the background work (imports, webhook delivery).
func NewUnstarted(opts Options) *Server {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		kinds:   newKindRegistry(),
		atypes:  newAssocRegistry(),
		mux:     http.NewServeMux(),
		routes:  map[string]routeKind{},
		ctx:     ctx,
		cancel:  cancel,
		portals: map[int64]*Portal{},
		tokens:  map[string]*tokenInfo{},
		apps:    map[int64]*app{},
	}
	s.seq.Store(1000)
	s.registerRoutes()
	return s
}

// Handler returns the sandbox's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// Close stops the listener (if any) and the background work.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		if s.hs != nil {
			s.hs.Close()
		}
		s.wg.Wait()
	})
}

func (s *Server) now() time.Time { return s.opts.Clock() }

// Portal returns the portal with the given id.
func (s *Server) Portal(id int64) (*Portal, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.portals[id]
	return p, ok
}

// Portals lists all portals, in no particular order.
func (s *Server) Portals() []*Portal {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Portal, 0, len(s.portals))
	for _, p := range s.portals {
		out = append(out, p)
	}
	return out
}

// routeKind says how the front handler authenticates a route.
type routeKind int

const (
	routePublic routeKind = iota // no auth (OAuth token endpoint)
	routePortal                  // bearer token selects the portal
	routeSearch                  // portal route under the search rate limit
	routeApp                     // developer (app) route: webhooks settings
)

// portalHandler is the signature of handlers behind portal auth.
type portalHandler func(c *call, w http.ResponseWriter, r *http.Request)

// call is the authenticated context of one portal request.
type call struct {
	p       *Portal
	auth    *tokenInfo
	pattern string
}

type callKey struct{}

func (s *Server) handle(pattern string, kind routeKind, h portalHandler) {
	s.routes[pattern] = kind
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callKey{}).(*call)
		h(c, w, r)
	})
}

func (s *Server) handlePlain(pattern string, kind routeKind, h http.HandlerFunc) {
	s.routes[pattern] = kind
	s.mux.HandleFunc(pattern, h)
}

// versionRE matches a date-based API version segment such as 2026-09.
var versionRE = regexp.MustCompile(`^\d{4}-\d{2}$`)

// canonicalPath maps HubSpot's date-versioned paths onto the numbered ones,
// so one handler serves both:
//
//	/crm/objects/2026-09/{type}/{id}/associations/... -> /crm/v4/objects/...
//	/crm/objects/2026-09/...                          -> /crm/v3/objects/...
//	/crm/{properties,owners,lists,imports}/2026-09    -> /crm/v3/...
//	/crm/associations/2026-09/...                     -> /crm/v4/associations/...
//	/app-webhooks/2026-09/...                         -> /webhooks/v3/...
func canonicalPath(p string) string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "crm" && versionRE.MatchString(parts[2]):
		rest := parts[3:]
		switch parts[1] {
		case "objects":
			if len(rest) >= 3 && rest[2] == "associations" {
				return "/crm/v4/objects/" + strings.Join(rest, "/")
			}
			return joinPath("/crm/v3/objects", rest)
		case "properties", "owners", "lists", "imports":
			return joinPath("/crm/v3/"+parts[1], rest)
		case "associations":
			return joinPath("/crm/v4/associations", rest)
		}
	case len(parts) >= 2 && parts[0] == "app-webhooks" && versionRE.MatchString(parts[1]):
		return joinPath("/webhooks/v3", parts[2:])
	}
	return p
}

func joinPath(base string, rest []string) string {
	if len(rest) == 0 {
		return base
	}
	return base + "/" + strings.Join(rest, "/")
}

// ServeHTTP implements http.Handler: it canonicalises the path, authenticates,
// applies faults and rate limits, then dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if esc := r.URL.EscapedPath(); canonicalPath(esc) != esc {
		canon := canonicalPath(esc)
		if unescaped, err := url.PathUnescape(canon); err == nil {
			r.URL.Path, r.URL.RawPath = unescaped, canon
		}
	}
	h, pattern := s.mux.Handler(r)
	kind, known := s.routes[pattern]
	if !known {
		if pattern == "" {
			// Let the mux answer 404/405 for unknown paths and methods.
			h.ServeHTTP(w, r)
			return
		}
		writeError(w, notFoundError("Resource not found: %s %s", r.Method, r.URL.Path))
		return
	}
	switch kind {
	case routePublic:
		s.mux.ServeHTTP(w, r)
	case routeApp:
		s.serveApp(w, r)
	default:
		s.servePortal(w, r, pattern, kind == routeSearch)
	}
}

func (s *Server) servePortal(w http.ResponseWriter, r *http.Request, pattern string, search bool) {
	ti, err := s.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	p := ti.portal
	p.stats.request(pattern)

	if injected := p.applyFaults(w, r, ti); injected {
		return
	}
	if !s.opts.DisableRateLimits {
		if blocked := p.limiter.admit(w, ti, search, s.now()); blocked != "" {
			p.stats.rateLimited(blocked)
			p.stats.status(http.StatusTooManyRequests)
			return
		}
	}
	if search {
		p.stats.search()
	}
	c := &call{p: p, auth: ti, pattern: pattern}
	rec := &statusRecorder{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
	p.stats.status(rec.status)
}

// errUnauthenticated is HubSpot's 401 body for missing or unknown credentials.
func errUnauthenticated() *apiError {
	return newAPIError(http.StatusUnauthorized, "INVALID_AUTHENTICATION",
		"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
}

// authenticate resolves the bearer token to a portal.
func (s *Server) authenticate(r *http.Request) (*tokenInfo, *apiError) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(h, "bearer ")
	}
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return nil, errUnauthenticated()
	}
	s.mu.RLock()
	ti, found := s.tokens[token]
	s.mu.RUnlock()
	if !found {
		return nil, errUnauthenticated()
	}
	if ti.oauth {
		if now := s.now(); !now.Before(ti.expires) {
			ago := int(now.Sub(ti.expires).Minutes())
			return nil, newAPIError(http.StatusUnauthorized, "EXPIRED_AUTHENTICATION",
				fmt.Sprintf("The OAuth token used to make this call expired %d minute(s) ago.", ago))
		}
	}
	return ti, nil
}
