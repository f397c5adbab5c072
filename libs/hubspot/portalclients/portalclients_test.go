package portalclients_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/portalclients"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/libs/telemetry/telemetrytest"
)

// portals is a live registry over an embedded JetStream's portals bucket.
type portals struct {
	*portal.Registry
	store *portal.Store
}

func newPortals(t *testing.T) *portals {
	t.Helper()
	js := natstest.Run(t).JetStream(t)
	kv, err := js.KeyValue(t.Context(), natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := portal.Watch(t.Context(), kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return &portals{Registry: reg, store: portal.NewStore(kv)}
}

// put stores a portal config and waits until the registry holds it (a new pointer).
func (p *portals) put(t *testing.T, yaml string) *portal.Config {
	t.Helper()
	pc, err := portal.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := p.Get(pc.PortalID)
	if err := p.store.Put(t.Context(), pc); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, ok := p.Get(pc.PortalID); ok && got != before {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("portal %s: the registry never saw the new config", pc.PortalID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withPut stores a portal config, waits for it, and returns p.
func (p *portals) withPut(t *testing.T, yaml string) *portals {
	t.Helper()
	p.put(t, yaml)
	return p
}

// static is a fixed set of configs, for the cases a validated registry cannot hold.
type static map[string]*portal.Config

func (s static) Get(id string) (*portal.Config, bool) { pc, ok := s[id]; return pc, ok }

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok && v != "" }
}

func newFactory(t *testing.T, sb *hubspottest.Server, p portalclients.Portals, secrets func(string) (string, bool)) (*portalclients.Factory, *quota.Governor) {
	t.Helper()
	gov, err := quota.New(quota.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := portalclients.New(portalclients.Config{
		BaseURL: sb.URL, Portals: p, Governor: gov, Secrets: secrets, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, gov
}

func privateApp(id int64, tier string) string {
	return fmt.Sprintf("portal_id: \"%d\"\nname: p%d\nhubspot:\n  auth: { type: private_app, secret: TOKEN_%d }\n  tier: %s\n", id, id, id, tier)
}

// firstCompany reads one company through c, proving auth and routing work.
func firstCompany(ctx context.Context, c *hubspot.Client) (string, error) {
	page, err := c.List(ctx, hubspot.Companies, hubspot.ListOptions{Limit: 1, Properties: []string{"domain"}})
	if err != nil {
		return "", err
	}
	if len(page.Results) != 1 {
		return "", fmt.Errorf("%d companies", len(page.Results))
	}
	return page.Results[0].Properties["domain"], nil
}

func TestClientIsCachedAndRebuiltWhenThePortalConfigChanges(t *testing.T) {
	t.Parallel()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	sb.AddPortal(hubspottest.PortalOptions{ID: 101, Token: "pat-101", Tier: "professional"}).
		SeedCompanies(map[string]string{"name": "Acme", "domain": "acme.example"})
	reg := newPortals(t)
	first := reg.put(t, privateApp(101, "professional"))
	f, gov := newFactory(t, sb, reg, env(map[string]string{"TOKEN_101": "pat-101"}))

	c1, err := f.Client("101")
	if err != nil {
		t.Fatal(err)
	}
	if c1.PortalID() != 101 {
		t.Fatalf("client of portal %d", c1.PortalID())
	}
	if d, err := firstCompany(t.Context(), c1); err != nil || d != "acme.example" {
		t.Fatalf("through the client: %q, %v", d, err)
	}
	if c, _ := f.Client("101"); c != c1 {
		t.Fatal("same config: the client was rebuilt")
	}
	if l, err := gov.Limits(101); err != nil || l.Burst != 190 || l.Daily != 650_000 || l.DailyReserve != 650_000/20 {
		t.Fatalf("governor limits for a professional portal: %+v, %v", l, err)
	}

	second := reg.put(t, privateApp(101, "enterprise"))
	if second == first {
		t.Fatal("the registry kept the old config pointer")
	}
	c2, err := f.Client("101")
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c1 {
		t.Fatal("changed config: the old client was kept")
	}
	if l, _ := gov.Limits(101); l.Daily != 1_000_000 {
		t.Fatalf("limits not updated for the enterprise tier: %+v", l)
	}
	if _, err := firstCompany(t.Context(), c2); err != nil {
		t.Fatal(err)
	}
}

func TestBearerTokenFollowsARotatedSecretFile(t *testing.T) {
	t.Parallel()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	sb.AddPortal(hubspottest.PortalOptions{ID: 102, Token: "pat-new", Tier: "starter"}).
		SeedCompanies(map[string]string{"name": "Acme", "domain": "acme.example"})
	reg := newPortals(t)
	reg.put(t, privateApp(102, "starter"))
	file := "pat-old\n"
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	secrets := service.NewSecrets(func(k string) string {
		if k == "TOKEN_102_FILE" {
			return "/run/secrets/token"
		}
		return ""
	}, func(string) ([]byte, error) { return []byte(file), nil }, func() time.Time { return now })
	f, _ := newFactory(t, sb, reg, secrets.Lookup)

	c, err := f.Client("102")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := firstCompany(t.Context(), c); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("with the old token: %v, want a 401", err)
	}
	file = "pat-new\n"
	now = now.Add(service.SecretFileTTL)
	if _, err := firstCompany(t.Context(), c); err != nil {
		t.Fatalf("after rotation, same client: %v", err)
	}
}

func TestOAuthPortal(t *testing.T) {
	t.Parallel()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	sb.AddPortal(hubspottest.PortalOptions{ID: 103, Tier: "enterprise", OAuth: &hubspottest.OAuthApp{
		ClientID: "client-103", ClientSecret: "client-secret-103", RefreshToken: "refresh-103",
	}}).SeedCompanies(map[string]string{"name": "Acme", "domain": "acme.example"})
	reg := newPortals(t)
	reg.put(t, `portal_id: "103"
name: oauth
hubspot:
  auth: { type: oauth, client_id_secret: APP_ID, client_secret_secret: APP_SECRET, refresh_token_secret: REFRESH_103 }
  tier: enterprise
`)
	secrets := map[string]string{"APP_ID": "client-103", "APP_SECRET": "client-secret-103", "REFRESH_103": "refresh-103"}
	f, gov := newFactory(t, sb, reg, env(secrets))
	c, err := f.Client("103")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := firstCompany(t.Context(), c); err != nil {
		t.Fatalf("through the OAuth client (refresh at the sandbox's token endpoint): %v", err)
	}
	if l, _ := gov.Limits(103); l.Burst != 110 {
		t.Fatalf("OAuth apps get 110 per 10 s, the governor has %+v", l)
	}

	// A missing OAuth secret names the variable and its _FILE variant.
	delete(secrets, "REFRESH_103")
	f2, _ := newFactory(t, sb, reg, env(secrets))
	if _, err := f2.Client("103"); err == nil || !strings.Contains(err.Error(), "REFRESH_103 is not set") || !strings.Contains(err.Error(), "REFRESH_103_FILE") {
		t.Fatalf("missing refresh token secret: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	parse := func(yaml string) *portal.Config {
		pc, err := portal.Parse([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	ps := static{
		"104":                  parse(privateApp(104, "free")),
		"99999999999999999999": parse(privateApp(104, "free")),
	}
	f, _ := newFactory(t, sb, ps, env(map[string]string{}))
	cases := []struct {
		portal string
		want   []string
	}{
		{"404", []string{"portal 404 is not configured"}},
		{"99999999999999999999", []string{`portal id "99999999999999999999" is not a HubSpot account id`}},
		{"104", []string{"portal 104: secret TOKEN_104 is not set", "environment variable TOKEN_104", "TOKEN_104_FILE"}},
	}
	for _, tc := range cases {
		_, err := f.Client(tc.portal)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Client(%s) = %v, want it to say %q", tc.portal, err, w)
			}
		}
	}
	if _, err := portalclients.New(portalclients.Config{}); err == nil || err.Error() != "portalclients: missing BaseURL, Portals, Governor, Secrets" {
		t.Errorf("New without config: %v", err)
	}
}

func TestClientsReportToTheGivenMeterProvider(t *testing.T) {
	t.Parallel()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	sb.AddPortal(hubspottest.PortalOptions{ID: 105, Token: "pat-105", Tier: "professional"}).
		SeedCompanies(map[string]string{"name": "Acme", "domain": "acme.example"})
	reader := sdkmetric.NewManualReader()
	gov, err := quota.New(quota.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := portalclients.New(portalclients.Config{
		BaseURL: sb.URL, Portals: newPortals(t).withPut(t, privateApp(105, "professional")), Governor: gov,
		Secrets: env(map[string]string{"TOKEN_105": "pat-105"}), Logger: slog.New(slog.DiscardHandler),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Client("105")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := firstCompany(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	calls := telemetrytest.Int64(t, reader, "signalbridge.hubspot.calls")
	if calls != 1 {
		t.Errorf("signalbridge.hubspot.calls = %d after one call, want 1", calls)
	}
}
