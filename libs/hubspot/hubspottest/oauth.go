package hubspottest

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// oauthError is the body HubSpot's token endpoint returns on failure.
type oauthError struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
}

func writeOAuthError(w http.ResponseWriter, status, message string) {
	writeJSON(w, http.StatusBadRequest, oauthError{Status: status, Message: message, CorrelationID: newCorrelationID()})
}

// POST /oauth/v1/token (grant_type=refresh_token, form encoded). The refresh
// token stays valid; every grant issues a new access token that expires
// after the app's AccessTokenTTL.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, "BAD_REQUEST", "could not parse the form body: "+err.Error())
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "refresh_token":
	case "":
		writeOAuthError(w, "BAD_GRANT_TYPE", "missing grant_type")
		return
	default:
		writeOAuthError(w, "BAD_GRANT_TYPE", "unsupported grant_type "+gt+"; the sandbox supports refresh_token")
		return
	}
	clientID := r.PostForm.Get("client_id")
	secret := r.PostForm.Get("client_secret")
	refresh := r.PostForm.Get("refresh_token")

	var portal *Portal
	for _, p := range s.Portals() {
		if p.oauth != nil && p.oauth.ClientID == clientID {
			if p.oauth.RefreshToken == refresh || portal == nil {
				portal = p
			}
		}
	}
	switch {
	case clientID == "" || portal == nil:
		writeOAuthError(w, "BAD_CLIENT_ID", "missing or invalid client id")
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(portal.oauth.ClientSecret)) != 1:
		writeOAuthError(w, "BAD_CLIENT_SECRET", "missing or invalid client secret")
		return
	case refresh == "" || refresh != portal.oauth.RefreshToken:
		writeOAuthError(w, "BAD_REFRESH_TOKEN", "missing or unknown refresh token")
		return
	}
	o := portal.oauth
	access := "CN" + strings.ReplaceAll(uuid.NewString(), "-", "") + strings.ReplaceAll(uuid.NewString(), "-", "")
	s.mu.Lock()
	s.tokens[access] = &tokenInfo{portal: portal, oauth: true, appID: o.AppID, expires: s.now().Add(o.AccessTokenTTL)}
	s.mu.Unlock()
	portal.stats.refresh()
	writeJSON(w, http.StatusOK, struct {
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}{"bearer", o.RefreshToken, access, int64(o.AccessTokenTTL.Seconds())})
}
