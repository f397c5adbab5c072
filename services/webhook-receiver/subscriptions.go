package webhookrx

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signalbridge/signalbridge/libs/portal"
)

// Subscription is one webhook subscription of an app: an event type such as
// "contact.creation", and for propertyChange events the property.
type Subscription struct {
	EventType    string `json:"eventType"`
	PropertyName string `json:"propertyName,omitempty"`
}

func (s Subscription) String() string {
	if s.PropertyName == "" {
		return s.EventType
	}
	return s.EventType + "[" + s.PropertyName + "]"
}

func compareSubscriptions(a, b Subscription) int {
	return cmp.Or(strings.Compare(a.EventType, b.EventType), strings.Compare(a.PropertyName, b.PropertyName))
}

// managedObjects are the object types whose subscriptions EnsureSubscriptions
// owns: it creates what the portals need and pauses the rest of these. The
// subscriptions of other objects (tickets, conversations, …) are left alone.
func managedObjects() []string { return []string{"contact", "company", "deal"} }

func managed(eventType string) bool {
	object, _, _ := strings.Cut(eventType, ".")
	return slices.Contains(managedObjects(), object)
}

// DesiredSubscriptions returns the subscriptions the given portals need,
// sorted and without repeats:
//
//   - contact: creation, deletion, merge, restore, privacyDeletion,
//     associationChange, and propertyChange of email (the matcher's contact
//     index) and of every contact property a field mapping writes (two-way
//     contact sync);
//   - company: creation, deletion, merge, restore, associationChange, and
//     propertyChange of domain, website, hs_additional_domains, name and
//     hubspot_owner_id (the matcher's company index and owner);
//   - deal: creation, deletion, merge, restore, associationChange, and
//     propertyChange of dealstage, pipeline and amount (open deals per
//     company).
//
// Webhook subscriptions belong to an app, not to a portal, so pass every
// portal that uses the app.
func DesiredSubscriptions(cfgs ...*portal.Config) []Subscription {
	var out []Subscription
	add := func(object string, events []string, props []string) {
		for _, e := range events {
			out = append(out, Subscription{EventType: object + "." + e})
		}
		for _, p := range props {
			out = append(out, Subscription{EventType: object + ".propertyChange", PropertyName: p})
		}
	}
	lifecycle := []string{"creation", "deletion", "merge", "restore", "associationChange"}
	add("contact", append(slices.Clone(lifecycle), "privacyDeletion"), []string{"email"})
	add("company", lifecycle, []string{"domain", "website", "hs_additional_domains", "name", "hubspot_owner_id"})
	add("deal", lifecycle, []string{"dealstage", "pipeline", "amount"})
	for _, cfg := range cfgs {
		if cfg == nil {
			continue
		}
		for _, m := range cfg.FieldMappings {
			for _, t := range m.Targets {
				if t.Object == portal.ObjectContact && t.Property != "" {
					add("contact", nil, []string{t.Property})
				}
			}
		}
	}
	slices.SortFunc(out, compareSubscriptions)
	return slices.Compact(out)
}

// AppSubscription is a subscription as HubSpot lists it.
type AppSubscription struct {
	Subscription
	ID     string
	Active bool
}

// SubscriptionAPI is the part of HubSpot's webhooks management API
// (/webhooks/v3/{appId}/subscriptions) that EnsureSubscriptions uses. A
// *SubscriptionsClient implements it.
type SubscriptionAPI interface {
	ListSubscriptions(ctx context.Context, appID int64) ([]AppSubscription, error)
	CreateSubscription(ctx context.Context, appID int64, s Subscription, active bool) (AppSubscription, error)
	SetSubscriptionsActive(ctx context.Context, appID int64, ids []string, active bool) error
}

// EnsureReport says what EnsureSubscriptions changed.
type EnsureReport struct {
	Created     []Subscription
	Activated   []Subscription
	Deactivated []Subscription
	// Unchanged counts desired subscriptions that were already active.
	Unchanged int
}

// Changed reports whether anything was created, activated or deactivated.
func (r EnsureReport) Changed() bool {
	return len(r.Created)+len(r.Activated)+len(r.Deactivated) > 0
}

