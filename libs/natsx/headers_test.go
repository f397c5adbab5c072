package natsx_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/signalbridge/signalbridge/libs/natsx"
)

// TestMain installs the W3C trace-context propagator, as telemetry.Setup
// does in the services; NewMsg and Consume use the global propagator.
func TestMain(m *testing.M) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	os.Exit(m.Run())
}

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestHeaderCarrier(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	c := natsx.HeaderCarrier(h)
	c.Set("traceparent", "v1")
	if got := h["traceparent"]; !slices.Equal(got, []string{"v1"}) {
		t.Fatalf(`header["traceparent"] = %v, want [v1] under the lower-case key`, got)
	}
	if got := c.Get("Traceparent"); got != "v1" {
		t.Fatalf(`Get("Traceparent") = %q, want v1 (case-insensitive)`, got)
	}
	h["Tracestate"] = []string{"a=1"}
	c.Set("tracestate", "b=2")
	if _, ok := h["Tracestate"]; ok {
		t.Fatalf("Set kept the old spelling: %v", h)
	}
	if got := c.Get("tracestate"); got != "b=2" {
		t.Fatalf(`Get("tracestate") = %q, want b=2`, got)
	}
	if got, want := c.Keys(), []string{"traceparent", "tracestate"}; !slices.Equal(got, want) {
		t.Fatalf("Keys() = %v, want %v", got, want)
	}
	if got := natsx.HeaderCarrier(nil).Get("traceparent"); got != "" {
		t.Fatalf("Get on nil carrier = %q", got)
	}
}

func TestExtractTraceparentAnyCase(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			h := nats.Header{key: []string{testTraceparent}}
			ctx := otel.GetTextMapPropagator().Extract(context.Background(), natsx.HeaderCarrier(h))
			sc := trace.SpanContextFromContext(ctx)
			if !sc.IsValid() || !sc.IsRemote() {
				t.Fatalf("no remote span context extracted from %q header", key)
			}
			if got := sc.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("trace id = %s", got)
			}
			if got := sc.SpanID().String(); got != "00f067aa0ba902b7" {
				t.Fatalf("span id = %s", got)
			}
		})
	}
}

func TestNewMsg(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	spanCtx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()

	payload := wrapperspb.String("hello")
	tests := []struct {
		name      string
		ctx       context.Context
		wantTrace bool
	}{
		{"with span", spanCtx, true},
		{"without span", context.Background(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := natsx.NewMsg(tt.ctx, natsx.SignalReceivedSubject("42"), "sig-1", payload)
			if err != nil {
				t.Fatalf("NewMsg: %v", err)
			}
			if msg.Subject != "signals.v1.42.received" {
				t.Errorf("subject = %q", msg.Subject)
			}
			for key, want := range map[string]string{
				"Nats-Msg-Id":   "sig-1",
				"Sb-Event-Type": "google.protobuf.StringValue",
				"Content-Type":  "application/x-protobuf",
			} {
				if got := msg.Header.Get(key); got != want {
					t.Errorf("header %s = %q, want %q", key, got, want)
				}
			}
			var back wrapperspb.StringValue
			if err := proto.Unmarshal(msg.Data, &back); err != nil || back.GetValue() != "hello" {
				t.Errorf("payload round trip = %q, %v", back.GetValue(), err)
			}
			tpHeader, lower := msg.Header["traceparent"]
			_, canonical := msg.Header["Traceparent"]
			if canonical {
				t.Errorf("trace context written under the canonical key Traceparent: %v", msg.Header)
			}
			if lower != tt.wantTrace {
				t.Fatalf("traceparent present = %v, want %v (headers %v)", lower, tt.wantTrace, msg.Header)
			}
			if tt.wantTrace {
				want := span.SpanContext()
				got := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(context.Background(), natsx.HeaderCarrier(msg.Header)))
				if got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() {
					t.Errorf("traceparent %v does not carry the span %s/%s", tpHeader, want.TraceID(), want.SpanID())
				}
			}
		})
	}
}

func TestNewMsgInvalid(t *testing.T) {
	t.Parallel()
	var nilProto *wrapperspb.StringValue
	tests := []struct {
		name    string
		subject string
		id      string
		m       proto.Message
	}{
		{"empty subject", "", "id", wrapperspb.String("x")},
		{"empty id", "signals.v1.1.received", "", wrapperspb.String("x")},
		{"nil message", "signals.v1.1.received", "id", nil},
		{"typed nil message", "signals.v1.1.received", "id", nilProto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := natsx.NewMsg(context.Background(), tt.subject, tt.id, tt.m)
			if !errors.Is(err, natsx.ErrInvalidMsg) {
				t.Fatalf("NewMsg = %v, %v; want ErrInvalidMsg", msg, err)
			}
		})
	}
}

// NewEncodedMsg takes the payload as it is and checks the event type's form; its
// header values share one array, so adding to one key must leave the others alone.
func TestNewEncodedMsg(t *testing.T) {
	t.Parallel()
	data, err := proto.Marshal(wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := natsx.NewEncodedMsg(context.Background(), natsx.SignalReceivedSubject("42"), "sig-1", "google.protobuf.StringValue", data)
	if err != nil {
		t.Fatalf("NewEncodedMsg: %v", err)
	}
	if !bytes.Equal(msg.Data, data) {
		t.Errorf("payload = %x, want %x", msg.Data, data)
	}
	msg.Header.Add(natsx.HeaderMsgID, "second")
	for key, want := range map[string]string{
		"Nats-Msg-Id":   "sig-1,second",
		"Sb-Event-Type": "google.protobuf.StringValue",
		"Content-Type":  "application/x-protobuf",
	} {
		if got := strings.Join(msg.Header.Values(key), ","); got != want {
			t.Errorf("header %s = %q, want %q", key, got, want)
		}
	}
	for _, bad := range []protoreflect.FullName{"", "not a name", ".leading.dot"} {
		if _, err := natsx.NewEncodedMsg(context.Background(), "s.v1.1.x", "id", bad, data); !errors.Is(err, natsx.ErrInvalidMsg) {
			t.Errorf("NewEncodedMsg(event type %q) = %v, want ErrInvalidMsg", bad, err)
		}
	}
}
