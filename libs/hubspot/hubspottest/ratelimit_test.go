package hubspottest

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTenSecondlyLimit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now})
	p := s.AddPortal(PortalOptions{Tier: TierProfessional})
	a := newAPI(t, s, p)

	for i := 1; i <= 190; i++ {
		r := a.do("GET", "/crm/v3/objects/companies", nil).expect(t, 200)
		if got := r.header.Get("X-HubSpot-RateLimit-Remaining"); got != strconv.Itoa(190-i) {
			t.Fatalf("request %d: Remaining = %q, want %d", i, got, 190-i)
		}
		if i == 1 {
			want := map[string]string{
				"X-HubSpot-RateLimit-Max":                   "190",
				"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
				"X-HubSpot-RateLimit-Daily":                 "650000",
				"X-HubSpot-RateLimit-Daily-Remaining":       "649999",
			}
			for h, v := range want {
				if got := r.header.Get(h); got != v {
					t.Fatalf("%s = %q, want %q", h, got, v)
				}
			}
		}
		clock.Advance(10 * time.Millisecond)
	}
	r := a.do("GET", "/crm/v3/objects/companies", nil).expect(t, http.StatusTooManyRequests)
	var body map[string]any
	r.decode(t, &body)
	want := map[string]any{"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", "category": "RATE_LIMITS"}
	for k, v := range want {
		if body[k] != v {
			t.Fatalf("429 body %s = %v, want %v (body %s)", k, body[k], v, r.raw)
		}
	}
	if body["correlationId"] == "" || body["requestId"] == "" {
		t.Fatalf("429 body lacks ids: %s", r.raw)
	}
	if r.header.Get("X-HubSpot-RateLimit-Remaining") != "0" {
		t.Fatalf("429 Remaining = %q", r.header.Get("X-HubSpot-RateLimit-Remaining"))
	}

	// The window rolls: once the first request is 10 s old, one slot frees.
	clock.Advance(10*time.Second - 1900*time.Millisecond)
	a.do("GET", "/crm/v3/objects/companies", nil).expect(t, 200)
	a.do("GET", "/crm/v3/objects/companies", nil).expect(t, http.StatusTooManyRequests)

	st := p.Stats()
	if st.RateLimited[PolicyTenSecondly] != 2 || st.Statuses[429] != 2 || st.Statuses[200] != 191 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSearchSecondlyLimitAndHeaders(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	for range 5 {
		r := a.do("POST", "/crm/v3/objects/contacts/search", map[string]any{}).expect(t, 200)
		for h := range r.header {
			if strings.HasPrefix(strings.ToLower(h), "x-hubspot-ratelimit") {
				t.Fatalf("search response carries %s", h)
			}
		}
	}
	r := a.do("POST", "/crm/v3/objects/contacts/search", map[string]any{}).expect(t, http.StatusTooManyRequests)
	var body map[string]any
	r.decode(t, &body)
	if body["message"] != "You have reached your secondly limit." || body["category"] != "RATE_LIMITS" {
		t.Fatalf("search 429 = %s", r.raw)
	}
	// Search does not consume the ten-secondly budget...
	g := a.do("GET", "/crm/v3/objects/contacts", nil).expect(t, 200)
	if g.header.Get("X-HubSpot-RateLimit-Remaining") != "99" {
		t.Fatalf("Remaining after searches = %q, want 99", g.header.Get("X-HubSpot-RateLimit-Remaining"))
	}
	// ...but counts toward the daily one.
	if g.header.Get("X-HubSpot-RateLimit-Daily-Remaining") != strconv.Itoa(250_000-6) {
		t.Fatalf("Daily-Remaining = %q", g.header.Get("X-HubSpot-RateLimit-Daily-Remaining"))
	}
	clock.Advance(time.Second)
	a.do("POST", "/crm/v3/objects/contacts/search", map[string]any{}).expect(t, 200)
	if st := p.Stats(); st.RateLimited[PolicySecondly] != 1 || st.SearchCalls != 6 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestDailyLimit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now})
	p := s.AddPortal(PortalOptions{Daily: 3})
	a := newAPI(t, s, p)
	for range 3 {
		a.do("GET", "/crm/v3/owners", nil).expect(t, 200)
		clock.Advance(time.Minute)
	}
	r := a.do("GET", "/crm/v3/owners", nil).expect(t, http.StatusTooManyRequests)
	var body map[string]any
	r.decode(t, &body)
	if body["policyName"] != "DAILY" || body["message"] != "You have reached your daily limit." || body["errorType"] != "RATE_LIMIT" {
		t.Fatalf("daily 429 = %s", r.raw)
	}
	if r.header.Get("X-HubSpot-RateLimit-Daily-Remaining") != "0" {
		t.Fatalf("Daily-Remaining = %q", r.header.Get("X-HubSpot-RateLimit-Daily-Remaining"))
	}
	// The quota resets at midnight (UTC in the sandbox).
	clock.Advance(24 * time.Hour)
	a.do("GET", "/crm/v3/owners", nil).expect(t, 200)
}

