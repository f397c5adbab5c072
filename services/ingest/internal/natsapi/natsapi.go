// Package natsapi serves ingest as a NATS request/reply service (nats.go micro), for systems
// already on the bus:
//
//	ingest.v1.<portal>.signals   body {"signals": [...]}, header Authorization: Bearer <key>
//	ingest.v1.<portal>.scores    body {"scores": [...]}
//
// The reply is the same JSON as the HTTP API. Refusals are micro errors (headers
// Nats-Service-Error-Code with the HTTP-style status, Nats-Service-Error with the message).
package natsapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/ingest/internal/intake"
	"github.com/signalbridge/signalbridge/services/ingest/internal/jsonapi"
)

// Options configure the service.
type Options struct {
	Version string
	// Concurrency is how many requests are handled at once (default 32).
	Concurrency int
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
}

// Service is the running NATS endpoint.
type Service struct {
	svc  micro.Service
	sem  chan struct{}
	in   *intake.Intake
	opts Options
	log  *slog.Logger
	ctx  context.Context
}

// Start registers the micro service on nc. Stop it with Stop.
func Start(ctx context.Context, nc *nats.Conn, in *intake.Intake, opts Options, log *slog.Logger) (*Service, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Version == "" {
		opts.Version = "0.1.0"
	}
	s := &Service{sem: make(chan struct{}, opts.Concurrency), in: in, opts: opts, log: log, ctx: ctx}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        "signalbridge-ingest",
		Version:     opts.Version,
		Description: "Accepts intent signals and account scores for a portal",
		QueueGroup:  "ingest",
	})
	if err != nil {
		return nil, err
	}
	s.svc = svc
	if err := svc.AddEndpoint("signals", micro.HandlerFunc(s.handle("signals")), micro.WithEndpointSubject("ingest.v1.*.signals")); err != nil {
		_ = svc.Stop()
		return nil, err
	}
	if err := svc.AddEndpoint("scores", micro.HandlerFunc(s.handle("scores")), micro.WithEndpointSubject("ingest.v1.*.scores")); err != nil {
		_ = svc.Stop()
		return nil, err
	}
	return s, nil
}

// Stop unsubscribes the endpoints (requests in flight finish).
func (s *Service) Stop() error { return s.svc.Stop() }

func (s *Service) handle(kind string) func(micro.Request) {
	return func(req micro.Request) {
		s.sem <- struct{}{}
		go func() {
			defer func() { <-s.sem }()
			s.serve(kind, req)
		}()
	}
}

func (s *Service) serve(kind string, req micro.Request) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	parts := strings.Split(req.Subject(), ".")
	portalID := ""
	if len(parts) == 4 {
		portalID = parts[2]
	}
	if err := natsx.ValidToken(portalID); err != nil {
		s.refuse(req, "400", "portal id in the subject: "+err.Error())
		return
	}
	keyName, err := s.in.Authorize(portalID, bearer(req.Headers().Get("Authorization")))
	if err != nil {
		s.fail(req, err)
		return
	}
	body := bytes.NewReader(req.Data())
	var (
		results []intake.Result
		counts  intake.Counts
	)
	switch kind {
	case "signals":
		results, counts, err = decodeAnd(body, jsonapi.DecodeSignals, func(items []intake.SignalItem) ([]intake.Result, intake.Counts, error) {
			return s.in.Signals(ctx, portalID, keyName, items, 0)
		})
	default:
		results, counts, err = decodeAnd(body, jsonapi.DecodeScores, func(items []intake.ScoreItem) ([]intake.Result, intake.Counts, error) {
			return s.in.Scores(ctx, portalID, keyName, items, 0)
		})
	}
	if err != nil {
		s.fail(req, err)
		return
	}
	if err := req.RespondJSON(jsonapi.NewResponse(results, counts)); err != nil {
		s.log.Warn("ingest nats reply failed", "err", err)
	}
}

func decodeAnd[T any](body io.Reader, decode func(io.Reader) ([]T, error), run func([]T) ([]intake.Result, intake.Counts, error)) ([]intake.Result, intake.Counts, error) {
	items, err := decode(body)
	if err != nil {
		return nil, intake.Counts{}, err
	}
	return run(items)
}

func (s *Service) fail(req micro.Request, err error) {
	switch {
	case errors.Is(err, intake.ErrUnauthenticated):
		s.refuse(req, "401", err.Error())
	case errors.Is(err, intake.ErrForbidden):
		s.refuse(req, "403", err.Error())
	case errors.Is(err, intake.ErrTooMany):
		s.refuse(req, "413", err.Error())
	case errors.Is(err, intake.ErrEmpty), errors.Is(err, jsonapi.ErrMalformed):
		s.refuse(req, "400", err.Error())
	case errors.Is(err, natsx.ErrUnavailable):
		s.refuse(req, "503", "event store unavailable; nothing was stored, retry later")
	default:
		s.log.Error("ingest nats request failed", "err", err)
		s.refuse(req, "500", "internal error; nothing was stored")
	}
}

func (s *Service) refuse(req micro.Request, code, msg string) {
	if err := req.Error(code, msg, nil); err != nil {
		s.log.Warn("ingest nats error reply failed", "err", err)
	}
}

func bearer(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
