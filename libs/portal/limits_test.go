package portal

import (
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tier  Tier
		auth  AuthType
		burst int
		daily int
	}{
		{TierFree, AuthPrivateApp, 100, 250_000},
		{TierStarter, AuthPrivateApp, 100, 250_000},
		{TierProfessional, AuthPrivateApp, 190, 650_000},
		{TierEnterprise, AuthServiceKey, 190, 1_000_000},
		{TierAPIAddon, AuthPrivateApp, 250, 2_000_000},
		{TierFree, AuthOAuth, 100, 250_000},
		{TierEnterprise, AuthOAuth, 110, 1_000_000},
		{TierAPIAddon, AuthOAuth, 110, 2_000_000},
		{"", AuthPrivateApp, 100, 250_000},
	}
	for _, c := range cases {
		cfg := &Config{HubSpot: HubSpot{Tier: c.tier, Auth: Auth{Type: c.auth}}}
		want := Limits{Burst: c.burst, Interval: 10 * time.Second, Daily: c.daily, SearchPerSecond: 5}
		if got := cfg.Limits(); got != want {
			t.Errorf("Limits(%s, %s) = %+v, want %+v", c.tier, c.auth, got, want)
		}
	}
}
