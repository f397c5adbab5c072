package receiver

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// benchPortals serves the one portal of the handler benchmark.
type benchPortals map[string]*portal.Config

func (p benchPortals) Get(id string) (*portal.Config, bool) { c, ok := p[id]; return c, ok }

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServeHTTP is one signed request of 100 events through the whole
// handler into an embedded, sync-always JetStream, concurrently from
// b.RunParallel's goroutines. cpu-µs/event is the process's CPU time (the
// handler and the embedded server together) per event: unlike ns/op it
// hardly moves when other processes load the machine.
func BenchmarkServeHTTP(b *testing.B) {
	const secret, app = "bench-secret", 4242
	srv := natstest.Run(b)
	nc := srv.Connect(b)
	js := srv.JetStream(b)
	pc, err := portal.Parse(fmt.Appendf(nil, "portal_id: \"777\"\nname: bench\nhubspot:\n  auth: { type: private_app, secret: T }\n  tier: enterprise\n  app_id: %d\n  webhook_secret: S\n", app))
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(benchPortals{"777": pc}, func(string) (string, bool) { return secret, true },
		natsx.NewPublisher(nc, js, tracenoop.NewTracerProvider()), Options{}, noop.NewMeterProvider().Meter("bench"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	const uri = "http://hooks.example.com/webhooks/hubspot"
	var nextID atomic.Int64
	request := func() *http.Request {
		first := nextID.Add(MaxEvents) - MaxEvents
		parts := make([]string, MaxEvents)
		for i := range parts {
			id := first + int64(i) + 1
			parts[i] = fmt.Sprintf(`{"eventId":%d,"subscriptionId":1001,"portalId":777,"appId":%d,"occurredAt":1708986598741,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"jobtitle","propertyValue":"Head of Things %d","changeSource":"CRM_UI","sourceId":"userId:9001"}`, id, app, 50000+id%10000, id%97)
		}
		body := []byte("[" + strings.Join(parts, ",") + "]")
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		r := httptest.NewRequest(http.MethodPost, uri, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(hubspot.HeaderRequestTimestamp, ts)
		r.Header.Set(hubspot.HeaderSignatureV3, hubspot.SignV3(secret, http.MethodPost, uri, body, ts))
		return r
	}
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = request()
	}
	var requests atomic.Int64
	b.SetParallelism(4) // HubSpot sends up to 10 requests at once
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := reqs[requests.Add(1)-1]
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	cpu := cpuTime(b) - start
	b.ReportMetric(float64(cpu.Microseconds())/float64(requests.Load()*MaxEvents), "cpu-µs/event")
}
