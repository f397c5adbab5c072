// Package grpcx builds gRPC servers and clients the same way in every
// service: OpenTelemetry stats handlers, the standard health service,
// optional reflection, panic recovery, and a graceful shutdown bounded by a
// timeout.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// DefaultGracefulTimeout bounds GracefulStop when ServerConfig leaves it zero.
const DefaultGracefulTimeout = 10 * time.Second

// MaxConnectionAge is how long a server keeps a client connection before it
// asks the client (GOAWAY) to reconnect. Reconnecting makes a client resolve
// its target again, so replicas added since are reached too.
const MaxConnectionAge = 5 * time.Minute

// roundRobin spreads a client's calls over every address its target resolves
// to (every pod behind a headless Kubernetes Service) instead of pinning them
// to the first.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Reflection registers the server reflection service (grpcurl, grpcui).
	Reflection bool `env:"REFLECTION" default:"true" desc:"register gRPC server reflection"`
	// GracefulTimeout bounds how long Serve waits for in-flight RPCs after
	// its context ends before it forces the server to stop; zero means
	// DefaultGracefulTimeout.
	GracefulTimeout time.Duration `env:"GRACEFUL_TIMEOUT" default:"10s" desc:"wait for in-flight RPCs on shutdown"`
	// Logger receives recovered panics and shutdown events; nil discards.
	Logger *slog.Logger
}

// Server is a grpc.Server with its health service.
type Server struct {
	*grpc.Server
	// Health is registered on Server. Serve marks every registered service
	// SERVING when it starts and NOT_SERVING when shutdown begins; set a
	// service's status yourself when it depends on something else.
	Health *health.Server

	gracefulTimeout time.Duration
	logger          *slog.Logger
}

// NewServer returns a server with an otelgrpc stats handler, interceptors
// that turn a handler panic into codes.Internal (logged with its stack), the
// health service, connections recycled after MaxConnectionAge and, when
// cfg.Reflection is set, reflection. opts are
// applied after these; interceptors in opts run inside the recovery.
func NewServer(cfg ServerConfig, opts ...grpc.ServerOption) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.GracefulTimeout
	if timeout <= 0 {
		timeout = DefaultGracefulTimeout
	}
	base := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(recoverUnary(logger)),
		grpc.ChainStreamInterceptor(recoverStream(logger)),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: MaxConnectionAge, MaxConnectionAgeGrace: timeout}),
	}
	s := &Server{
		Server:          grpc.NewServer(append(base, opts...)...),
		Health:          health.NewServer(),
		gracefulTimeout: timeout,
		logger:          logger,
	}
	healthpb.RegisterHealthServer(s.Server, s.Health)
	if cfg.Reflection {
		reflection.Register(s.Server)
	}
	return s
}

// Serve accepts connections on lis until ctx ends or serving fails. When
// ctx ends it marks every service NOT_SERVING, stops accepting, waits up to
// GracefulTimeout for in-flight RPCs, then closes what is left. It returns
// nil after a shutdown caused by ctx, and the serving error otherwise.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if lis == nil {
		return errors.New("grpcx: serve: nil listener")
	}
	for name := range s.GetServiceInfo() {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	served := make(chan error, 1)
	go func() { served <- s.Server.Serve(lis) }()

	select {
	case err := <-served:
		s.Health.Shutdown()
		return fmt.Errorf("grpcx: serve %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}

	s.Health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.gracefulTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("grpc graceful stop timed out; closing remaining RPCs", "timeout", s.gracefulTimeout)
		s.Stop()
		<-stopped
	}
	// ErrServerStopped: ctx ended before Serve got going.
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpcx: serve %s: %w", lis.Addr(), err)
	}
	return nil
}

// Dial returns a client connection to target with an otelgrpc stats handler,
// calls spread round robin over every address the target resolves to (use a
// headless Service: dns:///matcher-grpc:9000) and, unless opts set other
// credentials, plaintext transport (in-cluster traffic). Like grpc.NewClient it does not connect until the first RPC;
// ctx is accepted for symmetry and future use.
func Dial(_ context.Context, target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultServiceConfig(roundRobin),
	}
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcx: dial %q: %w", target, err)
	}
	return conn, nil
}

// errInternal is what a client sees after a handler panics; the panic value
// stays in the server log.
var errInternal = status.Error(codes.Internal, "internal error")

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logPanic(ctx, logger, info.FullMethod, r)
				resp, err = nil, errInternal
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logPanic(ss.Context(), logger, info.FullMethod, r)
				err = errInternal
			}
		}()
		return handler(srv, ss)
	}
}

func logPanic(ctx context.Context, logger *slog.Logger, method string, r any) {
	logger.ErrorContext(ctx, "grpc handler panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
}
