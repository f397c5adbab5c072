// Package grpcxtest runs a grpcx server in memory for tests.
package grpcxtest

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/signalbridge/signalbridge/libs/grpcx"
)

const bufSize = 1 << 20

// NewInMemory starts a grpcx.Server (reflection on, logging to the test
// output) on an in-memory listener, lets register add services to it, and
// returns a client connection to it made with grpcx.Dial. The server and the
// connection are shut down when the test ends.
func NewInMemory(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(bufSize)
	srv := grpcx.NewServer(grpcx.ServerConfig{
		Reflection: true,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), nil)),
	}, opts...)
	if register != nil {
		register(srv.Server)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	conn, err := grpcx.Dial(ctx, "passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		cancel()
		t.Fatalf("grpcxtest: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("grpcxtest: close client: %v", err)
		}
		cancel()
		if err := <-served; err != nil {
			t.Errorf("grpcxtest: serve: %v", err)
		}
	})
	return conn
}
