// Package grpcapi serves signalbridge.scoresync.v1.ScoreSyncService.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/engine"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// Page sizes of ListRuns.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Server implements ScoreSyncService.
type Server struct {
	scoresyncv1.UnimplementedScoreSyncServiceServer
	engine *engine.Engine
	runs   *store.Runs
	log    *slog.Logger
}

// New returns a Server.
func New(e *engine.Engine, runs *store.Runs, log *slog.Logger) *Server {
	return &Server{engine: e, runs: runs, log: log}
}

// Register adds the service to s.
func (s *Server) Register(r grpc.ServiceRegistrar) { scoresyncv1.RegisterScoreSyncServiceServer(r, s) }

func checkPortal(id string) error {
	if err := natsx.ValidToken(id); err != nil {
		return status.Errorf(codes.InvalidArgument, "portal_id: %v", err)
	}
	return nil
}

// TriggerSync starts a run now.
func (s *Server) TriggerSync(ctx context.Context, req *scoresyncv1.TriggerSyncRequest) (*scoresyncv1.TriggerSyncResponse, error) {
	if err := checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	if _, ok := scoresyncv1.SyncMode_name[int32(req.GetMode())]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "mode: unknown value %d", req.GetMode())
	}
	run, err := s.engine.Trigger(ctx, req.GetPortalId(), req.GetMode(), "manual")
	switch {
	case err == nil:
		return &scoresyncv1.TriggerSyncResponse{Run: run}, nil
	case errors.Is(err, engine.ErrUnknownPortal):
		return nil, status.Errorf(codes.NotFound, "portal %s is not configured", req.GetPortalId())
	case errors.Is(err, engine.ErrDisabled):
		return nil, status.Errorf(codes.FailedPrecondition, "portal %s: score sync is disabled (score_sync.enabled is false)", req.GetPortalId())
	case errors.Is(err, engine.ErrBusy):
		return nil, status.Errorf(codes.ResourceExhausted, "portal %s: this replica already runs its most score syncs at once (SB_SCORESYNC_MAX_RUNS); try again shortly", req.GetPortalId())
	case errors.Is(err, store.ErrLocked):
		return nil, status.Errorf(codes.FailedPrecondition, "portal %s: a run is in progress; try again when it has finished", req.GetPortalId())
	}
	s.log.ErrorContext(ctx, "trigger sync failed", "portal", req.GetPortalId(), "err", err)
	return nil, status.Error(codes.Unavailable, "the run could not be started; try again")
}

// ListRuns pages through a portal's runs, newest first.
func (s *Server) ListRuns(ctx context.Context, req *scoresyncv1.ListRunsRequest) (*scoresyncv1.ListRunsResponse, error) {
	if err := checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Errorf(codes.InvalidArgument, "page_size: %d is negative", size)
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if tok := req.GetPageToken(); tok != "" {
		if err := natsx.ValidToken(tok); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "page_token: %v", err)
		}
	}
	runs, next, err := s.runs.List(ctx, req.GetPortalId(), size, req.GetPageToken())
	if err != nil {
		s.log.ErrorContext(ctx, "list runs failed", "portal", req.GetPortalId(), "err", err)
		return nil, status.Error(codes.Unavailable, "runs could not be read; try again")
	}
	return &scoresyncv1.ListRunsResponse{Runs: runs, NextPageToken: next}, nil
}

// GetRun reads one run.
func (s *Server) GetRun(ctx context.Context, req *scoresyncv1.GetRunRequest) (*scoresyncv1.GetRunResponse, error) {
	if err := checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	if err := natsx.ValidToken(req.GetRunId()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "run_id: %v", err)
	}
	run, err := s.runs.Get(ctx, req.GetPortalId(), req.GetRunId())
	switch {
	case err == nil:
		return &scoresyncv1.GetRunResponse{Run: run}, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, status.Errorf(codes.NotFound, "portal %s has no run %s", req.GetPortalId(), req.GetRunId())
	}
	s.log.ErrorContext(ctx, "get run failed", "portal", req.GetPortalId(), "run_id", req.GetRunId(), "err", err)
	return nil, status.Error(codes.Unavailable, "the run could not be read; try again")
}
