package hubspottest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// App is a HubSpot (developer) app that receives webhooks.
type App struct {
	// ID is the app id (0 picks one; AddApp returns it).
	ID int64
	// ClientSecret signs deliveries (X-HubSpot-Signature-v3 and v1).
	ClientSecret string
	// TargetURL receives the deliveries; it can also be set through
	// PUT /webhooks/v3/{appId}/settings.
	TargetURL string
	// MaxConcurrent bounds concurrent deliveries (default 10; the settings
	// API's throttling.maxConcurrentRequests changes it).
	MaxConcurrent int
	// DeveloperAPIKey, when set, must be passed as ?hapikey= to the webhooks
	// management API; when empty that API needs no credentials.
	DeveloperAPIKey string
	// Portals lists the portals the app is installed on; empty means all.
	Portals []int64
}

// AppStats counts one app's webhook deliveries.
type AppStats struct {
	Attempts        int // delivery requests sent, retries included
	Deliveries      int // requests answered 2xx
	Failures        int // requests that failed (status or transport error)
	Retries         int // retries scheduled
	EventsDelivered int // events in successful deliveries
	EventsDropped   int // events given up on (non-retryable status, retries exhausted, no target URL)
	Pending         int // events queued or waiting for a retry
}

// change is one CRM change that may become webhook events.
type change struct {
	kind     string // creation, deletion, propertyChange, associationChange, merge
	object   *objectKind
	objectID int64
	at       time.Time
	src      source
	prop     string
	value    string

	assocTo      *objectKind
	assocToID    int64
	assocRemoved bool
	assocPrimary bool

	mergedIDs  []int64
	propsMoved int
}

// changes collects the changes of one operation; they are published after
// the portal lock is released.
type changes struct{ list []change }

func (c *changes) add(x change) { c.list = append(c.list, x) }

// webhookEvent is one element of a delivery's JSON array.
type webhookEvent struct {
	EventID          int64  `json:"eventId"`
	SubscriptionID   int64  `json:"subscriptionId"`
	PortalID         int64  `json:"portalId"`
	AppID            int64  `json:"appId"`
	OccurredAt       int64  `json:"occurredAt"`
	SubscriptionType string `json:"subscriptionType"`
	AttemptNumber    int    `json:"attemptNumber"`
	ObjectID         int64  `json:"objectId"`
	ChangeSource     string `json:"changeSource,omitempty"`
	SourceID         string `json:"sourceId,omitempty"`
	ChangeFlag       string `json:"changeFlag,omitempty"`

	PropertyName  string  `json:"propertyName,omitempty"`
	PropertyValue *string `json:"propertyValue,omitempty"`

	AssociationType      string `json:"associationType,omitempty"`
	FromObjectID         int64  `json:"fromObjectId,omitempty"`
	ToObjectID           int64  `json:"toObjectId,omitempty"`
	AssociationRemoved   *bool  `json:"associationRemoved,omitempty"`
	IsPrimaryAssociation *bool  `json:"isPrimaryAssociation,omitempty"`

	PrimaryObjectID         int64   `json:"primaryObjectId,omitempty"`
	MergedObjectIDs         []int64 `json:"mergedObjectIds,omitempty"`
	NewObjectID             int64   `json:"newObjectId,omitempty"`
	NumberOfPropertiesMoved *int    `json:"numberOfPropertiesMoved,omitempty"`
}

