// Package receiver serves HubSpot's webhook deliveries: it decodes the body,
// finds each event's portal, verifies the request's signature with the
// secret of the portal's app, and publishes every event as one
// signalbridge.hubspot.v1.HubSpotEvent, all events of a request in one
// JetStream atomic batch. The answer is 200 only after JetStream has stored
// the batch. Requests that arrive while a batch is being stored are merged
// into the next one (merge.go): each atomic batch costs the server fsyncs
// and a staging store whatever its size.
//
// Status codes: 200 stored (or already stored, or for portals we do not
// serve: acknowledged and dropped); 400 the body is not a JSON array of 1 to
// 100 valid events of one app; 401 missing, wrong or stale signature, or an
// app that is not the portal's; 405 not POST; 413 body over the limit; 415
// not JSON; 503 JetStream unavailable or the portal's secret cannot be
// resolved (HubSpot retries); 500 anything else (HubSpot retries too).
package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// Rejection and drop reasons besides the Decode reasons (metric attribute
// "reason" and the "code" of error responses).
const (
	ReasonMethodNotAllowed  = "method_not_allowed"
	ReasonUnsupportedMedia  = "unsupported_media_type"
	ReasonTooLarge          = "too_large"
	ReasonReadFailed        = "read_failed"
	ReasonSignatureMissing  = "signature_missing"
	ReasonSignatureMismatch = "signature_mismatch"
	ReasonSignatureExpired  = "signature_expired"
	ReasonSignatureVersion  = "signature_version"
	ReasonAppMismatch       = "app_mismatch"
	ReasonSecretUnavailable = "secret_unavailable"
	ReasonUnavailable       = "unavailable"
	ReasonInternal          = "internal"

	// Events acknowledged without publishing.
	ReasonUnknownPortal     = "unknown_portal"
	ReasonWebhooksNotConfig = "webhooks_not_configured"
)

// defaultCommits is Options.Commits' default. The server stores a stream's
// batches one after the other, so a second commit in flight only takes
// requests from the next merged batch (measured: no better, often worse).
const defaultCommits = 1

// Portals is the live portal configuration (a *portal.Registry).
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
}

// Publisher stores a batch of messages atomically (a *natsx.Publisher):
// PublishBatch one request's, PublishMerged several requests' together.
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error)
	PublishMerged(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error)
}

// Secrets resolves a secret name from a portal config to its value.
type Secrets func(name string) (string, bool)

