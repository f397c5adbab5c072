package hubspottest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook target that records deliveries and answers with
// scripted statuses (200 once the script is used up).
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries []delivered
	script     []int
}

type delivered struct {
	uri     string
	body    []byte
	header  http.Header
	events  []webhookEvent
	answers int
}

func newReceiver(t *testing.T, script ...int) *receiver {
	rc := &receiver{script: script}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var events []webhookEvent
		if err := json.Unmarshal(body, &events); err != nil {
			t.Errorf("delivery body is not a JSON array of events: %s", body)
		}
		rc.mu.Lock()
		status := http.StatusOK
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		rc.deliveries = append(rc.deliveries, delivered{uri: "http://" + r.Host + r.URL.RequestURI(), body: body, header: r.Header.Clone(), events: events, answers: status})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.deliveries)
}

func (rc *receiver) events() []webhookEvent {
	var out []webhookEvent
	for _, d := range rc.got() {
		if d.answers == http.StatusOK {
			out = append(out, d.events...)
		}
	}
	return out
}

func subscribe(t *testing.T, s *Server, appID int64, eventType, property string) {
	t.Helper()
	a := &api{t: t, base: s.URL}
	body := map[string]any{"eventType": eventType, "active": true}
	if property != "" {
		body["propertyName"] = property
	}
	a.do("POST", fmt.Sprintf("/webhooks/v3/%d/subscriptions", appID), body).expect(t, http.StatusCreated)
}

func fastWebhooks() Options {
	return Options{WebhookRetryBase: 5 * time.Millisecond, WebhookFlushInterval: 5 * time.Millisecond, DisableRateLimits: true}
}

// verifyV3 recomputes X-HubSpot-Signature-v3 independently of the sandbox.
func verifyV3(t *testing.T, secret string, d delivered) {
	t.Helper()
	ts := d.header.Get("X-HubSpot-Request-Timestamp")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Fatalf("X-HubSpot-Request-Timestamp = %q", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("POST" + d.uri + string(d.body) + ts))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := d.header.Get("X-HubSpot-Signature-v3"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Fatalf("v3 signature = %q, want %q", got, want)
	}
	sum := sha256.Sum256([]byte(secret + string(d.body)))
	if got := d.header.Get("X-HubSpot-Signature"); got != hex.EncodeToString(sum[:]) || d.header.Get("X-HubSpot-Signature-Version") != "v1" {
		t.Fatalf("v1 signature = %q (version %q)", got, d.header.Get("X-HubSpot-Signature-Version"))
	}
}

func TestWebhookDeliverySignedAndFiltered(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	s := NewTest(t, fastWebhooks())
	p := s.AddPortal(PortalOptions{PrivateAppID: 777})
	appID := s.AddApp(App{ClientSecret: "shh-secret", TargetURL: rc.URL + "/hubspot/webhooks?tenant=a"})
	subscribe(t, s, appID, "company.creation", "")
	subscribe(t, s, appID, "company.propertyChange", "industry")
	subscribe(t, s, appID, "contact.associationChange", "")
	a := newAPI(t, s, p)

	var company objectWire
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("name", "Acme", "industry", "RETAIL")}).expect(t, 201).decode(t, &company)
	contact := p.SeedContacts(props("email", "ana@acme.com"))[0]
	a.do("PUT", "/crm/v4/objects/contacts/"+contact+"/associations/default/companies/"+company.ID, nil).expect(t, 200)
	if err := p.UIEdit("companies", company.ID, props("industry", "BANKING", "name", "Acme Inc")); err != nil {
		t.Fatal(err)
	}

	eventually(t, "4 events", func() bool { return len(rc.events()) >= 4 })
	for _, d := range rc.got() {
		verifyV3(t, "shh-secret", d)
		if d.header.Get("Content-Type") != "application/json" {
			t.Fatalf("Content-Type = %q", d.header.Get("Content-Type"))
		}
	}
	events := rc.events()
	slices.SortFunc(events, func(x, y webhookEvent) int { return int(x.EventID - y.EventID) })
	type summary struct {
		typ, prop, value, source, sourceID, flag string
	}
	var got []summary
	for _, ev := range events {
		if ev.PortalID != p.ID() || ev.AppID != appID || ev.OccurredAt == 0 || ev.SubscriptionID == 0 {
			t.Fatalf("event envelope = %+v", ev)
		}
		v := ""
		if ev.PropertyValue != nil {
			v = *ev.PropertyValue
		}
		got = append(got, summary{ev.SubscriptionType, ev.PropertyName, v, ev.ChangeSource, ev.SourceID, ev.ChangeFlag})
		if ev.SubscriptionType == "contact.associationChange" {
			if ev.AssociationType != "CONTACT_TO_COMPANY" || strconv.FormatInt(ev.FromObjectID, 10) != contact || strconv.FormatInt(ev.ToObjectID, 10) != company.ID || ev.AssociationRemoved == nil || *ev.AssociationRemoved {
				t.Fatalf("association event = %+v", ev)
			}
		}
	}
	want := []summary{
		{"company.creation", "", "", "INTEGRATION", "777", "NEW"},
		{"company.propertyChange", "industry", "RETAIL", "INTEGRATION", "777", ""},
		{"contact.associationChange", "", "", "INTEGRATION", "777", ""},
		{"company.propertyChange", "industry", "BANKING", "CRM_UI", "userId:" + strconv.FormatInt(p.Owners()[0].UserID, 10), ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events =\n%v\nwant\n%v", got, want)
	}
	if st := p.Stats(); st.WebhookEvents != 4 {
		t.Fatalf("portal WebhookEvents = %d", st.WebhookEvents)
	}
}