// EnsureSubscriptions makes app appID's webhook subscriptions match
// DesiredSubscriptions(cfgs...): it creates the missing ones (active),
// activates paused ones, and pauses (never deletes) active contact, company
// and deal subscriptions nobody needs. Subscriptions of other objects are
// not touched. A second run with the same configs changes nothing.
//
// Every portal given must use appID (hubspot.app_id), since an app's
// subscriptions serve all portals it is installed on.
func EnsureSubscriptions(ctx context.Context, api SubscriptionAPI, appID int64, cfgs ...*portal.Config) (EnsureReport, error) {
	var rep EnsureReport
	if appID <= 0 {
		return rep, fmt.Errorf("ensure subscriptions: app id %d must be positive", appID)
	}
	for i, cfg := range cfgs {
		if cfg != nil && cfg.HubSpot.AppID != 0 && cfg.HubSpot.AppID != appID {
			return rep, fmt.Errorf("ensure subscriptions: cfgs[%d] (portal %s) is set up for app %d, not %d", i, cfg.PortalID, cfg.HubSpot.AppID, appID)
		}
	}
	existing, err := api.ListSubscriptions(ctx, appID)
	if err != nil {
		return rep, fmt.Errorf("ensure subscriptions of app %d: %w", appID, err)
	}
	have := make(map[Subscription]AppSubscription, len(existing))
	for _, s := range existing {
		// HubSpot refuses duplicates, so one entry per key; prefer an active one.
		if old, ok := have[s.Subscription]; !ok || !old.Active {
			have[s.Subscription] = s
		}
	}
	desired := DesiredSubscriptions(cfgs...)
	want := make(map[Subscription]bool, len(desired))
	var activate, deactivate []string
	for _, d := range desired {
		want[d] = true
		s, ok := have[d]
		switch {
		case !ok:
			if _, err := api.CreateSubscription(ctx, appID, d, true); err != nil {
				return rep, fmt.Errorf("ensure subscriptions of app %d: create %s: %w", appID, d, err)
			}
			rep.Created = append(rep.Created, d)
		case !s.Active:
			activate = append(activate, s.ID)
			rep.Activated = append(rep.Activated, d)
		default:
			rep.Unchanged++
		}
	}
	for _, s := range existing {
		if s.Active && !want[s.Subscription] && managed(s.EventType) {
			deactivate = append(deactivate, s.ID)
			rep.Deactivated = append(rep.Deactivated, s.Subscription)
		}
	}
	slices.SortFunc(rep.Deactivated, compareSubscriptions)
	if len(activate) > 0 {
		if err := api.SetSubscriptionsActive(ctx, appID, activate, true); err != nil {
			return rep, fmt.Errorf("ensure subscriptions of app %d: activate %d: %w", appID, len(activate), err)
		}
	}
	if len(deactivate) > 0 {
		if err := api.SetSubscriptionsActive(ctx, appID, deactivate, false); err != nil {
			return rep, fmt.Errorf("ensure subscriptions of app %d: pause %d: %w", appID, len(deactivate), err)
		}
	}
	return rep, nil
}

// SubscriptionsConfig configures a SubscriptionsClient.
type SubscriptionsConfig struct {
	// BaseURL is the API root (default https://api.hubapi.com).
	BaseURL string
	// DeveloperAPIKey is sent as ?hapikey= (HubSpot's developer API key).
	DeveloperAPIKey string
	// BearerToken, if set, is sent as Authorization: Bearer (a developer
	// OAuth token or private-app token with the developers scopes).
	BearerToken string
	// HTTPClient sends the requests (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// MaxAttempts bounds tries of one call on 429 and, for calls that are
	// safe to repeat, on 5xx and network errors (default 3).
	MaxAttempts int
}

// SubscriptionsClient calls HubSpot's webhooks management API. The hubspot
// package's client works per portal with portal credentials; this API
// belongs to an app and takes the developer's credentials, so it has its
// own small client.
type SubscriptionsClient struct {
	base     *url.URL
	key      string
	bearer   string
	hc       *http.Client
	attempts int
}

// NewSubscriptionsClient returns a client for cfg.
func NewSubscriptionsClient(cfg SubscriptionsConfig) (*SubscriptionsClient, error) {
	raw := cmp.Or(cfg.BaseURL, "https://api.hubapi.com")
	if err := checkBaseURL(raw); err != nil {
		return nil, fmt.Errorf("webhooks api: base URL: %w", err)
	}
	base, _ := url.Parse(strings.TrimSuffix(raw, "/"))
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	attempts := cfg.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	return &SubscriptionsClient{base: base, key: cfg.DeveloperAPIKey, bearer: cfg.BearerToken, hc: hc, attempts: attempts}, nil
}

type subscriptionWire struct {
	ID           json.Number `json:"id"`
	EventType    string      `json:"eventType"`
	PropertyName string      `json:"propertyName,omitempty"`
	Active       bool        `json:"active"`
}

func (w subscriptionWire) app() AppSubscription {
	return AppSubscription{Subscription: Subscription{EventType: w.EventType, PropertyName: w.PropertyName}, ID: w.ID.String(), Active: w.Active}
}

// ListSubscriptions returns every subscription of the app, active or paused.
func (c *SubscriptionsClient) ListSubscriptions(ctx context.Context, appID int64) ([]AppSubscription, error) {
	var out struct {
		Results []subscriptionWire `json:"results"`
	}
	if err := c.call(ctx, http.MethodGet, appID, "/subscriptions", nil, true, &out); err != nil {
		return nil, err
	}
	subs := make([]AppSubscription, len(out.Results))
	for i, w := range out.Results {
		subs[i] = w.app()
	}
	return subs, nil
}

