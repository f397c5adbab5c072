package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

// DefaultBaseURL is HubSpot's API host.
const DefaultBaseURL = "https://api.hubapi.com"

// Config configures a Client. Auth is required.
type Config struct {
	// BaseURL is the API root; default DefaultBaseURL.
	BaseURL string
	// APIVersion selects the path scheme: "v3" (default) uses the numbered
	// paths (/crm/v3/objects/..., /crm/v4/associations/...); a date version
	// such as "2026-03" or "2026-09" uses /crm/objects/2026-09/... and
	// /crm/associations/2026-09/....
	APIVersion string
	// PortalID is the HubSpot account this client works on; it keys the
	// quota governor. Required when Governor is set.
	PortalID int64
	// Auth puts credentials on each request: BearerToken or OAuth.
	Auth Auth
	// Governor, when set, admits every request against the portal's shared
	// quota before it is sent and learns from HubSpot's rate-limit headers.
	Governor *quota.Governor
	// DefaultClass is the priority of calls whose context carries none (see
	// WithClass); default quota.Bulk, so unmarked work never eats the
	// reserves kept for interactive and webhook-driven calls.
	DefaultClass quota.Class
	// HTTPClient sends requests; its transport is wrapped with otelhttp.
	// Default: a client with a 60 s timeout over http.DefaultTransport.
	HTTPClient *http.Client
	// MaxRetries bounds the retries of one call (not counting the first
	// attempt); default 5. Set -1 to disable retries.
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay shape the jittered exponential backoff
	// for 5xx, 423 and network errors; defaults 250 ms and 30 s.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// RetryNonIdempotent also retries creates (single and batch create,
	// import start) after 5xx responses and network errors. Off by default:
	// when HubSpot processed the first attempt, the retry duplicates records.
	// 429, 423 and connection failures before sending are always retried.
	RetryNonIdempotent bool
	// UserAgent is sent with every request; default "signalbridge-hubspot".
	UserAgent string
	// Logger receives retry decisions at debug level; default slog.Default().
	Logger *slog.Logger
	// Now is the clock (daily-reset computation); default time.Now.
	Now func() time.Time
	// MeterProvider receives the client's metrics (calls, durations, retries,
	// 429s by policy, quota waits) and otelhttp's; default: none recorded.
	MeterProvider metric.MeterProvider
	// TracerProvider receives otelhttp's client spans; default: the global one.
	TracerProvider trace.TracerProvider
}

// Client is a typed HubSpot API client for one portal. It is safe for
// concurrent use.
type Client struct {
	base    *url.URL
	version string // "v3" or a date version
	portal  int64
	auth    Auth
	gov     *quota.Governor
	class   quota.Class
	hc      *http.Client
	retries int
	backoff struct{ base, max time.Duration }
	unsafe  bool
	ua      string
	log     *slog.Logger
	now     func() time.Time
	metrics *clientMetrics
}

var dateVersionRE = regexp.MustCompile(`^\d{4}-\d{2}$`)

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Auth == nil {
		return nil, errors.New("hubspot: Config.Auth is required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("hubspot: Config.BaseURL %q is not an absolute URL", cfg.BaseURL)
	}
	switch {
	case cfg.APIVersion == "":
		cfg.APIVersion = "v3"
	case cfg.APIVersion == "v3", dateVersionRE.MatchString(cfg.APIVersion):
	default:
		return nil, fmt.Errorf("hubspot: Config.APIVersion %q: want \"v3\" or a date version like \"2026-09\"", cfg.APIVersion)
	}
	if cfg.Governor != nil {
		if cfg.PortalID <= 0 {
			return nil, errors.New("hubspot: Config.PortalID is required with a Governor")
		}
		if _, err := cfg.Governor.Limits(cfg.PortalID); err != nil {
			return nil, fmt.Errorf("hubspot: Config.Governor: %w", err)
		}
	}
	if cfg.DefaultClass == 0 {
		cfg.DefaultClass = quota.Bulk
	}
	if !cfg.DefaultClass.Valid() {
		return nil, fmt.Errorf("hubspot: Config.DefaultClass %d is not a quota class", int(cfg.DefaultClass))
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = 5
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = 250 * time.Millisecond
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = 30 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "signalbridge-hubspot"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		hc = &cp
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	httpOpts := []otelhttp.Option{otelhttp.WithSpanNameFormatter(spanName)}
	if cfg.MeterProvider != nil {
		httpOpts = append(httpOpts, otelhttp.WithMeterProvider(cfg.MeterProvider))
	}
	if cfg.TracerProvider != nil {
		httpOpts = append(httpOpts, otelhttp.WithTracerProvider(cfg.TracerProvider))
	}
	hc.Transport = otelhttp.NewTransport(rt, httpOpts...)
	metrics, err := newClientMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("hubspot: metrics: %w", err)
	}
	c := &Client{
		base: base, version: cfg.APIVersion, portal: cfg.PortalID, auth: cfg.Auth,
		gov: cfg.Governor, class: cfg.DefaultClass, hc: hc, retries: cfg.MaxRetries,
		unsafe: cfg.RetryNonIdempotent, ua: cfg.UserAgent,
		log: cfg.Logger.With("component", "hubspot", "portal", cfg.PortalID), now: cfg.Now,
		metrics: metrics,
	}
	c.backoff.base, c.backoff.max = cfg.RetryBaseDelay, cfg.RetryMaxDelay
	return c, nil
}