func TestWebhookRetryAfterServerError(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusInternalServerError, http.StatusServiceUnavailable)
	s := NewTest(t, fastWebhooks())
	p := s.AddPortal(PortalOptions{})
	appID := s.AddApp(App{ClientSecret: "k", TargetURL: rc.URL})
	subscribe(t, s, appID, "deal.creation", "")
	newAPI(t, s, p).do("POST", "/crm/v3/objects/deals", map[string]any{"properties": props("dealname", "D")}).expect(t, 201)

	eventually(t, "a successful delivery", func() bool { return s.AppStats(appID).Deliveries == 1 })
	ds := rc.got()
	if len(ds) != 3 {
		t.Fatalf("attempts = %d, want 3", len(ds))
	}
	for i, d := range ds {
		if len(d.events) != 1 || d.events[0].AttemptNumber != i || d.events[0].EventID != ds[0].events[0].EventID {
			t.Fatalf("attempt %d events = %+v", i, d.events)
		}
		verifyV3(t, "k", d)
	}
	st := s.AppStats(appID)
	if st.Attempts != 3 || st.Failures != 2 || st.Retries != 2 || st.EventsDelivered != 1 || st.Pending != 0 {
		t.Fatalf("app stats = %+v", st)
	}
}

func TestWebhookNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404, 405} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, status, status, status)
			s := NewTest(t, fastWebhooks())
			p := s.AddPortal(PortalOptions{})
			appID := s.AddApp(App{ClientSecret: "k", TargetURL: rc.URL})
			subscribe(t, s, appID, "company.creation", "")
			p.Faults(Faults{})
			newAPI(t, s, p).do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("name", "A")}).expect(t, 201)
			eventually(t, "the delivery to be dropped", func() bool { return s.AppStats(appID).EventsDropped == 1 })
			if st := s.AppStats(appID); st.Attempts != 1 || st.Retries != 0 || st.Pending != 0 {
				t.Fatalf("app stats = %+v", st)
			}
		})
	}
}

func TestWebhookRetriesAreBounded(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 503, 503, 503, 503, 503)
	opts := fastWebhooks()
	opts.WebhookMaxRetries = 2
	s := NewTest(t, opts)
	p := s.AddPortal(PortalOptions{})
	appID := s.AddApp(App{ClientSecret: "k", TargetURL: rc.URL})
	subscribe(t, s, appID, "company.creation", "")
	newAPI(t, s, p).do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("name", "A")}).expect(t, 201)
	eventually(t, "the retries to run out", func() bool { return s.AppStats(appID).EventsDropped == 1 })
	if st := s.AppStats(appID); st.Attempts != 3 || st.Retries != 2 {
		t.Fatalf("app stats = %+v", st)
	}
}

func TestWebhookBatchesOfAtMost100(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	s := NewTest(t, fastWebhooks())
	p := s.AddPortal(PortalOptions{})
	appID := s.AddApp(App{ClientSecret: "k", TargetURL: rc.URL, MaxConcurrent: 2})
	subscribe(t, s, appID, "company.propertyChange", "industry")
	var seed []map[string]string
	for i := range 250 {
		seed = append(seed, props("name", fmt.Sprint("c", i)))
	}
	ids := p.SeedCompanies(seed...)
	if err := p.BulkEdit("companies", ids, props("industry", "RETAIL")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "250 events", func() bool { return len(rc.events()) == 250 })
	for _, d := range rc.got() {
		if len(d.events) > 100 {
			t.Fatalf("a delivery carried %d events", len(d.events))
		}
		for _, ev := range d.events {
			if ev.ChangeSource != "CRM_UI_BULK_ACTION" {
				t.Fatalf("changeSource = %q", ev.ChangeSource)
			}
		}
	}
	seen := map[int64]bool{}
	for _, ev := range rc.events() {
		if seen[ev.ObjectID] {
			t.Fatalf("object %d delivered twice", ev.ObjectID)
		}
		seen[ev.ObjectID] = true
	}
}