func TestOAuthRefreshAndExpiry(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now})
	p := s.AddPortal(PortalOptions{OAuth: &OAuthApp{ClientID: "cid", ClientSecret: "secret", RefreshToken: "refresh-1", AccessTokenTTL: 30 * time.Minute}})

	token := func(form url.Values) response {
		resp, err := http.PostForm(s.URL+"/oauth/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{status: resp.StatusCode, header: resp.Header, raw: raw}
	}
	good := url.Values{"grant_type": {"refresh_token"}, "client_id": {"cid"}, "client_secret": {"secret"}, "refresh_token": {"refresh-1"}}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		TokenType    string `json:"token_type"`
	}
	token(good).expect(t, 200).decode(t, &tok)
	if tok.AccessToken == "" || tok.RefreshToken != "refresh-1" || tok.ExpiresIn != 1800 || tok.TokenType != "bearer" {
		t.Fatalf("token = %+v", tok)
	}

	a := &api{t: t, base: s.URL, token: tok.AccessToken}
	r := a.do("GET", "/crm/v3/objects/contacts", nil).expect(t, 200)
	if r.header.Get("X-HubSpot-RateLimit-Max") != "110" || r.header.Get("X-HubSpot-RateLimit-Daily") != "" {
		t.Fatalf("OAuth headers: Max %q, Daily %q", r.header.Get("X-HubSpot-RateLimit-Max"), r.header.Get("X-HubSpot-RateLimit-Daily"))
	}

	clock.Advance(32 * time.Minute)
	e := a.do("GET", "/crm/v3/objects/contacts", nil).expect(t, http.StatusUnauthorized).errorBody(t)
	if e.Category != "EXPIRED_AUTHENTICATION" || !strings.Contains(e.Message, "expired 2 minute(s) ago") {
		t.Fatalf("expired = %+v", e)
	}

	bad := []struct {
		name   string
		mutate func(url.Values)
		status string
	}{
		{"wrong secret", func(v url.Values) { v.Set("client_secret", "nope") }, "BAD_CLIENT_SECRET"},
		{"wrong refresh token", func(v url.Values) { v.Set("refresh_token", "nope") }, "BAD_REFRESH_TOKEN"},
		{"unknown client", func(v url.Values) { v.Set("client_id", "nope") }, "BAD_CLIENT_ID"},
		{"wrong grant", func(v url.Values) { v.Set("grant_type", "password") }, "BAD_GRANT_TYPE"},
	}
	for _, tc := range bad {
		form := url.Values{}
		for k, v := range good {
			form[k] = append([]string(nil), v...)
		}
		tc.mutate(form)
		var body map[string]any
		token(form).expect(t, 400).decode(t, &body)
		if body["status"] != tc.status {
			t.Fatalf("%s: body = %v", tc.name, body)
		}
	}

	token(good).expect(t, 200).decode(t, &tok)
	(&api{t: t, base: s.URL, token: tok.AccessToken}).do("GET", "/crm/v3/objects/contacts", nil).expect(t, 200)
	if got := p.Stats().TokenRefreshes; got != 2 {
		t.Fatalf("TokenRefreshes = %d, want 2", got)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)

	p.Faults(Faults{Next429: 2, PathPrefix: "/crm/v3/objects/companies"})
	a.do("GET", "/crm/v3/objects/contacts", nil).expect(t, 200) // does not match
	for range 2 {
		r := a.do("GET", "/crm/objects/2026-09/companies", nil).expect(t, 429)
		var body map[string]any
		r.decode(t, &body)
		if body["policyName"] != PolicyTenSecondly {
			t.Fatalf("storm 429 = %s", r.raw)
		}
	}
	a.do("GET", "/crm/v3/objects/companies", nil).expect(t, 200)

	p.Faults(Faults{NextErrors: 1, ErrorStatus: 502})
	a.do("GET", "/crm/v3/objects/companies", nil).expect(t, 502)
	a.do("GET", "/crm/v3/objects/companies", nil).expect(t, 200)

	p.Faults(Faults{ErrorRate: 1})
	a.do("GET", "/crm/v3/owners", nil).expect(t, 500)
	p.Faults(Faults{Storm429: true, Method: "POST"})
	a.do("GET", "/crm/v3/owners", nil).expect(t, 200)
	a.do("POST", "/crm/v3/objects/companies/search", map[string]any{}).expect(t, 429)
	p.Faults(Faults{})

	st := p.Stats()
	if st.FaultsInjected != 5 || st.RateLimited[PolicyTenSecondly] != 3 || st.Statuses[502] != 1 || st.Statuses[500] != 1 {
		t.Fatalf("stats = %+v", st)
	}
}
