package grpcx_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/grpcx/grpcxtest"
	"github.com/signalbridge/signalbridge/libs/internal/testlog"
)

// testService is registered by hand with a grpc.ServiceDesc, so the tests
// need no generated code.
type testService struct {
	entered chan struct{} // receives when Block starts
	release chan struct{} // closed to let Block return
}

const serviceName = "grpcx.test.TestService"

func newTestService() *testService {
	return &testService{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Block", Handler: unary("Block", func(ctx context.Context, s *testService, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
			s.entered <- struct{}{}
			select {
			case <-s.release:
				return wrapperspb.String("done"), nil
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		})},
		{MethodName: "Panic", Handler: unary("Panic", func(context.Context, *testService, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
			panic("unary boom")
		})},
		{MethodName: "TraceID", Handler: unary("TraceID", func(ctx context.Context, _ *testService, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
			return wrapperspb.String(trace.SpanContextFromContext(ctx).TraceID().String()), nil
		})},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "PanicStream",
		ServerStreams: true,
		Handler:       func(any, grpc.ServerStream) error { panic("stream boom") },
	}},
	Metadata: "grpcx_test.proto",
}

// unary adapts fn to a grpc.MethodHandler, as protoc-gen-go-grpc would.
func unary(method string, fn func(context.Context, *testService, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + serviceName + "/" + method}
		return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
			return fn(ctx, srv.(*testService), req.(*wrapperspb.StringValue))
		})
	}
}

func invoke(ctx context.Context, conn *grpc.ClientConn, method string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, "/"+serviceName+"/"+method, wrapperspb.String("in"), out)
	return out.GetValue(), err
}

// running is a grpcx.Server serving on a TCP port.
type running struct {
	srv    *grpcx.Server
	svc    *testService
	conn   *grpc.ClientConn
	addr   string
	logs   *testlog.Buffer
	cancel context.CancelFunc
	served chan error
}

func start(t *testing.T, cfg grpcx.ServerConfig) *running {
	t.Helper()
	r := &running{svc: newTestService(), logs: &testlog.Buffer{}, served: make(chan error, 1)}
	cfg.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	r.srv = grpcx.NewServer(cfg)
	r.srv.RegisterService(&testServiceDesc, r.svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = lis.Addr().String()
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.served <- r.srv.Serve(ctx, lis) }()
	r.conn, err = grpcx.Dial(t.Context(), r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cancel()
		_ = r.conn.Close()
		r.srv.Stop()
	})
	return r
}

// waitServed returns Serve's result.
func (r *running) waitServed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.served:
		return err
	case <-t.Context().Done():
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestHealthServingThenNotServingOnShutdown(t *testing.T) {
	t.Parallel()
	r := start(t, grpcx.ServerConfig{})
	client := healthpb.NewHealthClient(r.conn)

	watchCtx, stopWatch := context.WithCancel(t.Context())
	defer stopWatch()
	watch, err := client.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil {
		t.Fatal(err)
	}
	next := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			resp, err := watch.Recv()
			if err != nil {
				t.Fatalf("watch while waiting for %v: %v", want, err)
			}
			if resp.GetStatus() == want {
				return
			}
		}
	}
	next(healthpb.HealthCheckResponse_SERVING)
	resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("overall Check = %v, %v; want SERVING", resp, err)
	}

	r.cancel()
	next(healthpb.HealthCheckResponse_NOT_SERVING)
	stopWatch() // the watch is an in-flight RPC that GracefulStop waits for
	if err := r.waitServed(t); err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
	if strings.Contains(r.logs.String(), "timed out") {
		t.Errorf("graceful stop should not have timed out: %s", r.logs)
	}
}

