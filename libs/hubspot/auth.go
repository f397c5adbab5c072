package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/oauth2"
)

// Auth puts credentials on a request. It is called once per attempt and must
// be safe for concurrent use.
type Auth interface {
	Authorize(req *http.Request) error
}

// BearerToken authenticates with a static token: a service key or a
// (legacy) private-app access token.
func BearerToken(secret string) Auth { return bearerToken(secret) }

type bearerToken string

func (t bearerToken) Authorize(req *http.Request) error {
	if t == "" {
		return errors.New("hubspot: bearer token is empty")
	}
	req.Header.Set("Authorization", "Bearer "+string(t))
	return nil
}

// OAuthOptions tune OAuth.
type OAuthOptions struct {
	// EarlyExpiry refreshes the access token this long before it expires
	// (default 5 minutes; HubSpot access tokens live 30 minutes).
	EarlyExpiry time.Duration
	// HTTPClient sends refresh requests to the token endpoint (default: a
	// client with a 30 s timeout and an otelhttp transport).
	HTTPClient *http.Client
	// OnRefresh, when set, is called with every newly issued token (for
	// example to persist it). It runs while other callers wait for the
	// token, so keep it short.
	OnRefresh func(*oauth2.Token)
}

// OAuth authenticates as an installed OAuth app. cfg is the app's OAuth
// configuration (ClientID, ClientSecret, Endpoint.TokenURL =
// https://api.hubapi.com/oauth/v1/token, AuthStyle in params) and tok the
// stored token, whose RefreshToken is used to obtain new access tokens.
//
// The access token is refreshed EarlyExpiry before it expires, and at most
// one refresh runs at a time: concurrent callers wait for it and then share
// the new token (oauth2.ReuseTokenSource serialises Token calls).
func OAuth(cfg *oauth2.Config, tok *oauth2.Token, opts OAuthOptions) (Auth, error) {
	if cfg == nil {
		return nil, errors.New("hubspot: OAuth: nil oauth2.Config")
	}
	if tok == nil || (tok.RefreshToken == "" && tok.AccessToken == "") {
		return nil, errors.New("hubspot: OAuth: token needs a refresh token or an access token")
	}
	if opts.EarlyExpiry <= 0 {
		opts.EarlyExpiry = 5 * time.Minute
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport)}
	}
	r := &refresher{
		cfg: cfg,
		// The refresher keeps this context for every refresh: it only
		// carries the HTTP client and is never cancelled.
		ctx:          context.WithValue(context.Background(), oauth2.HTTPClient, hc),
		refreshToken: tok.RefreshToken,
		notify:       opts.OnRefresh,
	}
	start := *tok // ReuseTokenSourceWithExpiry keeps and mutates the token it is given
	return &oauthAuth{src: oauth2.ReuseTokenSourceWithExpiry(&start, r, opts.EarlyExpiry)}, nil
}

// TokenSource authenticates with any oauth2.TokenSource, wrapped so that
// concurrent callers share one token and one refresh.
func TokenSource(src oauth2.TokenSource) Auth {
	return &oauthAuth{src: oauth2.ReuseTokenSource(nil, src)}
}

type oauthAuth struct{ src oauth2.TokenSource }

func (a *oauthAuth) Authorize(req *http.Request) error {
	tok, err := a.src.Token()
	if err != nil {
		return fmt.Errorf("hubspot: oauth token: %w", err)
	}
	tok.SetAuthHeader(req)
	return nil
}

// refresher obtains a new token with the refresh-token grant. The
// ReuseTokenSource around it serialises its calls, so it runs one refresh at
// a time and needs no lock of its own.
type refresher struct {
	cfg          *oauth2.Config
	ctx          context.Context
	refreshToken string
	notify       func(*oauth2.Token)
}

func (r *refresher) Token() (*oauth2.Token, error) {
	if r.refreshToken == "" {
		return nil, errors.New("access token expired and no refresh token is set")
	}
	// An empty access token makes the config's source refresh at once.
	tok, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: r.refreshToken}).Token()
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" {
		r.refreshToken = tok.RefreshToken // HubSpot may rotate it
	}
	if r.notify != nil {
		r.notify(tok)
	}
	return tok, nil
}
