// Package grpcapi serves signalbridge.ingest.v1.IngestService. The portal's API key travels as
// "authorization: Bearer <key>" metadata.
package grpcapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ingestv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/ingest/v1"
	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/ingest/internal/intake"
)

// DefaultStreamWindow is how many chunks of one stream may be in flight to JetStream at once.
const DefaultStreamWindow = 4

// Server implements IngestService.
type Server struct {
	ingestv1.UnimplementedIngestServiceServer
	in     *intake.Intake
	window int
	log    *slog.Logger
}

// New returns the server; window ≤ 0 means DefaultStreamWindow.
func New(in *intake.Intake, window int, log *slog.Logger) *Server {
	if window <= 0 {
		window = DefaultStreamWindow
	}
	return &Server{in: in, window: window, log: log}
}

// Register adds the service to s.
func (s *Server) Register(g *grpc.Server) { ingestv1.RegisterIngestServiceServer(g, s) }

// PublishSignals implements IngestService.
func (s *Server) PublishSignals(ctx context.Context, req *ingestv1.PublishSignalsRequest) (*ingestv1.PublishSignalsResponse, error) {
	keyName, err := s.authorize(ctx, req.GetPortalId())
	if err != nil {
		return nil, err
	}
	results, c, err := s.in.Signals(ctx, req.GetPortalId(), keyName, signalItems(req.GetSignals()), 0)
	if err != nil {
		return nil, s.status(err)
	}
	return &ingestv1.PublishSignalsResponse{Results: toProto(results), Accepted: int64(c.Accepted), Duplicates: int64(c.Duplicates), Rejected: int64(c.Rejected)}, nil
}

// PublishScores implements IngestService.
func (s *Server) PublishScores(ctx context.Context, req *ingestv1.PublishScoresRequest) (*ingestv1.PublishScoresResponse, error) {
	keyName, err := s.authorize(ctx, req.GetPortalId())
	if err != nil {
		return nil, err
	}
	results, c, err := s.in.Scores(ctx, req.GetPortalId(), keyName, scoreItems(req.GetScores()), 0)
	if err != nil {
		return nil, s.status(err)
	}
	return &ingestv1.PublishScoresResponse{Results: toProto(results), Accepted: int64(c.Accepted), Duplicates: int64(c.Duplicates), Rejected: int64(c.Rejected)}, nil
}