// PortalID returns the portal the client works on.
func (c *Client) PortalID() int64 { return c.portal }

type classKey struct{}

// WithClass returns a context whose HubSpot calls run at the given priority.
func WithClass(ctx context.Context, class quota.Class) context.Context {
	return context.WithValue(ctx, classKey{}, class)
}

func (c *Client) classOf(ctx context.Context) quota.Class {
	if cl, ok := ctx.Value(classKey{}).(quota.Class); ok && cl.Valid() {
		return cl
	}
	return c.class
}

type opKey struct{}

// spanName names client spans by operation ("hubspot batch.update") rather
// than by URL, which holds ids.
func spanName(_ string, r *http.Request) string {
	if op, ok := r.Context().Value(opKey{}).(string); ok {
		return "hubspot " + op
	}
	return "hubspot " + r.Method
}

// ---- paths ----

func (c *Client) dated() bool { return c.version != "v3" }

func escape(segments []string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// objectsPath is /crm/v3/objects/{type}/... or /crm/objects/{version}/{type}/....
func (c *Client) objectsPath(t ObjectType, rest ...string) string {
	segs := append([]string{string(t)}, rest...)
	if c.dated() {
		return "/crm/objects/" + c.version + escape(segs)
	}
	return "/crm/v3/objects" + escape(segs)
}

// crmPath is /crm/v3/{area}/... or /crm/{area}/{version}/... for properties,
// owners, lists and imports.
func (c *Client) crmPath(area string, rest ...string) string {
	if c.dated() {
		return "/crm/" + area + "/" + c.version + escape(rest)
	}
	return "/crm/v3/" + area + escape(rest)
}

// assocPath is /crm/v4/associations/... or /crm/associations/{version}/....
func (c *Client) assocPath(rest ...string) string {
	if c.dated() {
		return "/crm/associations/" + c.version + escape(rest)
	}
	return "/crm/v4/associations" + escape(rest)
}

// assocObjectPath is /crm/v4/objects/{type}/{id}/associations/... or
// /crm/objects/{version}/{type}/{id}/associations/....
func (c *Client) assocObjectPath(t ObjectType, id string, rest ...string) string {
	segs := append([]string{string(t), id, "associations"}, rest...)
	if c.dated() {
		return "/crm/objects/" + c.version + escape(segs)
	}
	return "/crm/v4/objects" + escape(segs)
}

// ---- requests ----

// call describes one API operation.
type call struct {
	op     string // span / log name, e.g. "objects.batch.update"
	method string
	path   string
	query  url.Values
	// in is JSON-encoded as the body when non-nil.
	in any
	// body produces a fresh body per attempt (multipart uploads); it wins
	// over in.
	body func() (io.Reader, string, error)
	// out receives the JSON of a 2xx response; nil discards it.
	out  any
	kind quota.Kind
	// create marks non-idempotent calls (see Config.RetryNonIdempotent).
	create bool
}

// do sends the call with governor admission, retries and error mapping. It
// returns the 2xx status code.
func (c *Client) do(ctx context.Context, cl call) (status int, err error) {
	began := time.Now()
	defer func() { c.metrics.finished(ctx, cl.op, began, err) }()
	var payload []byte
	if cl.in != nil && cl.body == nil {
		var err error
		if payload, err = json.Marshal(cl.in); err != nil {
			return 0, fmt.Errorf("hubspot: %s: encode request: %w", cl.op, err)
		}
	}
	ctx = context.WithValue(ctx, opKey{}, cl.op)
	class := c.classOf(ctx)
	for attempt := 1; ; attempt++ {
		if c.gov != nil {
			waitFrom := time.Now()
			err := c.gov.Wait(ctx, c.portal, class, cl.kind)
			c.metrics.waited(ctx, class, time.Since(waitFrom))
			if err != nil {
				return 0, fmt.Errorf("hubspot: %s: quota: %w", cl.op, err)
			}
		}
		status, wait, err := c.attempt(ctx, cl, payload, attempt)
		if err == nil {
			return status, nil
		}
		if wait < 0 || attempt > c.retries {
			return 0, c.final(cl, err)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The retry could not finish in time: report the real failure
			// now rather than a context deadline later.
			return 0, c.final(cl, err)
		}
		c.log.DebugContext(ctx, "hubspot retry", "op", cl.op, "attempt", attempt, "wait", wait, "err", err)
		c.metrics.retried(ctx, cl.op, err)
		if err := sleep(ctx, wait); err != nil {
			return 0, fmt.Errorf("hubspot: %s: %w", cl.op, err)
		}
	}
}

// final wraps the last error of a call.
func (c *Client) final(cl call, err error) error {
	var he *Error
	if errors.As(err, &he) {
		return err // already names method and path
	}
	return fmt.Errorf("hubspot: %s %s %s: %w", cl.op, cl.method, cl.path, err)
}

// attempt sends the call once. It returns the status on success, or an error
// and how long to wait before retrying (-1: do not retry).
func (c *Client) attempt(ctx context.Context, cl call, payload []byte, n int) (int, time.Duration, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + cl.path // segments are escaped already
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return 0, -1, fmt.Errorf("bad path %q: %w", u.RawPath, err)
	}
	u.Path = p
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	var body io.Reader
	contentType := ""
	switch {
	case cl.body != nil:
		r, ct, err := cl.body()
		if err != nil {
			return 0, -1, err
		}
		body, contentType = r, ct
	case payload != nil:
		body, contentType = bytes.NewReader(payload), "application/json"
	}
	closeBody := func() {
		if rc, ok := body.(io.Closer); ok { // stops a streaming body's writer
			_ = rc.Close()
		}
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		closeBody()
		return 0, -1, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if err := c.auth.Authorize(req); err != nil {
		closeBody()
		return 0, -1, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, -1, ctx.Err()
		}
		if !c.retryableTransport(err, cl) {
			return 0, -1, err
		}
		return 0, c.backoffFor(n, 0), err
	}
	defer resp.Body.Close()
	if c.gov != nil && cl.kind == quota.Normal {
		c.gov.Observe(c.portal, resp.Header)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if cl.out == nil || resp.StatusCode == http.StatusNoContent {
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode, 0, nil
		}
		if err := json.NewDecoder(resp.Body).Decode(cl.out); err != nil {
			return 0, -1, fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
		}
		return resp.StatusCode, 0, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	he := parseError(resp, raw)
	he.Attempts = n
	wait := c.retryDelay(he, resp.Header, cl, n)
	if wait >= 0 && he.RetryAfter == 0 {
		he.RetryAfter = wait
	}
	return 0, wait, he
}

// retryDelay decides whether an error response is retried and after how
// long; -1 means never.
func (c *Client) retryDelay(he *Error, h http.Header, cl call, attempt int) time.Duration {
	retryAfter := parseRetryAfter(h.Get("Retry-After"))
	switch code := he.StatusCode; {
	case code == http.StatusTooManyRequests:
		return c.rateLimited(he, h, cl)
	case code == http.StatusLocked: // 423: record locked, wait at least 2 s
		return max(c.backoffFor(attempt, 2*time.Second), retryAfter)
	case code == 477: // migration in progress: Retry-After in seconds
		return max(c.backoffFor(attempt, time.Second), retryAfter)
	case code >= 500 && (!cl.create || c.unsafe):
		return max(c.backoffFor(attempt, 0), retryAfter)
	case code >= 500:
		// Report when a retry might help, even though we do not retry.
		he.RetryAfter = c.backoffFor(attempt, 0)
		return -1
	}
	return -1
}

// rateLimited handles a 429 by policy.
func (c *Client) rateLimited(he *Error, h http.Header, cl call) time.Duration {
	c.metrics.limited(context.Background(), c.portal, he.PolicyName)
	switch {
	case he.PolicyName == PolicyDaily:
		until := c.nextDailyReset()
		if c.gov != nil {
			c.gov.DailyExhausted(c.portal, until)
		}
		he.RetryAfter = until.Sub(c.now())
		return -1
	case he.PolicyName == PolicySecondly || cl.kind == quota.Search:
		he.RetryAfter = time.Second
		if c.gov != nil {
			c.gov.Throttle(c.portal, quota.Search, time.Second)
			return jitterUp(50 * time.Millisecond) // the governor waits out the second
		}
		return time.Second + jitterUp(100*time.Millisecond)
	default: // TEN_SECONDLY_ROLLING or unknown: wait out the window
		window := 10 * time.Second
		if ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 {
			window = time.Duration(ms) * time.Millisecond
		}
		if ra := parseRetryAfter(h.Get("Retry-After")); ra > 0 {
			window = ra
		}
		he.RetryAfter = window
		if c.gov != nil {
			c.gov.Throttle(c.portal, quota.Normal, window)
			return jitterUp(50 * time.Millisecond) // the governor waits out the window
		}
		return window + jitterUp(window/10)
	}
}

// nextDailyReset is when a DAILY 429 lifts: the governor knows the portal's
// zone; without one, midnight UTC.
func (c *Client) nextDailyReset() time.Time {
	if c.gov != nil {
		return c.gov.NextDailyReset(c.portal)
	}
	y, m, d := c.now().UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// retryableTransport reports whether a transport error may be retried.
// Connection failures before anything was sent are always safe; other
// network errors (timeouts, resets) only for idempotent calls.
func (c *Client) retryableTransport(err error, cl call) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if cl.create && !c.unsafe {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

// backoffFor is full-jitter exponential backoff: a random delay in
// [d/2, d] with d = base·2^(attempt-1), capped at max, and at least floor.
func (c *Client) backoffFor(attempt int, floor time.Duration) time.Duration {
	d := c.backoff.base << min(attempt-1, 20)
	if d > c.backoff.max || d <= 0 {
		d = c.backoff.max
	}
	d = d/2 + jitterUp(d/2)
	return max(d, floor)
}

func jitterUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