// Options tune the handler. Zero values take the defaults noted.
type Options struct {
	// MaxBodyBytes bounds the request body (default 1 MiB).
	MaxBodyBytes int64
	// PublicBaseURL is scheme://host[/prefix] as HubSpot calls us; when set,
	// the signed URI is PublicBaseURL + the request's path and query.
	PublicBaseURL string
	// TrustForwarded takes the signed URI's scheme and host from
	// X-Forwarded-Proto and X-Forwarded-Host (behind a trusted proxy).
	TrustForwarded bool
	// MaxSignatureAge bounds how old a v3 timestamp may be (default 5m).
	MaxSignatureAge time.Duration
	// PublishTimeout bounds the wait for JetStream (default 4s, inside
	// HubSpot's 5 s delivery timeout).
	PublishTimeout time.Duration
	// RetryAfter is sent with 503 answers (default 5s).
	RetryAfter time.Duration
	// MaxBatchEvents bounds the events of concurrent requests merged into
	// one atomic batch (default and maximum natsx.MaxBatchSize).
	MaxBatchEvents int
	// Commits bounds the atomic batches being committed at once; requests
	// arriving meanwhile are merged into the next (default 1).
	Commits int
	// Producer is written into every EventMeta ("webhook-receiver/0.1.0").
	Producer string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Handler is the webhook endpoint. It is safe for concurrent use.
type Handler struct {
	portals Portals
	secrets Secrets
	pub     Publisher
	merge   *merger
	opts    Options
	log     *slog.Logger
	m       metrics
}

type metrics struct {
	received   metric.Int64Counter
	published  metric.Int64Counter
	duplicates metric.Int64Counter
	unknown    metric.Int64Counter
	rejected   metric.Int64Counter
	latency    metric.Float64Histogram
}

// New returns the handler.
func New(portals Portals, secrets Secrets, pub Publisher, opts Options, meter metric.Meter, log *slog.Logger) (*Handler, error) {
	if portals == nil || secrets == nil || pub == nil {
		return nil, errors.New("receiver: portals, secrets and publisher are required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxSignatureAge <= 0 {
		opts.MaxSignatureAge = hubspot.DefaultMaxSignatureAge
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 4 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.MaxBatchEvents <= 0 || opts.MaxBatchEvents > natsx.MaxBatchSize {
		opts.MaxBatchEvents = natsx.MaxBatchSize
	}
	if opts.Commits <= 0 {
		opts.Commits = defaultCommits
	}
	if opts.Producer == "" {
		opts.Producer = "webhook-receiver"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.PublicBaseURL = strings.TrimSuffix(opts.PublicBaseURL, "/")
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{portals: portals, secrets: secrets, pub: pub, merge: newMerger(pub, opts.MaxBatchEvents, opts.Commits), opts: opts, log: log}
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("1"))
		return c
	}
	h.m.received = counter("signalbridge.webhook.events.received", "HubSpot webhook events in well-formed requests.")
	h.m.published = counter("signalbridge.webhook.events.published", "HubSpot events stored in JetStream (new, not duplicates), by echo.")
	h.m.duplicates = counter("signalbridge.webhook.events.duplicates", "HubSpot events JetStream already had (HubSpot retries).")
	h.m.unknown = counter("signalbridge.webhook.events.unknown_portal", "Events for portals not served (or not set up for webhooks): acknowledged, not published.")
	h.m.rejected = counter("signalbridge.webhook.requests.rejected", "Webhook requests answered with an error, by reason and status.")
	if err == nil {
		h.m.latency, err = meter.Float64Histogram("signalbridge.webhook.publish.duration",
			metric.WithDescription("Time to store one request's events in JetStream (atomic batch commit)."),
			metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	}
	if err != nil {
		return nil, fmt.Errorf("receiver: metrics: %w", err)
	}
	return h, nil
}

// Response is the JSON body of a 200 answer.
type Response struct {
	Received   int `json:"received"`
	Published  int `json:"published"`
	Duplicates int `json:"duplicates"`
	// Ignored counts events for portals we do not serve.
	Ignored int `json:"ignored"`
}

// ErrorBody is the JSON body of an error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a machine-readable code (a Reason*) and a message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// group is the events of one portal in a request.
type group struct {
	portalID string
	cfg      *portal.Config // nil: not served
	reason   string         // why not served
	idx      []int
}

// ServeHTTP handles one webhook delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(ctx, w, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "use POST (got "+r.Method+")")
		return
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		h.reject(ctx, w, http.StatusUnsupportedMediaType, ReasonUnsupportedMedia, "Content-Type must be application/json (got "+strconv.Quote(ct)+")")
		return
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		h.reject(ctx, w, http.StatusRequestEntityTooLarge, ReasonTooLarge,
			fmt.Sprintf("body is %d bytes; the limit is %d", r.ContentLength, h.opts.MaxBodyBytes))
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes), r.ContentLength)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			h.reject(ctx, w, http.StatusRequestEntityTooLarge, ReasonTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", maxErr.Limit))
			return
		}
		h.reject(ctx, w, http.StatusBadRequest, ReasonReadFailed, "reading the body: "+err.Error())
		return
	}
	req, err := Decode(body)
	if err != nil {
		var de *DecodeError
		reason := ReasonInvalidEvent
		if errors.As(err, &de) {
			reason = de.Reason
		}
		h.reject(ctx, w, http.StatusBadRequest, reason, err.Error())
		return
	}
	h.m.received.Add(ctx, int64(len(req.Events)))
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.Int("hubspot.webhook.events", len(req.Events)), attribute.Int64("hubspot.app_id", req.AppID))

	groups := h.group(req)
	if status, reason, msg := h.authenticate(r, body, req.AppID, groups); status != 0 {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(int(h.opts.RetryAfter.Seconds())))
		}
		h.reject(ctx, w, status, reason, msg)
		return
	}

	res := Response{Received: len(req.Events)}
	msgs := make([]*nats.Msg, 0, len(req.Events))
	echoes := make([]bool, 0, len(req.Events))
	enc := newEncoder(ctx, h.opts.Producer, len(req.Events), len(body))
	for _, g := range groups {
		if g.cfg == nil {
			res.Ignored += len(g.idx)
			h.m.unknown.Add(ctx, int64(len(g.idx)), metric.WithAttributes(attribute.String("reason", g.reason)))
			h.log.InfoContext(ctx, "webhook events for a portal we do not serve: acknowledged, not published",
				"portal", g.portalID, "app", req.AppID, "events", len(g.idx), "reason", g.reason)
			continue
		}
		span.SetAttributes(attribute.String("signalbridge.portal_id", g.portalID))
		// Our app is the portal's; a portal without app_id takes the app
		// whose signature just verified.
		ourApp := g.cfg.HubSpot.AppID
		if ourApp == 0 {
			ourApp = req.AppID
		}
		for _, i := range g.idx {
			ev := &req.Events[i]
			echo := IsEcho(ev.ChangeSource, ev.SourceID, ourApp)
			m, err := enc.message(g.portalID, ev, echo)
			if err != nil {
				h.log.ErrorContext(ctx, "building a HubSpot event message failed", "portal", g.portalID, "event", ev.EventID, "err", err)
				h.reject(ctx, w, http.StatusInternalServerError, ReasonInternal, "internal error; nothing was stored")
				return
			}
			msgs = append(msgs, m)
			echoes = append(echoes, echo)
		}
	}
	if len(msgs) > 0 {
		// Detached from the request: a batch started is finished even if
		// HubSpot hangs up, so its retry meets stored ids.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.PublishTimeout)
		start := time.Now()
		out, err := h.merge.publish(pctx, msgs)
		cancel()
		if err != nil {
			if errors.Is(err, natsx.ErrUnavailable) {
				h.log.WarnContext(ctx, "jetstream unavailable, answering 503 so HubSpot retries", "events", len(msgs), "err", err)
				w.Header().Set("Retry-After", strconv.Itoa(int(h.opts.RetryAfter.Seconds())))
				h.reject(ctx, w, http.StatusServiceUnavailable, ReasonUnavailable, "event store unavailable; nothing was acknowledged, retry later")
				return
			}
			h.log.ErrorContext(ctx, "publishing HubSpot events failed", "events", len(msgs), "err", err)
			h.reject(ctx, w, http.StatusInternalServerError, ReasonInternal, "internal error; retry later")
			return
		}
		h.m.latency.Record(ctx, time.Since(start).Seconds())
		var echoN, plainN int64
		for i := range msgs {
			switch {
			case i < len(out.Duplicates) && out.Duplicates[i]:
				res.Duplicates++
			case echoes[i]:
				echoN++
			default:
				plainN++
			}
		}
		res.Published = int(echoN + plainN)
		if plainN > 0 {
			h.m.published.Add(ctx, plainN, metric.WithAttributes(attribute.Bool("echo", false)))
		}
		if echoN > 0 {
			h.m.published.Add(ctx, echoN, metric.WithAttributes(attribute.Bool("echo", true)))
		}
		if res.Duplicates > 0 {
			h.m.duplicates.Add(ctx, int64(res.Duplicates))
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// group splits the events by portal, in order of first appearance, and
// looks each portal up.
func (h *Handler) group(req *Request) []*group {
	var groups []*group
	for i := range req.Events {
		id := strconv.FormatInt(req.Events[i].PortalID, 10)
		var g *group
		for _, x := range groups {
			if x.portalID == id {
				g = x
				break
			}
		}
		if g == nil {
			g = &group{portalID: id}
			cfg, ok := h.portals.Get(id)
			switch {
			case !ok:
				g.reason = ReasonUnknownPortal
			case cfg.HubSpot.WebhookSecret == "":
				g.reason = ReasonWebhooksNotConfig
			default:
				g.cfg = cfg
			}
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	return groups
}

// authenticate checks the request against every served portal in it: the
// app must be the portal's, and the signature must verify with the
// portal's webhook secret (each distinct secret is checked once). A request
// without served portals cannot be verified (no secret) and passes: its
// events are only acknowledged. It returns 0 or the status to answer.
func (h *Handler) authenticate(r *http.Request, body []byte, appID int64, groups []*group) (status int, reason, msg string) {
	var sr hubspot.SignedRequest
	var srErr error
	built := false
	type check struct{ secret, minVersion string }
	verified := map[check]bool{}
	for _, g := range groups {
		if g.cfg == nil {
			continue
		}
		hs := g.cfg.HubSpot
		if hs.AppID != 0 && hs.AppID != appID {
			return http.StatusUnauthorized, ReasonAppMismatch,
				fmt.Sprintf("events of app %d for portal %s, which is set up for app %d", appID, g.portalID, hs.AppID)
		}
		secret, ok := h.secrets(hs.WebhookSecret)
		if !ok || secret == "" {
			h.log.ErrorContext(r.Context(), "webhook secret of a portal cannot be resolved; answering 503 so HubSpot retries",
				"portal", g.portalID, "secret_name", hs.WebhookSecret)
			return http.StatusServiceUnavailable, ReasonSecretUnavailable,
				"the webhook secret of portal " + g.portalID + " is not available; retry later"
		}
		c := check{secret, string(hs.WebhookSignatureVersion)}
		if verified[c] {
			continue
		}
		if !built {
			sr, srErr = hubspot.SignedRequestFromHTTP(r, body, h.opts.TrustForwarded)
			if h.opts.PublicBaseURL != "" {
				sr.URI = h.opts.PublicBaseURL + r.URL.RequestURI()
			}
			built = true
		}
		err := srErr
		if err == nil {
			v := hubspot.Verifier{Secret: secret, Now: h.opts.Now, MaxAge: h.opts.MaxSignatureAge, MinVersion: c.minVersion}
			err = v.Verify(sr)
		}
		if err != nil {
			return http.StatusUnauthorized, signatureReason(err), err.Error()
		}
		verified[c] = true
	}
	return 0, "", ""
}

func signatureReason(err error) string {
	switch {
	case errors.Is(err, hubspot.ErrSignatureMissing):
		return ReasonSignatureMissing
	case errors.Is(err, hubspot.ErrSignatureExpired):
		return ReasonSignatureExpired
	case errors.Is(err, hubspot.ErrSignatureVersion):
		return ReasonSignatureVersion
	default:
		return ReasonSignatureMismatch
	}
}

func (h *Handler) reject(ctx context.Context, w http.ResponseWriter, status int, reason, msg string) {
	h.m.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason), attribute.Int("status", status)))
	if status < 500 {
		h.log.WarnContext(ctx, "webhook request refused", "status", status, "reason", reason, "detail", msg)
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: reason, Message: msg}})
}

// readBody reads all of r, sized by the Content-Length when there is one.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	var buf bytes.Buffer
	if contentLength > 0 {
		buf.Grow(int(contentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