// CreateSubscription creates one subscription. HubSpot creates paused
// subscriptions unless active is sent, so it always is.
func (c *SubscriptionsClient) CreateSubscription(ctx context.Context, appID int64, s Subscription, active bool) (AppSubscription, error) {
	in := struct {
		Subscription
		Active bool `json:"active"`
	}{s, active}
	var out subscriptionWire
	if err := c.call(ctx, http.MethodPost, appID, "/subscriptions", in, false, &out); err != nil {
		return AppSubscription{}, err
	}
	return out.app(), nil
}

// SetSubscriptionsActive activates or pauses subscriptions by id, 100 per
// batch call.
func (c *SubscriptionsClient) SetSubscriptionsActive(ctx context.Context, appID int64, ids []string, active bool) error {
	type input struct {
		ID     int64 `json:"id"`
		Active bool  `json:"active"`
	}
	for chunk := range slices.Chunk(ids, 100) {
		body := struct {
			Inputs []input `json:"inputs"`
		}{}
		for i, id := range chunk {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return fmt.Errorf("subscription ids[%d] = %q is not a number", i, id)
			}
			body.Inputs = append(body.Inputs, input{ID: n, Active: active})
		}
		var out struct {
			Status string `json:"status"`
			Errors []struct {
				Message string `json:"message"`
			} `json:"errors"`
		}
		if err := c.call(ctx, http.MethodPost, appID, "/subscriptions/batch/update", body, true, &out); err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			msgs := make([]string, len(out.Errors))
			for i, e := range out.Errors {
				msgs[i] = e.Message
			}
			return fmt.Errorf("batch update: %d of %d failed: %s", len(out.Errors), len(chunk), strings.Join(msgs, "; "))
		}
	}
	return nil
}

// APIError is an error answer of the webhooks management API.
type APIError struct {
	Status   int
	Category string
	Message  string
	// Op is the method and path, without credentials.
	Op string

	retryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Op, e.Status, e.Category, e.Message)
}

// call sends one request and decodes a 2xx answer into out. Errors never
// include the query string (it holds the developer key).
func (c *SubscriptionsClient) call(ctx context.Context, method string, appID int64, path string, in any, repeatable bool, out any) error {
	rel := "/webhooks/v3/" + strconv.FormatInt(appID, 10) + path
	op := method + " " + rel
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
	}
	u := *c.base
	u.Path += rel
	if c.key != "" {
		u.RawQuery = url.Values{"hapikey": {c.key}}.Encode()
	}
	var last error
	for attempt := 1; attempt <= c.attempts; attempt++ {
		if attempt > 1 {
			wait := time.Duration(attempt-1) * 500 * time.Millisecond
			var apiErr *APIError
			if errors.As(last, &apiErr) && apiErr.retryAfter > 0 {
				wait = min(apiErr.retryAfter, 10*time.Second)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w (last error: %w)", op, ctx.Err(), last)
			case <-t.C:
			}
		}
		var retry bool
		retry, last = c.once(ctx, method, u.String(), op, payload, repeatable, out)
		if last == nil || !retry {
			return last
		}
	}
	return last
}

func (c *SubscriptionsClient) once(ctx context.Context, method, target, op string, payload []byte, repeatable bool, out any) (retry bool, err error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return false, fmt.Errorf("%s: build request: %w", op, redact(err))
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return repeatable && ctx.Err() == nil, fmt.Errorf("%s: %w", op, redact(err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return repeatable, fmt.Errorf("%s: read answer: %w", op, redact(err))
	}
	if res.StatusCode/100 != 2 {
		apiErr := &APIError{Status: res.StatusCode, Op: op}
		var e struct {
			Category string `json:"category"`
			Message  string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			apiErr.Category, apiErr.Message = e.Category, e.Message
		} else {
			apiErr.Message = strings.TrimSpace(string(raw[:min(len(raw), 300)]))
		}
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
			apiErr.retryAfter = time.Duration(secs) * time.Second
		}
		retry = res.StatusCode == http.StatusTooManyRequests || repeatable && res.StatusCode >= 500
		return retry, apiErr
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, fmt.Errorf("%s: decode answer: %w", op, err)
		}
	}
	return false, nil
}

// redact drops the URL (and with it the developer key) from a transport error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// EnsureAllSubscriptions runs EnsureSubscriptions once for every app that
// portals name (hubspot.app_id), with every portal of that app. Portals
// without an app id are skipped. The reports are keyed by app id; the
// error joins the failures of every app.
func EnsureAllSubscriptions(ctx context.Context, api SubscriptionAPI, portals Portals) (map[int64]EnsureReport, error) {
	byApp := map[int64][]*portal.Config{}
	for _, id := range portals.Portals() {
		cfg, ok := portals.Get(id)
		if !ok || cfg.HubSpot.AppID == 0 {
			continue
		}
		byApp[cfg.HubSpot.AppID] = append(byApp[cfg.HubSpot.AppID], cfg)
	}
	reports := make(map[int64]EnsureReport, len(byApp))
	var errs []error
	for _, app := range slices.Sorted(maps.Keys(byApp)) {
		rep, err := EnsureSubscriptions(ctx, api, app, byApp[app]...)
		reports[app] = rep
		errs = append(errs, err)
	}
	return reports, errors.Join(errs...)
}
