package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ingestv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/ingest/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
)

func (e *env) grpcClient(t *testing.T) ingestv1.IngestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(e.svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return ingestv1.NewIngestServiceClient(cc)
}

func withKey(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

func TestGRPCUnaryAndStreaming(t *testing.T) {
	e := start(t)
	c := e.grpcClient(t)

	res, err := c.PublishSignals(withKey(keyA), &ingestv1.PublishSignalsRequest{PortalId: portalA, Signals: []*signalsv1.Signal{
		{Id: "g-1", Type: "demo_request", Account: &signalsv1.Account{Domain: "Example.org"}, Strength: signalsv1.Strength_STRENGTH_HIGH},
		{Id: "g-2", Type: "demo_request", Account: &signalsv1.Account{Domain: "192.168.0.1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected != 1 || res.Results[1].Status != ingestv1.ItemStatus_ITEM_STATUS_REJECTED ||
		res.Results[1].Errors[0].Field != "account.domain" {
		t.Fatalf("unary: %v", res)
	}

	_, err = c.PublishSignals(withKey(keyB), &ingestv1.PublishSignalsRequest{PortalId: portalA, Signals: []*signalsv1.Signal{{Type: "page_view"}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("key of portal B for portal A: %v, want PermissionDenied", err)
	}
	_, err = c.PublishSignals(context.Background(), &ingestv1.PublishSignalsRequest{PortalId: portalA, Signals: []*signalsv1.Signal{{Type: "page_view"}}})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no key: %v, want Unauthenticated", err)
	}

	stream, err := c.StreamSignals(withKey(keyA))
	if err != nil {
		t.Fatal(err)
	}
	const chunks, per = 6, 250
	for ch := range chunks {
		req := &ingestv1.StreamSignalsRequest{}
		if ch == 0 {
			req.PortalId = portalA
		}
		for i := range per {
			sig := &signalsv1.Signal{Id: fmt.Sprintf("st-%d-%d", ch, i), Type: "page_view", Account: &signalsv1.Account{Domain: "acme.com"}}
			if ch == 3 && i == 7 {
				sig.Account.Domain = "not_a_domain"
			}
			req.Signals = append(req.Signals, sig)
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != chunks*per-1 || sum.Rejected != 1 || len(sum.RejectedItems) != 1 || sum.RejectedItems[0].Index != 3*per+7 {
		t.Fatalf("stream summary: accepted %d rejected %d items %v", sum.Accepted, sum.Rejected, sum.RejectedItems)
	}
	if n := len(e.streamMsgs(t, "SIGNALS")); n != 1+chunks*per-1 {
		t.Fatalf("stream holds %d, want %d", n, chunks*per)
	}

	// A stream that switches portal mid-way is refused.
	bad, err := c.StreamSignals(withKey(keyA))
	if err != nil {
		t.Fatal(err)
	}
	_ = bad.Send(&ingestv1.StreamSignalsRequest{PortalId: portalA, Signals: []*signalsv1.Signal{{Type: "page_view", Account: &signalsv1.Account{Domain: "a.com"}}}})
	_ = bad.Send(&ingestv1.StreamSignalsRequest{PortalId: portalB, Signals: []*signalsv1.Signal{{Type: "page_view", Account: &signalsv1.Account{Domain: "a.com"}}}})
	if _, err := bad.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("portal switch: %v, want InvalidArgument", err)
	}
}

func TestNATSRequestEndpoint(t *testing.T) {
	e := start(t)
	nc := e.srv.Connect(t)
	req := nats.NewMsg("ingest.v1." + portalA + ".signals")
	req.Header.Set("Authorization", "Bearer "+keyA)
	req.Data = signalsBody(`{"id":"n-1","type":"page_view","account":{"domain":"acme.com"}}`, `{"id":"n-2","type":"nope","account":{"domain":"acme.com"}}`)
	reply, err := nc.RequestMsg(req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var res response
	if err := json.Unmarshal(reply.Data, &res); err != nil {
		t.Fatalf("%v: %s", err, reply.Data)
	}
	if res.Accepted != 1 || res.Rejected != 1 || res.Results[1].Errors[0].Field != "type" {
		t.Fatalf("reply %s", reply.Data)
	}

	req = nats.NewMsg("ingest.v1." + portalA + ".signals")
	req.Header.Set("Authorization", "Bearer "+keyB)
	req.Data = signalsBody(`{"type":"page_view","account":{"domain":"acme.com"}}`)
	reply, err = nc.RequestMsg(req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := reply.Header.Get("Nats-Service-Error-Code"); got != "403" {
		t.Fatalf("key of another portal: error code %q (%s)", got, reply.Header.Get("Nats-Service-Error"))
	}
	if n := len(e.streamMsgs(t, "SIGNALS")); n != 1 {
		t.Fatalf("stream holds %d, want 1", n)
	}
}
