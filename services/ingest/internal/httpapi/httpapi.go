// Package httpapi serves the ingest HTTP API:
//
//	POST /v1/portals/{portal}/signals   {"signals": [...]}
//	POST /v1/portals/{portal}/scores    {"scores": [...]}
//
// Status codes: 202 every item stored (or already stored); 207 some items rejected, the rest
// stored; 400 nothing stored because every item (or the body) is invalid; 401 missing or
// unknown key; 403 a key of another portal; 413 body or batch too large; 415 not JSON;
// 503 JetStream unavailable (with Retry-After; nothing was stored).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/ingest/internal/intake"
	"github.com/signalbridge/signalbridge/services/ingest/internal/jsonapi"
)

// DefaultMaxBody is the default request body limit: 1000 generous items.
const DefaultMaxBody = 8 << 20

// API is the HTTP front door of ingest.
type API struct {
	in         *intake.Intake
	maxBody    int64
	retryAfter int
	log        *slog.Logger
}

// New returns the API; maxBody ≤ 0 means DefaultMaxBody.
func New(in *intake.Intake, maxBody int64, log *slog.Logger) *API {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return &API{in: in, maxBody: maxBody, retryAfter: 2, log: log}
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/portals/{portal}/signals", a.signals)
	mux.HandleFunc("POST /v1/portals/{portal}/scores", a.scores)
}

func (a *API) signals(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(ctx context.Context, portalID, keyName string, body io.Reader) ([]intake.Result, intake.Counts, error) {
		items, err := jsonapi.DecodeSignals(body)
		if err != nil {
			return nil, intake.Counts{}, err
		}
		return a.in.Signals(ctx, portalID, keyName, items, 0)
	})
}

func (a *API) scores(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(ctx context.Context, portalID, keyName string, body io.Reader) ([]intake.Result, intake.Counts, error) {
		items, err := jsonapi.DecodeScores(body)
		if err != nil {
			return nil, intake.Counts{}, err
		}
		return a.in.Scores(ctx, portalID, keyName, items, 0)
	})
}

type handleFunc func(ctx context.Context, portalID, keyName string, body io.Reader) ([]intake.Result, intake.Counts, error)

func (a *API) serve(w http.ResponseWriter, r *http.Request, h handleFunc) {
	portalID := r.PathValue("portal")
	if err := natsx.ValidToken(portalID); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_portal", "portal id in the path: "+err.Error())
		return
	}
	keyName, err := a.in.Authorize(portalID, bearer(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Content-Type must be application/json (got "+strconv.Quote(ct)+")")
		return
	}
	if r.ContentLength > a.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large",
			"body is "+strconv.FormatInt(r.ContentLength, 10)+" bytes; the limit is "+strconv.FormatInt(a.maxBody, 10))
		return
	}
	body := http.MaxBytesReader(w, r.Body, a.maxBody)
	results, counts, err := h(r.Context(), portalID, keyName, body)
	if err != nil {
		a.fail(w, err)
		return
	}
	status := http.StatusAccepted
	switch {
	case counts.Rejected == len(results):
		status = http.StatusBadRequest
	case counts.Rejected > 0:
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, jsonapi.NewResponse(results, counts))
}

// fail maps an error to its status code.
func (a *API) fail(w http.ResponseWriter, err error) {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, intake.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="signalbridge-ingest"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
	case errors.Is(err, intake.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
	case errors.As(err, &maxErr):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large",
			"body exceeds the limit of "+strconv.FormatInt(maxErr.Limit, 10)+" bytes")
	case errors.Is(err, intake.ErrTooMany):
		writeError(w, http.StatusRequestEntityTooLarge, "too_many_items", err.Error())
	case errors.Is(err, intake.ErrEmpty), errors.Is(err, jsonapi.ErrMalformed):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, natsx.ErrUnavailable):
		a.log.Warn("jetstream unavailable, answering 503", "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "event store unavailable; nothing was stored, retry later")
	default:
		a.log.Error("ingest request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error; nothing was stored")
	}
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, jsonapi.ErrorBody{Error: jsonapi.ErrorDetail{Code: code, Message: msg}})
}