type subscription struct {
	ID           int64  `json:"-"`
	EventType    string `json:"eventType"`
	PropertyName string `json:"propertyName,omitempty"`
	Active       bool   `json:"active"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (sub *subscription) wire() any {
	return struct {
		ID           string `json:"id"`
		EventType    string `json:"eventType"`
		PropertyName string `json:"propertyName,omitempty"`
		Active       bool   `json:"active"`
		CreatedAt    string `json:"createdAt"`
		UpdatedAt    string `json:"updatedAt"`
	}{strconv.FormatInt(sub.ID, 10), sub.EventType, sub.PropertyName, sub.Active, formatTime(sub.CreatedAt), formatTime(sub.UpdatedAt)}
}

type delivery struct {
	events  []webhookEvent
	attempt int
}

type app struct {
	s *Server

	mu              sync.Mutex
	cfg             App
	settingsCreated time.Time
	settingsUpdated time.Time
	subs            map[int64]*subscription
	nextSub         int64
	queue           []webhookEvent
	ready           []delivery // retries that are due
	inflight        int
	waiting         int // events in scheduled retries
	stats           AppStats
	wake            chan struct{}
}

// AddApp registers an app; its webhook subscriptions are managed through
// /webhooks/v3/{appId}/subscriptions. It returns the app id.
func (s *Server) AddApp(a App) int64 {
	if a.ID == 0 {
		a.ID = 4_000_000 + s.seq.Add(1)
	}
	if a.MaxConcurrent <= 0 {
		a.MaxConcurrent = 10
	}
	now := s.now()
	ap := &app{s: s, cfg: a, subs: map[int64]*subscription{}, nextSub: 100_000, wake: make(chan struct{}, 1), settingsCreated: now, settingsUpdated: now}
	s.mu.Lock()
	if old, ok := s.apps[a.ID]; ok {
		s.log.Warn("hubspottest: replacing app", "appId", a.ID)
		old.mu.Lock()
		old.cfg.TargetURL = ""
		old.mu.Unlock()
	}
	s.apps[a.ID] = ap
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ap.run(s.ctx)
	}()
	return a.ID
}

// AppStats returns the delivery counters of an app.
func (s *Server) AppStats(appID int64) AppStats {
	s.mu.RLock()
	a, ok := s.apps[appID]
	s.mu.RUnlock()
	if !ok {
		return AppStats{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stats
	st.Pending = len(a.queue) + a.waiting
	for _, d := range a.ready {
		st.Pending += len(d.events)
	}
	return st
}

func (a *app) installedOn(portalID int64) bool {
	return len(a.cfg.Portals) == 0 || slices.Contains(a.cfg.Portals, portalID)
}

// publish turns a portal's changes into events for every app installed on
// it with a matching active subscription.
func (s *Server) publish(p *Portal, ch *changes) {
	if ch == nil || len(ch.list) == 0 {
		return
	}
	s.mu.RLock()
	apps := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	s.mu.RUnlock()
	total := 0
	for _, a := range apps {
		total += a.enqueue(p.id, ch.list)
	}
	if total > 0 {
		p.stats.webhookEvents(total)
	}
}

func (a *app) enqueue(portalID int64, list []change) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.installedOn(portalID) {
		return 0
	}
	n := 0
	for _, c := range list {
		if c.object == nil || c.object.event == "" {
			continue
		}
		typ := c.object.event + "." + c.kind
		for _, id := range slices.Sorted(maps.Keys(a.subs)) {
			sub := a.subs[id]
			if !sub.Active || sub.EventType != typ {
				continue
			}
			if c.kind == "propertyChange" && sub.PropertyName != c.prop {
				continue
			}
			a.queue = append(a.queue, a.event(portalID, sub, c))
			n++
		}
	}
	if n > 0 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return n
}

func (a *app) event(portalID int64, sub *subscription, c change) webhookEvent {
	ev := webhookEvent{
		EventID:          a.s.eventSeq.Add(1),
		SubscriptionID:   sub.ID,
		PortalID:         portalID,
		AppID:            a.cfg.ID,
		OccurredAt:       c.at.UnixMilli(),
		SubscriptionType: sub.EventType,
		ObjectID:         c.objectID,
		ChangeSource:     c.src.change,
		SourceID:         c.src.id,
	}
	switch c.kind {
	case "creation":
		ev.ChangeFlag = "NEW"
	case "deletion":
		ev.ChangeFlag = "DELETED"
	case "propertyChange":
		v := c.value
		ev.PropertyName, ev.PropertyValue = c.prop, &v
	case "associationChange":
		removed, primary := c.assocRemoved, c.assocPrimary
		ev.AssociationType = eventAssocName(c.object, c.assocTo)
		ev.FromObjectID, ev.ToObjectID = c.objectID, c.assocToID
		ev.AssociationRemoved, ev.IsPrimaryAssociation = &removed, &primary
	case "merge":
		moved := c.propsMoved
		ev.PrimaryObjectID, ev.NewObjectID = c.objectID, c.objectID
		ev.MergedObjectIDs = c.mergedIDs
		ev.NumberOfPropertiesMoved = &moved
	}
	return ev
}

// maxEventsPerDelivery is HubSpot's batch size for webhook deliveries.
const maxEventsPerDelivery = 100

func (a *app) run(ctx context.Context) {
	flush := a.s.opts.WebhookFlushInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		// Linger briefly so that bursts of changes share deliveries.
		t := time.NewTimer(flush)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		a.dispatch(ctx)
	}
}

// dispatch starts as many deliveries as the concurrency limit allows.
func (a *app) dispatch(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.inflight < max(a.cfg.MaxConcurrent, 1) {
		var d delivery
		switch {
		case len(a.ready) > 0:
			d, a.ready = a.ready[0], a.ready[1:]
		case len(a.queue) > 0:
			portal := a.queue[0].PortalID
			n := 0
			for n < len(a.queue) && n < maxEventsPerDelivery && a.queue[n].PortalID == portal {
				n++
			}
			d = delivery{events: slices.Clone(a.queue[:n])}
			a.queue = a.queue[n:]
		default:
			return
		}
		a.inflight++
		a.s.wg.Add(1)
		go func() {
			defer a.s.wg.Done()
			a.deliver(ctx, d)
		}()
	}
}

func (a *app) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// signV3 computes X-HubSpot-Signature-v3.
func signV3(secret, method, uri string, body []byte, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(method + uri))
	mac.Write(body)
	mac.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signedURI is the URI a receiver sees: the target URL with an empty path
// written as "/".
func signedURI(u *url.URL) string {
	c := *u
	if c.Path == "" {
		c.Path = "/"
	}
	return c.String()
}

// signV1 computes the v1 X-HubSpot-Signature.
func signV1(secret string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func (a *app) deliver(ctx context.Context, d delivery) {
	a.mu.Lock()
	target, secret := a.cfg.TargetURL, a.cfg.ClientSecret
	a.mu.Unlock()

	status, retryAfter, err := a.send(ctx, target, secret, d)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight--
	defer a.signal()
	if target == "" {
		a.stats.EventsDropped += len(d.events)
		return
	}
	a.stats.Attempts++
	if err == nil && status >= 200 && status < 300 {
		a.stats.Deliveries++
		a.stats.EventsDelivered += len(d.events)
		return
	}
	a.stats.Failures++
	if ctx.Err() != nil {
		return
	}
	if err == nil && !retryable(status) {
		a.s.log.Info("hubspottest: webhook rejected, not retried", "appId", a.cfg.ID, "status", status)
		a.stats.EventsDropped += len(d.events)
		return
	}
	if d.attempt >= a.s.opts.WebhookMaxRetries {
		a.stats.EventsDropped += len(d.events)
		return
	}
	delay := a.s.opts.WebhookRetryBase << d.attempt
	if retryAfter > delay {
		delay = retryAfter
	}
	a.stats.Retries++
	a.waiting += len(d.events)
	next := delivery{events: d.events, attempt: d.attempt + 1}
	a.s.wg.Add(1)
	go func() {
		defer a.s.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		a.waiting -= len(next.events)
		a.ready = append(a.ready, next)
		a.mu.Unlock()
		a.dispatch(ctx)
	}()
}

// retryable reports whether HubSpot retries a delivery answered with status:
// everything except 400, 401, 403, 404 and 405.
func retryable(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return false
	}
	return true
}

// send performs one delivery attempt.
func (a *app) send(ctx context.Context, target, secret string, d delivery) (status int, retryAfter time.Duration, err error) {
	if target == "" {
		return 0, 0, fmt.Errorf("app %d has no target URL", a.cfg.ID)
	}
	events := make([]webhookEvent, len(d.events))
	for i, ev := range d.events {
		ev.AttemptNumber = d.attempt
		events[i] = ev
	}
	body, err := json.Marshal(events)
	if err != nil {
		return 0, 0, fmt.Errorf("encode events: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.s.opts.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build delivery request: %w", err)
	}
	ts := formatMillis(a.s.now())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon")
	req.Header.Set("X-HubSpot-Request-Timestamp", ts)
	req.Header.Set("X-HubSpot-Signature-v3", signV3(secret, http.MethodPost, signedURI(req.URL), body, ts))
	req.Header.Set("X-HubSpot-Signature", signV1(secret, body))
	req.Header.Set("X-HubSpot-Signature-Version", "v1")
	req.Header.Set("X-HubSpot-Timeout-Millis", strconv.FormatInt(a.s.opts.WebhookTimeout.Milliseconds(), 10))
	resp, err := a.s.opts.WebhookClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("deliver to %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests {
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			retryAfter = time.Duration(secs) * time.Second
		}
	}
	return resp.StatusCode, retryAfter, nil
}

// --- management API (/webhooks/v3/{appId}/...) --------------------------------

type appKey struct{}

func (s *Server) serveApp(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(appIDFromPath(r.URL.Path))
	if !ok {
		writeError(w, notFoundError("Unknown app id in %s", r.URL.Path))
		return
	}
	s.mu.RLock()
	a, found := s.apps[id]
	s.mu.RUnlock()
	if !found {
		writeError(w, notFoundError("App %d does not exist", id))
		return
	}
	a.mu.Lock()
	key := a.cfg.DeveloperAPIKey
	a.mu.Unlock()
	if key != "" && r.URL.Query().Get("hapikey") != key {
		writeError(w, newAPIError(http.StatusUnauthorized, "INVALID_AUTHENTICATION", "The developer API key provided is invalid."))
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), appKey{}, a)))
}

func appIDFromPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/webhooks/v3/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

func appFrom(r *http.Request) *app {
	a, _ := r.Context().Value(appKey{}).(*app)
	return a
}

// validSubscriptionType reports whether t is one of the eventType values of
// webhooks-v3 SubscriptionCreateRequest.
func validSubscriptionType(t string) bool {
	obj, ev, ok := strings.Cut(t, ".")
	if !ok {
		return false
	}
	switch obj {
	case "contact", "company", "deal", "ticket", "line_item", "object":
		return ev == "creation" || ev == "deletion" || ev == "merge" || ev == "restore" ||
			ev == "propertyChange" || ev == "associationChange" || (obj == "contact" && ev == "privacyDeletion")
	case "product":
		return ev == "creation" || ev == "deletion" || ev == "merge" || ev == "restore" || ev == "propertyChange"
	case "conversation":
		return ev == "creation" || ev == "deletion" || ev == "newMessage" || ev == "privacyDeletion" || ev == "propertyChange"
	case "event":
		return ev == "completed"
	}
	return false
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []any{}
	for _, id := range slices.Sorted(maps.Keys(a.subs)) {
		out = append(out, a.subs[id].wire())
	}
	writeJSON(w, http.StatusOK, struct {
		Results []any `json:"results"`
	}{out})
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	var body struct {
		EventType    string `json:"eventType"`
		PropertyName string `json:"propertyName"`
		Active       *bool  `json:"active"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if !validSubscriptionType(body.EventType) {
		writeError(w, validationError("eventType: %q is not a valid subscription type", body.EventType))
		return
	}
	isPropChange := strings.HasSuffix(body.EventType, ".propertyChange")
	if isPropChange && body.PropertyName == "" {
		writeError(w, validationError("propertyName is required for %s subscriptions", body.EventType))
		return
	}
	if !isPropChange && body.PropertyName != "" {
		writeError(w, validationError("propertyName is only allowed for propertyChange subscriptions, not %s", body.EventType))
		return
	}
	a.mu.Lock()
	for _, sub := range a.subs {
		if sub.EventType == body.EventType && sub.PropertyName == body.PropertyName {
			a.mu.Unlock()
			writeError(w, newAPIError(http.StatusConflict, "CONFLICT", fmt.Sprintf("A subscription for %s %s already exists (id %d)", body.EventType, body.PropertyName, sub.ID)))
			return
		}
	}
	now := s.now()
	a.nextSub++
	sub := &subscription{ID: a.nextSub, EventType: body.EventType, PropertyName: body.PropertyName, Active: body.Active == nil || *body.Active, CreatedAt: now, UpdatedAt: now}
	a.subs[sub.ID] = sub
	out := sub.wire()
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func (a *app) subscription(r *http.Request) (*subscription, *apiError) {
	id, ok := parseID(r.PathValue("subscriptionId"))
	sub, found := a.subs[id]
	if !ok || !found {
		return nil, notFoundError("Subscription %s does not exist", r.PathValue("subscriptionId"))
	}
	return sub, nil
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	sub, aerr := a.subscription(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, sub.wire())
}

func (s *Server) patchSubscription(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	var body struct {
		Active *bool `json:"active"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sub, aerr := a.subscription(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if body.Active != nil {
		sub.Active = *body.Active
		sub.UpdatedAt = s.now()
	}
	writeJSON(w, http.StatusOK, sub.wire())
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	sub, aerr := a.subscription(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	delete(a.subs, sub.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) batchUpdateSubscriptions(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	started := s.now()
	var body struct {
		Inputs []struct {
			ID     flexString `json:"id"`
			Active *bool      `json:"active"`
		} `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	a.mu.Lock()
	results := []any{}
	var errs []standardError
	for i, in := range body.Inputs {
		id, ok := parseID(string(in.ID))
		sub, found := a.subs[id]
		if !ok || !found {
			errs = append(errs, newStandardError("OBJECT_NOT_FOUND", fmt.Sprintf("inputs[%d]: subscription %s does not exist", i, in.ID), map[string][]string{"ids": {string(in.ID)}}))
			continue
		}
		if in.Active == nil {
			errs = append(errs, newStandardError("VALIDATION_ERROR", fmt.Sprintf("inputs[%d]: active is required", i), map[string][]string{"ids": {string(in.ID)}}))
			continue
		}
		sub.Active = *in.Active
		sub.UpdatedAt = s.now()
		results = append(results, sub.wire())
	}
	a.mu.Unlock()
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

type settingsWire struct {
	TargetURL  string `json:"targetUrl"`
	Throttling struct {
		MaxConcurrentRequests int `json:"maxConcurrentRequests"`
	} `json:"throttling"`
	CreatedAt string `json:"createdAt,omitempty"`
	UpdatedAt string `json:"updatedAt,omitempty"`
}

func (a *app) settings() settingsWire {
	var out settingsWire
	out.TargetURL = a.cfg.TargetURL
	out.Throttling.MaxConcurrentRequests = a.cfg.MaxConcurrent
	out.CreatedAt, out.UpdatedAt = formatTime(a.settingsCreated), formatTime(a.settingsUpdated)
	return out
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.TargetURL == "" {
		writeError(w, notFoundError("No webhook settings found for app %d", a.cfg.ID))
		return
	}
	writeJSON(w, http.StatusOK, a.settings())
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	var body settingsWire
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	u, err := url.Parse(body.TargetURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		writeError(w, validationError("targetUrl: %q is not a valid http(s) URL", body.TargetURL))
		return
	}
	if body.Throttling.MaxConcurrentRequests < 1 {
		writeError(w, validationError("throttling.maxConcurrentRequests must be at least 1, got %d", body.Throttling.MaxConcurrentRequests))
		return
	}
	a.mu.Lock()
	a.cfg.TargetURL = body.TargetURL
	a.cfg.MaxConcurrent = body.Throttling.MaxConcurrentRequests
	a.settingsUpdated = s.now()
	out := a.settings()
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteSettings(w http.ResponseWriter, r *http.Request) {
	a := appFrom(r)
	a.mu.Lock()
	a.cfg.TargetURL = ""
	a.settingsUpdated = s.now()
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
