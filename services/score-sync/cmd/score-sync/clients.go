package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// clients builds one HubSpot client per portal, sharing one quota governor (Redis-backed, so
// every replica of every service spends the portal's quota together), and rebuilds a portal's
// client when its config changes.
type clients struct {
	portals *portal.Registry
	gov     *quota.Governor
	baseURL string
	getenv  func(string) string
	log     *slog.Logger

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	cfg    *portal.Config
	client *hubspot.Client
}

func newClients(portals *portal.Registry, rdb redis.UniversalClient, baseURL string, getenv func(string) string, log *slog.Logger) (*clients, error) {
	gov, err := quota.New(quota.Config{Redis: rdb, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("quota governor: %w", err)
	}
	return &clients{portals: portals, gov: gov, baseURL: baseURL, getenv: getenv, log: log, cache: map[string]cached{}}, nil
}

// Client returns the portal's HubSpot client.
func (c *clients) Client(portalID string) (*hubspot.Client, error) {
	cfg, ok := c.portals.Get(portalID)
	if !ok {
		return nil, fmt.Errorf("portal %s is not configured", portalID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, ok := c.cache[portalID]; ok && got.cfg == cfg {
		return got.client, nil
	}
	id, err := strconv.ParseInt(portalID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("portal id %q is not a HubSpot account id: %w", portalID, err)
	}
	l := cfg.Limits()
	if err := c.gov.SetLimits(id, quota.Limits{Burst: l.Burst, Interval: l.Interval, Daily: l.Daily,
		DailyReserve: l.Daily / 20, SearchPerSecond: l.SearchPerSecond}); err != nil {
		return nil, err
	}
	auth, err := c.auth(cfg)
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", portalID, err)
	}
	client, err := hubspot.New(hubspot.Config{
		BaseURL: c.baseURL, APIVersion: string(cfg.HubSpot.APIVersion), PortalID: id, Auth: auth,
		Governor: c.gov, DefaultClass: quota.Bulk, Logger: c.log,
	})
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", portalID, err)
	}
	c.cache[portalID] = cached{cfg: cfg, client: client}
	return client, nil
}

// secret reads the variable name, or the file named by name_FILE.
func (c *clients) secret(name string) (string, error) {
	if name == "" {
		return "", errors.New("no secret name in the portal config")
	}
	if v := c.getenv(name); v != "" {
		return v, nil
	}
	if path := c.getenv(name + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", fmt.Errorf("secret %s is not set (neither %s nor %s_FILE)", name, name, name)
}

func (c *clients) auth(cfg *portal.Config) (hubspot.Auth, error) {
	a := cfg.HubSpot.Auth
	switch a.Type {
	case portal.AuthPrivateApp, portal.AuthServiceKey:
		tok, err := c.secret(a.Secret)
		if err != nil {
			return nil, err
		}
		return hubspot.BearerToken(tok), nil
	case portal.AuthOAuth:
		id, err := c.secret(a.ClientIDSecret)
		if err != nil {
			return nil, err
		}
		sec, err := c.secret(a.ClientSecretSecret)
		if err != nil {
			return nil, err
		}
		refresh, err := c.secret(a.RefreshTokenSecret)
		if err != nil {
			return nil, err
		}
		return hubspot.OAuth(&oauth2.Config{ClientID: id, ClientSecret: sec, Endpoint: oauth2.Endpoint{
			TokenURL: strings.TrimRight(c.baseURL, "/") + "/oauth/v1/token", AuthStyle: oauth2.AuthStyleInParams,
		}}, &oauth2.Token{RefreshToken: refresh}, hubspot.OAuthOptions{})
	}
	return nil, fmt.Errorf("hubspot.auth.type %q is not supported", a.Type)
}