func TestGracefulStopWaitsForInFlightRPC(t *testing.T) {
	t.Parallel()
	r := start(t, grpcx.ServerConfig{GracefulTimeout: time.Minute})

	type result struct {
		val string
		err error
	}
	rpc := make(chan result, 1)
	go func() {
		v, err := invoke(t.Context(), r.conn, "Block")
		rpc <- result{v, err}
	}()
	<-r.svc.entered
	r.cancel()

	// GracefulStop closes the listener first: once dialling fails, the
	// shutdown has begun and is waiting for Block.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			break
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-r.served:
		t.Fatalf("Serve returned (%v) while an RPC was in flight", err)
	default:
	}

	close(r.svc.release)
	got := <-rpc
	if got.err != nil || got.val != "done" {
		t.Fatalf("in-flight RPC = %q, %v; want done, nil", got.val, got.err)
	}
	if err := r.waitServed(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestStopForcedAfterGracefulTimeout(t *testing.T) {
	t.Parallel()
	r := start(t, grpcx.ServerConfig{GracefulTimeout: 50 * time.Millisecond})
	rpc := make(chan error, 1)
	go func() {
		_, err := invoke(t.Context(), r.conn, "Block") // never released
		rpc <- err
	}()
	<-r.svc.entered
	r.cancel()
	if err := r.waitServed(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := <-rpc; status.Code(err) != codes.Unavailable {
		t.Fatalf("RPC cut by Stop: %v, want Unavailable", err)
	}
	if !strings.Contains(r.logs.String(), "graceful stop timed out") {
		t.Errorf("no timeout warning logged: %s", r.logs)
	}
}

func TestServeReturnsListenerError(t *testing.T) {
	t.Parallel()
	srv := grpcx.NewServer(grpcx.ServerConfig{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = lis.Close()
	err = srv.Serve(t.Context(), lis)
	if err == nil || !strings.Contains(err.Error(), lis.Addr().String()) {
		t.Fatalf("Serve on a closed listener = %v, want an error naming %s", err, lis.Addr())
	}
	if err := srv.Serve(t.Context(), nil); err == nil {
		t.Fatal("Serve with a nil listener: no error")
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	t.Parallel()
	r := start(t, grpcx.ServerConfig{})
	tests := []struct {
		name, method, panicMsg string
		call                   func() error
	}{
		{"unary", "Panic", "unary boom", func() error {
			_, err := invoke(t.Context(), r.conn, "Panic")
			return err
		}},
		{"stream", "PanicStream", "stream boom", func() error {
			stream, err := r.conn.NewStream(t.Context(), &testServiceDesc.Streams[0], "/"+serviceName+"/PanicStream")
			if err != nil {
				return err
			}
			if err := stream.SendMsg(wrapperspb.String("in")); err != nil {
				return err
			}
			if err := stream.CloseSend(); err != nil {
				return err
			}
			return stream.RecvMsg(new(wrapperspb.StringValue))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.Internal || strings.Contains(st.Message(), "boom") {
				t.Fatalf("after panic got %v; want Internal without the panic text", err)
			}
			logs := r.logs.String()
			for _, want := range []string{"grpc handler panicked", "/" + serviceName + "/" + tt.method, tt.panicMsg, "stack="} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q:\n%s", want, logs)
				}
			}
		})
	}
	// The server survives.
	resp, err := healthpb.NewHealthClient(r.conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check after panics = %v, %v", resp, err)
	}
}

// listServices asks the reflection service for the service names.
func listServices(ctx context.Context, conn *grpc.ClientConn) ([]string, error) {
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	req := &reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""},
	}
	// On io.EOF the stream has ended; Recv returns its status.
	if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	slices.Sort(names)
	return names, stream.CloseSend()
}

func TestReflection(t *testing.T) {
	t.Parallel()
	t.Run("in memory, enabled", func(t *testing.T) {
		t.Parallel()
		conn := grpcxtest.NewInMemory(t, func(s *grpc.Server) { s.RegisterService(&testServiceDesc, newTestService()) })
		got, err := listServices(t.Context(), conn)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", serviceName}
		if !slices.Equal(got, want) {
			t.Fatalf("reflection lists %q, want %q", got, want)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		r := start(t, grpcx.ServerConfig{Reflection: false})
		_, err := listServices(t.Context(), r.conn)
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("reflection when disabled: %v, want Unimplemented", err)
		}
	})
}

func TestInMemoryServesHealthAndShutsDown(t *testing.T) {
	t.Parallel()
	var conn *grpc.ClientConn
	t.Run("inner", func(t *testing.T) {
		conn = grpcxtest.NewInMemory(t, nil)
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check = %v, %v", resp, err)
		}
	})
	// The inner test's cleanup closed the connection.
	_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("Check after cleanup: %v, want Canceled (connection closed)", err)
	}
}

// TestTraceContextCrossesDialAndServer is not parallel: it installs a global
// tracer provider and propagator, as telemetry.Setup does in a service.
func TestTraceContextCrossesDialAndServer(t *testing.T) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.TraceContext{})
	conn := grpcxtest.NewInMemory(t, func(s *grpc.Server) { s.RegisterService(&testServiceDesc, newTestService()) })

	ctx, span := otel.Tracer("test").Start(t.Context(), "client")
	defer span.End()
	got, err := invoke(ctx, conn, "TraceID")
	if err != nil {
		t.Fatal(err)
	}
	if want := span.SpanContext().TraceID().String(); got != want {
		t.Fatalf("server saw trace id %s, want the client's %s", got, want)
	}
}

func TestServerConfigLoadsFromEnv(t *testing.T) {
	t.Parallel()
	var cfg grpcx.ServerConfig
	if err := config.Load("SB_GRPC", func(k string) string {
		return map[string]string{"SB_GRPC_GRACEFUL_TIMEOUT": "3s"}[k]
	}, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Reflection || cfg.GracefulTimeout != 3*time.Second || cfg.Logger != nil {
		t.Fatalf("loaded %+v, want reflection on and a 3s timeout", cfg)
	}
}

// TestDialSpreadsCallsOverEveryResolvedAddress: behind a headless Service a
// target resolves to every replica; Dial's calls must reach all of them, not
// only the first (the default pick_first would).
func TestDialSpreadsCallsOverEveryResolvedAddress(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var addrs []resolver.Address
	hits := make([]atomic.Int64, 2)
	for i := range hits {
		count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			hits[i].Add(1)
			return h(ctx, req)
		}
		srv := grpcx.NewServer(grpcx.ServerConfig{}, grpc.ChainUnaryInterceptor(count))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, lis) }()
		t.Cleanup(func() { cancel(); <-done })
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
	}
	r := manual.NewBuilderWithScheme("replicas")
	r.InitialState(resolver.State{Addresses: addrs})
	conn, err := grpcx.Dial(ctx, "replicas:///matcher", grpc.WithResolvers(r))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	for range 20 {
		if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("calls per replica = %d, %d; want both replicas called", hits[0].Load(), hits[1].Load())
	}
}
