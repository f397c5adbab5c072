package hubspot_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

func oauthClient(t *testing.T, srv *hubspottest.Server, p *hubspottest.Portal, opts hubspot.OAuthOptions) *hubspot.Client {
	t.Helper()
	app := p.OAuth()
	cfg := &oauth2.Config{
		ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/oauth/v1/token", AuthStyle: oauth2.AuthStyleInParams},
	}
	auth, err := hubspot.OAuth(cfg, &oauth2.Token{RefreshToken: app.RefreshToken}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, srv, p, func(c *hubspot.Config) { c.Auth = auth })
}

func TestOAuth_ConcurrentCallersShareOneRefresh(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{OAuth: &hubspottest.OAuthApp{AccessTokenTTL: 30 * time.Minute}})
	var refreshed atomic.Int32
	c := oauthClient(t, srv, p, hubspot.OAuthOptions{OnRefresh: func(tok *oauth2.Token) {
		if tok.AccessToken == "" || tok.Expiry.IsZero() {
			t.Errorf("OnRefresh got %+v", tok)
		}
		refreshed.Add(1)
	}})
	ids := p.SeedCompanies(map[string]string{"name": "x"})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := c.Get(ctx, hubspot.Companies, ids[0], hubspot.GetOptions{}); err != nil {
				t.Errorf("Get: %v", err)
			}
		})
	}
	wg.Wait()
	if n := p.Stats().TokenRefreshes; n != 1 || refreshed.Load() != 1 {
		t.Fatalf("%d refreshes at the sandbox, %d OnRefresh calls; want exactly 1 for 40 concurrent callers", n, refreshed.Load())
	}
}

func TestOAuth_RefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	// Tokens live 4 minutes; with the default 5-minute early expiry each one
	// counts as expiring at once, so every call refreshes first and never
	// meets an expired token.
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{OAuth: &hubspottest.OAuthApp{AccessTokenTTL: 4 * time.Minute}})
	c := oauthClient(t, srv, p, hubspot.OAuthOptions{})
	ids := p.SeedCompanies(map[string]string{"name": "x"})
	for i := range 3 {
		if _, err := c.Get(testCtx(t), hubspot.Companies, ids[0], hubspot.GetOptions{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := p.Stats().TokenRefreshes; n != 3 {
		t.Fatalf("%d refreshes for 3 calls with a token inside the early-expiry window, want 3", n)
	}
	// With a 1-minute early expiry the same tokens are reused.
	c2 := oauthClient(t, srv, p, hubspot.OAuthOptions{EarlyExpiry: time.Minute})
	p.ResetStats()
	for range 3 {
		if _, err := c2.Get(testCtx(t), hubspot.Companies, ids[0], hubspot.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Stats().TokenRefreshes; n != 1 {
		t.Fatalf("%d refreshes with EarlyExpiry 1m, want 1", n)
	}
}

func TestOAuth_OneRefreshAtATime(t *testing.T) {
	t.Parallel()
	// A token endpoint that is slow and issues 1-second tokens (always inside
	// the early-expiry window): every call refreshes, and the endpoint checks
	// that no two refreshes overlap.
	var inFlight, maxInFlight, issued atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		if r.PostForm.Get("refresh_token") == "revoked" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"refresh token revoked"}`))
			return
		}
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"tok-%d","refresh_token":"rt","expires_in":1,"token_type":"bearer"}`, issued.Add(1))
	}))
	t.Cleanup(tokens.Close)
	var apiCalls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		apiCalls.Add(1)
		_, _ = w.Write([]byte(`{"id":"1","properties":{},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","archived":false}`))
	}))
	t.Cleanup(api.Close)

	newAuthed := func(refresh string) *hubspot.Client {
		auth, err := hubspot.OAuth(&oauth2.Config{ClientID: "id", ClientSecret: "s",
			Endpoint: oauth2.Endpoint{TokenURL: tokens.URL, AuthStyle: oauth2.AuthStyleInParams}},
			&oauth2.Token{RefreshToken: refresh}, hubspot.OAuthOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := hubspot.New(hubspot.Config{BaseURL: api.URL, Auth: auth, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newAuthed("rt")
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range 15 {
		wg.Go(func() {
			if _, err := c.Get(ctx, hubspot.Companies, "1", hubspot.GetOptions{}); err != nil {
				t.Errorf("Get: %v", err)
			}
		})
	}
	wg.Wait()
	if maxInFlight.Load() != 1 {
		t.Fatalf("%d refreshes ran at the same time, want 1", maxInFlight.Load())
	}
	if issued.Load() != 15 || apiCalls.Load() != 15 {
		t.Fatalf("issued %d tokens for %d API calls, want 15 each (every token is inside the early-expiry window)", issued.Load(), apiCalls.Load())
	}

	// A refused refresh is an error naming OAuth, sent to the API never.
	before := apiCalls.Load()
	if _, err := newAuthed("revoked").Get(ctx, hubspot.Companies, "1", hubspot.GetOptions{}); err == nil || !strings.Contains(err.Error(), "oauth token") {
		t.Fatalf("revoked refresh token: %v", err)
	}
	if apiCalls.Load() != before {
		t.Fatal("an API call was made without a token")
	}
	if _, err := hubspot.OAuth(nil, &oauth2.Token{RefreshToken: "x"}, hubspot.OAuthOptions{}); err == nil {
		t.Fatal("OAuth accepted a nil config")
	}
}
