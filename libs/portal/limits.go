package portal

import "time"

// Limits are the HubSpot API rate limits of one portal, shared by every
// workload and replica that calls HubSpot for it.
type Limits struct {
	// Burst requests are allowed per Interval (HubSpot's TEN_SECONDLY_ROLLING policy).
	Burst    int
	Interval time.Duration
	// Daily requests are allowed per day, reset at midnight in the portal's time zone.
	Daily int
	// SearchPerSecond is the separate limit of the CRM search endpoints.
	SearchPerSecond int
}

// HubSpot's published figures (hubspot-api.md §1).
const (
	burstInterval      = 10 * time.Second
	searchPerSecond    = 5
	oauthBurst         = 110
	dailyFreeStarter   = 250_000
	dailyProfessional  = 650_000
	dailyEnterprise    = 1_000_000
	dailyAPILimitPack  = 1_000_000
	burstFreeStarter   = 100
	burstProEnterprise = 190
	burstAPILimitAddon = 250
)

// Limits returns the portal's rate limits, from its tier:
//
//	tier          burst/10 s   daily
//	free          100          250,000
//	starter       100          250,000
//	professional  190          650,000
//	enterprise    190          1,000,000
//	api_addon     250          2,000,000  (Enterprise + one API Limit Increase pack)
//
// OAuth apps are limited to 110 requests per 10 s per installed account whatever
// the tier, so with oauth auth the burst is at most 110. HubSpot does not count
// OAuth calls against the daily quota; the tier's daily figure is kept anyway as
// a conservative budget. An unknown tier gets the free tier's limits.
func (c *Config) Limits() Limits {
	l := Limits{Burst: burstFreeStarter, Interval: burstInterval, Daily: dailyFreeStarter, SearchPerSecond: searchPerSecond}
	switch c.HubSpot.Tier {
	case TierProfessional:
		l.Burst, l.Daily = burstProEnterprise, dailyProfessional
	case TierEnterprise:
		l.Burst, l.Daily = burstProEnterprise, dailyEnterprise
	case TierAPIAddon:
		l.Burst, l.Daily = burstAPILimitAddon, dailyEnterprise+dailyAPILimitPack
	}
	if c.HubSpot.Auth.Type == AuthOAuth && l.Burst > oauthBurst {
		l.Burst = oauthBurst
	}
	return l
}