// StreamSignals implements IngestService.
func (s *Server) StreamSignals(stream grpc.ClientStreamingServer[ingestv1.StreamSignalsRequest, ingestv1.StreamSignalsResponse]) error {
	sum, err := s.stream(stream.Context(), func() (string, int, chunkFunc, error) {
		req, err := stream.Recv()
		if err != nil {
			return "", 0, nil, err
		}
		items := signalItems(req.GetSignals())
		return req.GetPortalId(), len(items), func(ctx context.Context, portalID, key string, base int) ([]intake.Result, intake.Counts, error) {
			return s.in.Signals(ctx, portalID, key, items, base)
		}, nil
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&ingestv1.StreamSignalsResponse{Accepted: sum.Accepted, Duplicates: sum.Duplicates, Rejected: sum.Rejected, RejectedItems: sum.RejectedItems})
}

// StreamScores implements IngestService.
func (s *Server) StreamScores(stream grpc.ClientStreamingServer[ingestv1.StreamScoresRequest, ingestv1.StreamScoresResponse]) error {
	sum, err := s.stream(stream.Context(), func() (string, int, chunkFunc, error) {
		req, err := stream.Recv()
		if err != nil {
			return "", 0, nil, err
		}
		items := scoreItems(req.GetScores())
		return req.GetPortalId(), len(items), func(ctx context.Context, portalID, key string, base int) ([]intake.Result, intake.Counts, error) {
			return s.in.Scores(ctx, portalID, key, items, base)
		}, nil
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&ingestv1.StreamScoresResponse{Accepted: sum.Accepted, Duplicates: sum.Duplicates, Rejected: sum.Rejected, RejectedItems: sum.RejectedItems})
}

type summary struct {
	Accepted, Duplicates, Rejected int64
	RejectedItems                  []*ingestv1.ItemResult
}

type chunkFunc func(ctx context.Context, portalID, key string, base int) ([]intake.Result, intake.Counts, error)

// stream reads chunks with next until EOF and publishes up to s.window of them concurrently.
// Every chunk is stored or the call fails; a client may resend the whole stream, since items
// with ids are stored once.
func (s *Server) stream(ctx context.Context, next func() (string, int, chunkFunc, error)) (summary, error) {
	var (
		sum      summary
		mu       sync.Mutex
		portalID string
		keyName  string
		base     int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.window)
	for {
		pid, n, publish, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = g.Wait()
			return summary{}, err
		}
		if portalID == "" {
			if keyName, err = s.authorize(ctx, pid); err != nil {
				_ = g.Wait()
				return summary{}, err
			}
			portalID = pid
		} else if pid != "" && pid != portalID {
			_ = g.Wait()
			return summary{}, status.Errorf(codes.InvalidArgument, "chunk at item %d names portal %q; the stream is for portal %q", base, pid, portalID)
		}
		if gctx.Err() != nil {
			break // an earlier chunk failed; g.Wait returns its error
		}
		chunkBase := base
		base += n
		g.Go(func() error {
			results, c, err := publish(gctx, portalID, keyName, chunkBase)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			sum.Accepted += int64(c.Accepted)
			sum.Duplicates += int64(c.Duplicates)
			sum.Rejected += int64(c.Rejected)
			for _, r := range results {
				if r.Status == intake.Rejected {
					sum.RejectedItems = append(sum.RejectedItems, resultProto(r))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return summary{}, s.status(err)
	}
	if portalID == "" {
		return summary{}, status.Error(codes.InvalidArgument, "the stream carried no chunk")
	}
	return sum, nil
}

func (s *Server) authorize(ctx context.Context, portalID string) (string, error) {
	if err := natsx.ValidToken(portalID); err != nil {
		return "", status.Errorf(codes.InvalidArgument, "portal_id: %v", err)
	}
	key := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				key = strings.TrimSpace(v[7:])
			}
		}
	}
	name, err := s.in.Authorize(portalID, key)
	if err != nil {
		return "", s.status(err)
	}
	return name, nil
}

// status maps intake and JetStream errors to gRPC codes.
func (s *Server) status(err error) error {
	switch {
	case errors.Is(err, intake.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, intake.ErrForbidden):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, intake.ErrTooMany), errors.Is(err, intake.ErrEmpty):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, natsx.ErrUnavailable):
		return status.Error(codes.Unavailable, "event store unavailable; nothing of the failed chunk was stored, retry later")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	s.log.Error("ingest call failed", "err", err)
	return status.Error(codes.Internal, "internal error")
}

func signalItems(in []*signalsv1.Signal) []intake.SignalItem {
	items := make([]intake.SignalItem, len(in))
	for i, sig := range in {
		items[i] = intake.SignalItem{Signal: sig}
	}
	return items
}

func scoreItems(in []*scoresv1.AccountScore) []intake.ScoreItem {
	items := make([]intake.ScoreItem, len(in))
	for i, sc := range in {
		items[i] = intake.ScoreItem{Score: sc}
	}
	return items
}

func toProto(results []intake.Result) []*ingestv1.ItemResult {
	out := make([]*ingestv1.ItemResult, len(results))
	for i, r := range results {
		out[i] = resultProto(r)
	}
	return out
}

func resultProto(r intake.Result) *ingestv1.ItemResult {
	p := &ingestv1.ItemResult{Index: int64(r.Index), Id: r.ID}
	switch r.Status {
	case intake.Accepted:
		p.Status = ingestv1.ItemStatus_ITEM_STATUS_ACCEPTED
	case intake.Duplicate:
		p.Status = ingestv1.ItemStatus_ITEM_STATUS_DUPLICATE
	default:
		p.Status = ingestv1.ItemStatus_ITEM_STATUS_REJECTED
	}
	for _, e := range r.Errors {
		p.Errors = append(p.Errors, &ingestv1.FieldError{Field: e.Field, Message: e.Message})
	}
	return p
}
