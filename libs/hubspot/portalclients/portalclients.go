// Package portalclients builds and keeps one HubSpot client per portal, from the portal's
// live configuration and the secrets it names, all sharing one quota governor (so that every
// workload of every replica spends a portal's quota together). A portal's client is rebuilt
// when its configuration changes.
//
//	clients, err := portalclients.New(portalclients.Config{
//		BaseURL: "https://api.hubapi.com", Portals: registry, Governor: gov, Secrets: secrets.Lookup,
//	})
//	deps.HubSpot = clients.Client
package portalclients

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// Portals is the live portal configuration; *portal.Registry implements it. The registry
// replaces a portal's *portal.Config when it changes, which is how a change is noticed.
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
}

// Config says where HubSpot is and what the clients share.
type Config struct {
	// BaseURL is the HubSpot API root (https://api.hubapi.com, or a sandbox's URL). OAuth
	// tokens are refreshed at BaseURL + /oauth/v1/token. Required.
	BaseURL string
	// Portals is the live portal configuration. Required.
	Portals Portals
	// Governor admits every call against its portal's shared quota; each portal's limits are
	// set on it from the portal's tier and auth type. Required.
	Governor *quota.Governor
	// Secrets resolves a secret name of a portal config (hubspot.auth.secret, the OAuth
	// secrets) to its value; false when it is not set. Required.
	Secrets func(name string) (string, bool)
	// DefaultClass is the priority of calls whose context names none (default quota.Bulk).
	DefaultClass quota.Class
	// HTTPClient sends the API calls and OAuth refreshes (default: the hubspot package's).
	HTTPClient *http.Client
	// Logger receives the clients' retry decisions (default slog.Default()).
	Logger *slog.Logger
	// MeterProvider receives every client's metrics (calls, durations, retries, 429s,
	// quota waits); default: the global one.
	MeterProvider metric.MeterProvider
	// TracerProvider receives every client's HTTP spans; default: the global one.
	TracerProvider trace.TracerProvider
}

// Factory hands out the portals' clients. It is safe for concurrent use.
type Factory struct {
	cfg Config

	mu    sync.Mutex
	cache map[string]built
}

type built struct {
	cfg    *portal.Config // the config the client was built from
	client *hubspot.Client
}

// New checks cfg and returns an empty factory; clients are built on first use.
func New(cfg Config) (*Factory, error) {
	var missing []string
	if cfg.BaseURL == "" {
		missing = append(missing, "BaseURL")
	}
	if cfg.Portals == nil {
		missing = append(missing, "Portals")
	}
	if cfg.Governor == nil {
		missing = append(missing, "Governor")
	}
	if cfg.Secrets == nil {
		missing = append(missing, "Secrets")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("portalclients: missing %s", strings.Join(missing, ", "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Factory{cfg: cfg, cache: map[string]built{}}, nil
}

// Client returns the portal's client, building it (and setting the portal's limits on the
// governor) on first use and whenever the portal's config has changed since. It fails when
// the portal is not configured, its id is not a HubSpot account id, or a secret its config
// names is not set.
func (f *Factory) Client(portalID string) (*hubspot.Client, error) {
	pc, ok := f.cfg.Portals.Get(portalID)
	if !ok {
		return nil, fmt.Errorf("portal %s is not configured", portalID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.cache[portalID]; ok && b.cfg == pc {
		return b.client, nil
	}
	id, err := strconv.ParseInt(portalID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("portal id %q is not a HubSpot account id: %w", portalID, err)
	}
	auth, err := f.auth(pc)
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", portalID, err)
	}
	l := pc.Limits()
	if err := f.cfg.Governor.SetLimits(id, quota.Limits{
		Burst: l.Burst, Interval: l.Interval, SearchPerSecond: l.SearchPerSecond, Daily: l.Daily, DailyReserve: l.Daily / 20,
	}); err != nil {
		return nil, fmt.Errorf("portal %s: quota limits: %w", portalID, err)
	}
	c, err := hubspot.New(hubspot.Config{
		BaseURL: f.cfg.BaseURL, APIVersion: string(pc.HubSpot.APIVersion), PortalID: id, Auth: auth,
		Governor: f.cfg.Governor, DefaultClass: f.cfg.DefaultClass, HTTPClient: f.cfg.HTTPClient, Logger: f.cfg.Logger,
		MeterProvider: f.cfg.MeterProvider, TracerProvider: f.cfg.TracerProvider,
	})
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", portalID, err)
	}
	f.cache[portalID] = built{cfg: pc, client: c}
	return c, nil
}

// auth builds the portal's credentials. A bearer token is looked up again on every request,
// so a rotated secret file is used once the resolver re-reads it.
func (f *Factory) auth(pc *portal.Config) (hubspot.Auth, error) {
	a := pc.HubSpot.Auth
	switch a.Type {
	case portal.AuthPrivateApp, portal.AuthServiceKey:
		if _, err := f.secret(a.Secret); err != nil {
			return nil, err
		}
		return secretBearer{name: a.Secret, secrets: f.cfg.Secrets}, nil
	case portal.AuthOAuth:
		id, err := f.secret(a.ClientIDSecret)
		if err != nil {
			return nil, err
		}
		secret, err := f.secret(a.ClientSecretSecret)
		if err != nil {
			return nil, err
		}
		refresh, err := f.secret(a.RefreshTokenSecret)
		if err != nil {
			return nil, err
		}
		return hubspot.OAuth(&oauth2.Config{
			ClientID: id, ClientSecret: secret,
			Endpoint: oauth2.Endpoint{
				TokenURL:  strings.TrimRight(f.cfg.BaseURL, "/") + "/oauth/v1/token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
		}, &oauth2.Token{RefreshToken: refresh}, hubspot.OAuthOptions{HTTPClient: f.cfg.HTTPClient})
	}
	return nil, fmt.Errorf("hubspot.auth.type %q is not supported", a.Type)
}

func (f *Factory) secret(name string) (string, error) {
	if name == "" {
		return "", errors.New("the portal config names no secret")
	}
	v, ok := f.cfg.Secrets(name)
	if !ok {
		return "", missingSecret(name)
	}
	return v, nil
}

func missingSecret(name string) error {
	return fmt.Errorf("secret %s is not set (environment variable %s, or a file named by %s_FILE)", name, name, name)
}

// secretBearer authenticates with the current value of a named token.
type secretBearer struct {
	name    string
	secrets func(string) (string, bool)
}

func (b secretBearer) Authorize(req *http.Request) error {
	v, ok := b.secrets(b.name)
	if !ok {
		return missingSecret(b.name)
	}
	return hubspot.BearerToken(v).Authorize(req)
}
