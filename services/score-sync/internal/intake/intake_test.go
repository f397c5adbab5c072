package intake_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/telemetry/telemetrytest"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/intake"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

type env struct {
	srv   *natstest.Server
	js    jetstream.JetStream
	table *store.Table
}

func setup(t *testing.T) env {
	t.Helper()
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	kv, err := js.KeyValue(t.Context(), natsx.BucketScoreState)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(t.Context(), natsx.BucketScoreSync) // provisioned with the topology
	if err != nil {
		t.Fatal(err)
	}
	return env{srv: srv, js: js, table: store.NewTable(store.TableScores, kv, obj, nil)}
}

func publish(t *testing.T, js jetstream.JetStream, portal, domain string, intent float64, at time.Time) {
	t.Helper()
	id := fmt.Sprintf("score:%s:%s:%d", portal, domain, at.UnixMilli())
	msg, err := natsx.NewMsg(t.Context(), natsx.ScoreUpdatedSubject(portal), id, &scoresv1.ScoreUpdated{
		Meta: &eventsv1.EventMeta{EventId: id, PortalId: portal},
		Score: &scoresv1.AccountScore{Domain: domain, Aliases: []string{"alias-" + domain}, IntentScore: intent,
			IntentStrength: scoresv1.IntentStrength_INTENT_STRENGTH_HIGH, ScoredAt: timestamppb.New(at)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

// rows returns "domain=intent" for the portal's table.
func rows(t *testing.T, tab *store.Table, portal string) []string {
	t.Helper()
	var out []string
	err := tab.Scan(t.Context(), portal, func(r store.Row) error {
		packed, _, err := store.DecodeScoreValue(r.Val)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s=%d", r.Key, store.UnpackValues(packed).IntentScore))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIntakeFoldsLatestScorePerAccountAndDeadLettersGarbage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	publish(t, e.js, "100", "acme.com", 10, t0)
	publish(t, e.js, "100", "acme.com", 30, t0.Add(2*time.Hour))
	publish(t, e.js, "100", "acme.com", 20, t0.Add(time.Hour)) // older than the one before: loses
	publish(t, e.js, "100", "globex.com", 55.5, t0)
	publish(t, e.js, "200", "acme.com", 99, t0)
	if _, err := e.js.Publish(ctx, natsx.ScoreUpdatedSubject("100"), []byte("\xff\xffnot protobuf")); err != nil {
		t.Fatal(err)
	}

	var appended []string
	metrics := sdkmetric.NewManualReader()
	in, err := intake.Start(ctx, e.js, e.table, intake.Options{Batch: 100, Linger: 50 * time.Millisecond,
		Meter:    sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics)),
		OnAppend: func(portal string, parts int) { appended = append(appended, fmt.Sprintf("%s:%d", portal, parts)) }})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both portals stored", func() bool { return len(rows(t, e.table, "200")) == 1 && len(rows(t, e.table, "100")) == 2 })
	if got := rows(t, e.table, "100"); strings.Join(got, " ") != "acme.com=3000 globex.com=5550" {
		t.Fatalf("portal 100: %v", got)
	}
	if got := rows(t, e.table, "200"); strings.Join(got, " ") != "acme.com=9900" {
		t.Fatalf("portal 200: %v", got)
	}
	dlq, err := e.js.Stream(ctx, natsx.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dead letter", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	dl, err := dlq.GetLastMsgForSubject(ctx, natsx.DLQSubject(natsx.StreamScores, intake.DefaultDurable))
	if err != nil {
		t.Fatal(err)
	}
	if reason := dl.Header.Get(natsx.HeaderDLQReason); !strings.Contains(reason, "not a ScoreUpdated") {
		t.Fatalf("dead letter reason %q", reason)
	}
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.Consumer(ctx, natsx.StreamScores, intake.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("after stop: %d pending acks, %d unprocessed", info.NumAckPending, info.NumPending)
	}
	if len(appended) == 0 {
		t.Fatal("OnAppend never called")
	}
	// What became of each score is counted by the batch consumer, per
	// stream, consumer and outcome.
	scores := []attribute.KeyValue{attribute.String("messaging.nats.stream", natsx.StreamScores),
		attribute.String("messaging.consumer.group.name", intake.DefaultDurable)}
	for outcome, want := range map[string]int64{"acked": 5, "dead_lettered": 1, "retried": 0} {
		got := telemetrytest.Int64(t, metrics, "signalbridge.natsx.consume.messages", append(scores, attribute.String("outcome", outcome))...)
		if got != want {
			t.Errorf("signalbridge.natsx.consume.messages{SCORES, %s} = %d, want %d", outcome, got, want)
		}
	}
}

func TestIntakeSurvivesRestartAndServerOutage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	in, err := intake.Start(ctx, e.js, e.table, intake.Options{Batch: 50, Linger: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 120 {
		publish(t, e.js, "300", fmt.Sprintf("c%03d.example.com", i), float64(i%100), t0)
	}
	waitFor(t, "120 accounts", func() bool { return len(rows(t, e.table, "300")) == 120 })
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The server goes away and comes back; a new intake (another process) continues where the
	// durable consumer stands, and redelivered or re-published scores do not duplicate rows.
	e.srv.Stop()
	e.srv.Restart(t)
	nc := e.srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconnect", func() bool { return nc.Status() == nats.CONNECTED })
	kv, err := js.KeyValue(ctx, natsx.BucketScoreState)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, natsx.BucketScoreSync)
	if err != nil {
		t.Fatal(err)
	}
	table := store.NewTable(store.TableScores, kv, obj, nil)
	if got := len(rows(t, table, "300")); got != 120 {
		t.Fatalf("after restart the table holds %d accounts", got)
	}
	in2, err := intake.Start(ctx, js, table, intake.Options{Batch: 50, Linger: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in2.Stop(context.Background()) }()
	publish(t, js, "300", "c000.example.com", 42, t0.Add(time.Minute))
	publish(t, js, "300", "new.example.com", 1, t0)
	waitFor(t, "121 accounts", func() bool { return len(rows(t, table, "300")) == 121 })
	got := rows(t, table, "300")
	if got[0] != "c000.example.com=4200" {
		t.Fatalf("first row %q", got[0])
	}
}