func TestWebhookManagementAPI(t *testing.T) {
	t.Parallel()
	s := NewTest(t, fastWebhooks())
	appID := s.AddApp(App{ClientSecret: "k", DeveloperAPIKey: "dev-key"})
	base := fmt.Sprintf("/webhooks/v3/%d", appID)
	a := &api{t: t, base: s.URL}
	key := "?hapikey=dev-key"

	a.do("GET", base+"/subscriptions", nil).expect(t, http.StatusUnauthorized)
	a.do("GET", fmt.Sprintf("/webhooks/v3/%d/subscriptions", appID+1)+key, nil).expect(t, http.StatusNotFound)
	a.do("POST", base+"/subscriptions"+key, map[string]any{"eventType": "contact.propertyChange"}).expect(t, 400)
	a.do("POST", base+"/subscriptions"+key, map[string]any{"eventType": "contact.explosion"}).expect(t, 400)
	var sub struct {
		ID        string `json:"id"`
		EventType string `json:"eventType"`
		Active    bool   `json:"active"`
		CreatedAt string `json:"createdAt"`
	}
	a.do("POST", base+"/subscriptions"+key, map[string]any{"eventType": "contact.propertyChange", "propertyName": "email"}).expect(t, 201).decode(t, &sub)
	if sub.ID == "" || sub.EventType != "contact.propertyChange" || !sub.Active || sub.CreatedAt == "" {
		t.Fatalf("subscription = %+v", sub)
	}
	a.do("POST", base+"/subscriptions"+key, map[string]any{"eventType": "contact.propertyChange", "propertyName": "email"}).expect(t, http.StatusConflict)
	a.do("PATCH", base+"/subscriptions/"+sub.ID+key, map[string]any{"active": false}).expect(t, 200)

	var batch batchResult
	a.do("POST", base+"/subscriptions/batch/update"+key, map[string]any{"inputs": []map[string]any{{"id": sub.ID, "active": true}, {"id": 424242, "active": true}}}).expect(t, http.StatusMultiStatus).decode(t, &batch)
	if batch.NumErrors != 1 || batch.Errors[0].Category != "OBJECT_NOT_FOUND" {
		t.Fatalf("batch update = %+v", batch)
	}
	var list struct {
		Results []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		} `json:"results"`
	}
	a.do("GET", "/app-webhooks/2026-09/"+strconv.FormatInt(appID, 10)+"/subscriptions"+key, nil).expect(t, 200).decode(t, &list)
	if len(list.Results) != 1 || !list.Results[0].Active {
		t.Fatalf("subscriptions = %+v", list)
	}

	a.do("GET", base+"/settings"+key, nil).expect(t, 404)
	a.do("PUT", base+"/settings"+key, map[string]any{"targetUrl": "ftp://x", "throttling": map[string]any{"maxConcurrentRequests": 5}}).expect(t, 400)
	var settings settingsWire
	a.do("PUT", base+"/settings"+key, map[string]any{"targetUrl": "https://example.com/hook", "throttling": map[string]any{"maxConcurrentRequests": 5}}).expect(t, 200).decode(t, &settings)
	if settings.TargetURL != "https://example.com/hook" || settings.Throttling.MaxConcurrentRequests != 5 {
		t.Fatalf("settings = %+v", settings)
	}
	a.do("DELETE", base+"/subscriptions/"+sub.ID+key, nil).expect(t, 204)
	a.do("GET", base+"/subscriptions/"+sub.ID+key, nil).expect(t, 404)
}

func TestWebhookEventsFromImports(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	s := NewTest(t, fastWebhooks())
	p := s.AddPortal(PortalOptions{})
	appID := s.AddApp(App{ClientSecret: "k", TargetURL: rc.URL})
	subscribe(t, s, appID, "company.creation", "")
	var st importStatus
	postImport(t, s, p, importReq("CREATE", map[string]any{"columnObjectTypeId": "0-2", "columnName": "Name", "propertyName": "name"}), "Name\nA\nB\n").expect(t, 200).decode(t, &st)
	eventually(t, "two creation events", func() bool { return len(rc.events()) == 2 })
	for _, ev := range rc.events() {
		if ev.ChangeSource != "IMPORT" || ev.SourceID != st.ID || ev.ChangeFlag != "NEW" {
			t.Fatalf("event = %+v", ev)
		}
	}
}
