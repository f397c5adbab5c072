// Command webhook-bench measures the webhook-receiver against raw JetStream
// publishing of the same events, in one run on one embedded NATS server,
// and prints ratios (machines are noisy; only figures measured side by side
// mean anything). Both sides use the same durability setting (fsync before
// acknowledgement unless -lazy-fsync), the same events (the HubSpotEvent
// protobufs the receiver would publish) and the same batch size; the raw
// baseline publishes pre-built messages as atomic batches, the best raw
// method for request-scoped batches (see shared/design/durability.md). The
// receiver's side is the whole request: HTTP, JSON parsing, v3 signature
// verification, portal lookup, protobuf encoding and the atomic batch (into
// which the receiver merges the events of requests that arrive while the
// previous batch is being stored). For context, the throughput table also
// shows raw atomic batches of 1000 events, the most the server takes.
//
// Two measurements: throughput (-n events as fast as -workers concurrent
// senders go), and latency at a fixed rate (-rate events/s for -duration,
// open loop: each request's latency counts from when it was due, so a stall
// shows); for context the latency phases also send the same events as raw
// batches of 1000 at a tenth of the request rate, what perfect merging would
// get from the server. Under each latency phase it prints the NATS server's
// GC cycles during it (the server process runs with GODEBUG=gctrace=1) and
// how many of the requests slower than 25 ms were in flight during one. After
// the latency phases it probes the store's disk alone (a write+fsync every
// 5 ms), since every commit waits for one.
//
//	go run ./services/webhook-receiver/cmd/webhook-bench -n 100000 -rate 20000 -duration 10s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
	"github.com/signalbridge/signalbridge/libs/portal"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

const (
	portalID        = "777"
	appID     int64 = 4242
	secret          = "bench-client-secret"
	batchSize       = webhookrx.MaxEvents
)

func main() {
	embedded.RunProcessIfChild()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webhook-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n, workers, rate int
	duration         time.Duration
	lazy             bool
	dir              string
	natsInProcess    bool
}

// bench holds what every phase shares.
type bench struct {
	o      options
	nc     *nats.Conn
	js     jetstream.JetStream
	pub    *natsx.Publisher
	url    string
	client *http.Client
	stream jetstream.Stream
	nextID atomic.Int64 // event ids, unique across phases
}

func run() error {
	var o options
	flag.IntVar(&o.n, "n", 100_000, "events per throughput phase (batches of 100)")
	flag.IntVar(&o.workers, "workers", 8, "concurrent senders in the throughput phases (HubSpot's default is 10)")
	flag.IntVar(&o.rate, "rate", 20_000, "events per second in the latency phases (0 skips them)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each latency phase")
	flag.BoolVar(&o.lazy, "lazy-fsync", false, "acknowledge before fsync (not what production runs)")
	flag.StringVar(&o.dir, "dir", "", "parent directory of the JetStream store (default the system temp dir; a tmpfs such as /dev/shm takes the disk out of the figures)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	traceFile := flag.String("trace", "", "write an execution trace of the whole run to this file (go tool trace)")
	flag.BoolVar(&o.natsInProcess, "nats-in-process", false, "run the JetStream server inside the benchmark process instead of in a process of its own")
	flag.Parse()
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	dir, err := os.MkdirTemp(o.dir, "webhook-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var natsURL string
	var serverGC *serverGC // nil when the server runs in this process
	where := "its own process"
	if o.natsInProcess {
		where = "this process"
		srv, err := embedded.Start(embedded.Options{StoreDir: dir, LazyFsync: o.lazy})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		natsURL = srv.ClientURL()
	} else {
		// The server's runtime reports its GC cycles (gctrace), so the latency
		// phases can tell how many slow requests waited on one.
		godebug := "gctrace=1"
		if v := os.Getenv("GODEBUG"); v != "" {
			godebug = v + ",gctrace=1"
		}
		serverGC = newServerGC(time.Now(), os.Stderr)
		url, stop, err := embedded.StartProcess(embedded.Options{StoreDir: dir, LazyFsync: o.lazy,
			ProcessEnv: []string{"GODEBUG=" + godebug}, ProcessStderr: serverGC})
		if err != nil {
			return err
		}
		defer stop()
		natsURL = url
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	nc, err := natsx.Connect(ctx, natsx.Config{URL: natsURL, Name: "webhook-bench"}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := natsx.Provision(ctx, js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		return err
	}
	pc, err := portal.Parse(fmt.Appendf(nil, "portal_id: %q\nname: bench\nhubspot:\n  auth: { type: private_app, secret: T }\n  tier: enterprise\n  app_id: %d\n  webhook_secret: BENCH_SECRET\n", portalID, appID))
	if err != nil {
		return err
	}
	if err := portal.NewStore(kv).Put(ctx, pc); err != nil {
		return err
	}
	reg, err := portal.Watch(ctx, kv, log)
	if err != nil {
		return err
	}
	defer reg.Close()
	svc, err := webhookrx.New(webhookrx.Config{HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, webhookrx.Deps{
		NC: nc, JS: js, Portals: reg, Logger: log, Meter: noop.NewMeterProvider(), Tracer: tracenoop.NewTracerProvider(),
		Secrets: func(name string) (string, bool) { return secret, name == "BENCH_SECRET" },
	})
	if err != nil {
		return err
	}
	go func() { _ = svc.Run(ctx) }()
	stream, err := js.Stream(ctx, natsx.StreamHubSpot)
	if err != nil {
		return err
	}
	b := &bench{
		o: o, nc: nc, js: js, pub: natsx.NewPublisher(nc, js, tracenoop.NewTracerProvider()),
		url:    "http://" + svc.HTTPAddr() + webhookrx.DefaultPath,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}},
		stream: stream,
	}
	b.nextID.Store(1)

	durability := "fsync before ack (sync always)"
	if o.lazy {
		durability = "lazy fsync"
	}
	fmt.Printf("webhook-receiver — batches of %d events, %s, NATS in %s, store in %s, GOMAXPROCS=%d\n\n",
		batchSize, durability, where, dir, runtime.GOMAXPROCS(0))

	// Throughput: round 0 warms up caches and the file store; round 1 counts.
	fmt.Printf("throughput: %d events per phase, %d concurrent senders\n", o.n, o.workers)
	rates := map[string]float64{}
	for round := range 2 {
		for _, ph := range []struct {
			name string
			fn   func() (time.Duration, error)
		}{{"raw", b.rawThroughput}, {"raw1000", b.rawThroughput1000}, {"webhook", b.webhookThroughput}} {
			if err := b.reset(ctx); err != nil {
				return err
			}
			d, err := ph.fn()
			if err != nil {
				return fmt.Errorf("%s throughput: %w", ph.name, err)
			}
			if err := b.check(ctx, o.n); err != nil {
				return fmt.Errorf("%s throughput: %w", ph.name, err)
			}
			if round == 1 {
				rates[ph.name] = float64(o.n) / d.Seconds()
			}
		}
	}
	fmt.Printf("  %-40s %12s %8s %8s\n", "phase", "events/s", "ratio", "target")
	fmt.Printf("  %-40s %12.0f %8.2f %8s\n", "raw JetStream atomic batches", rates["raw"], 1.0, "")
	fmt.Printf("  %-40s %12.0f %8.2f %8s\n", "webhook-receiver (HTTP, v3 verified)", rates["webhook"], rates["webhook"]/rates["raw"], "≥ 0.70")
	fmt.Printf("  %-40s %12.0f %8.2f %8s\n", fmt.Sprintf("context: raw atomic batches of %d", natsx.MaxBatchSize), rates["raw1000"], rates["raw1000"]/rates["raw"], "")
	fmt.Printf("  (the receiver merges the events of concurrent requests into batches of up to %d)\n", natsx.MaxBatchSize)

	if o.rate > 0 {
		reqs := int(float64(o.rate) * o.duration.Seconds() / batchSize)
		fmt.Printf("\nlatency at %d events/s (%d requests/s of %d events) for %s, open loop, per request\n",
			o.rate, o.rate/batchSize, batchSize, o.duration)
		fmt.Printf("  %-40s %12s %8s %8s %8s %8s %8s\n", "phase", "events/s", "p50 ms", "p99 ms", "max ms", "refused", "target")
		// The same events as raw atomic batches of 1000 (the server's most) at a
		// tenth of the request rate: what perfect merging would get from the
		// server, with nothing of HTTP or the receiver.
		merged := natsx.MaxBatchSize / batchSize
		rawMerged := func(n int) ([]any, error) {
			small, err := b.rawBatches(n)
			if err != nil {
				return nil, err
			}
			out := make([]any, 0, len(small)/merged)
			for i := 0; i+merged <= len(small); i += merged {
				var msgs []*nats.Msg
				for _, part := range small[i : i+merged] {
					msgs = append(msgs, part.([]*nats.Msg)...)
				}
				out = append(out, msgs)
			}
			return out, nil
		}
		for _, ph := range []struct {
			name, label, target string
			events              int // per request
			send                func(i int, batch any) error
			prepare             func(n int) ([]any, error)
		}{
			{"raw", "raw JetStream atomic batches", "", batchSize, b.rawSend, b.rawBatches},
			{"webhook", "webhook-receiver (HTTP, v3 verified)", "p99 ≤ 25", batchSize, b.webhookSend, b.webhookBodies},
			{"raw1000", fmt.Sprintf("context: raw batches of %d, %d/s", natsx.MaxBatchSize, o.rate/natsx.MaxBatchSize), "", natsx.MaxBatchSize, b.rawSend, rawMerged},
		} {
			if err := b.reset(ctx); err != nil {
				return err
			}
			batches, err := ph.prepare(reqs)
			if err != nil {
				return err
			}
			r, err := paced(batches, o.rate/ph.events, ph.send)
			if err != nil {
				return fmt.Errorf("%s latency: %w", ph.name, err)
			}
			maxLat := time.Duration(0)
			if len(r.lat) > 0 {
				maxLat = r.lat[len(r.lat)-1]
			}
			fmt.Printf("  %-40s %12.0f %8.1f %8.1f %8.1f %8d %8s\n", ph.label, r.achieved*float64(ph.events),
				ms(percentile(r.lat, 0.50)), ms(percentile(r.lat, 0.99)), ms(maxLat), r.refused, ph.target)
			if serverGC != nil {
				cycles, longest, inGC := gcSummary(serverGC, r.phase, r.slow, 5*time.Millisecond)
				fmt.Printf("    server GC: %d cycles in the phase, longest %.1f ms; of the %d requests over %s, %d were in flight during one\n",
					cycles, ms(longest), len(r.slow), slowRequest, inGC)
			}
		}
		// The disk under both: a bare write+fsync, as the server does for every
		// commit, with nothing else running.
		p50, p99, maxF, n, err := fsyncProbe(dir, o.duration)
		if err != nil {
			return fmt.Errorf("fsync probe: %w", err)
		}
		fmt.Printf("  context: this store's disk alone, %d write+fsync of 64 KiB, one every 5 ms: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			n, ms(p50), ms(p99), ms(maxF))
		fmt.Printf("  (a request is answered after the fsync of its commit: one slow fsync delays every request of that moment)\n")
	}
	return nil
}

// reset waits until the server takes atomic batches again (a phase that
// overran can leave abandoned batches open until the server times them
// out), then empties the stream.
func (b *bench) reset(ctx context.Context) error {
	runtime.GC()
	deadline := time.Now().Add(time.Minute)
	for probe := 0; ; probe++ {
		m, err := natsx.NewMsg(ctx, natsx.HubSpotEventSubject(portalID, "bench", "probe"), fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), probe), &hubspotv1.HubSpotEvent{})
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = b.pub.PublishBatch(pctx, []*nats.Msg{m})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server still refuses atomic batches: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return b.stream.Purge(ctx)
}

func (b *bench) check(ctx context.Context, want int) error {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(want) {
		return fmt.Errorf("stream holds %d messages, want %d", info.State.Msgs, want)
	}
	return nil
}

// wireEvent is one event as HubSpot sends it.
type wireEvent struct {
	EventID          int64  `json:"eventId"`
	SubscriptionID   int64  `json:"subscriptionId"`
	PortalID         int64  `json:"portalId"`
	AppID            int64  `json:"appId"`
	OccurredAt       int64  `json:"occurredAt"`
	SubscriptionType string `json:"subscriptionType"`
	AttemptNumber    int    `json:"attemptNumber"`
	ObjectID         int64  `json:"objectId"`
	PropertyName     string `json:"propertyName"`
	PropertyValue    string `json:"propertyValue"`
	ChangeSource     string `json:"changeSource"`
	SourceID         string `json:"sourceId"`
}

// events returns n fresh events (unique ids across the run) and their JSON.
func (b *bench) events(n int) ([]wireEvent, [][]byte, error) {
	first := b.nextID.Add(int64(n)) - int64(n)
	pid, _ := strconv.ParseInt(portalID, 10, 64)
	now := time.Now().UnixMilli()
	evs := make([]wireEvent, n)
	raws := make([][]byte, n)
	for i := range evs {
		id := first + int64(i)
		evs[i] = wireEvent{
			EventID: id, SubscriptionID: 1001, PortalID: pid, AppID: appID, OccurredAt: now - 1000,
			SubscriptionType: "contact.propertyChange", ObjectID: 50_000 + id%10_000,
			PropertyName: "jobtitle", PropertyValue: fmt.Sprintf("Head of Things %d", id%97),
			ChangeSource: "CRM_UI", SourceID: "userId:" + strconv.FormatInt(9000+id%13, 10),
		}
		raw, err := json.Marshal(evs[i])
		if err != nil {
			return nil, nil, err
		}
		raws[i] = raw
	}
	return evs, raws, nil
}

// rawBatches builds n batches of the messages the receiver would publish.
func (b *bench) rawBatches(n int) ([]any, error) {
	evs, raws, err := b.events(n * batchSize)
	if err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		msgs := make([]*nats.Msg, batchSize)
		for j := range msgs {
			k := i*batchSize + j
			e := evs[k]
			id := "hs:" + portalID + ":" + strconv.FormatInt(e.EventID, 10)
			at := timestamppb.New(time.UnixMilli(e.OccurredAt))
			m, err := natsx.NewMsg(context.Background(), natsx.HubSpotEventSubject(portalID, "contact", "propertyChange"), id, &hubspotv1.HubSpotEvent{
				Meta:    &eventsv1.EventMeta{EventId: id, PortalId: portalID, OccurredAt: at, Producer: "webhook-receiver/" + webhookrx.Version, CorrelationId: id},
				EventId: e.EventID, SubscriptionId: e.SubscriptionID, PortalId: e.PortalID, AppId: e.AppID, OccurredAt: at,
				SubscriptionType: e.SubscriptionType, ObjectId: e.ObjectID, PropertyName: e.PropertyName, PropertyValue: e.PropertyValue,
				ChangeSource: e.ChangeSource, SourceId: e.SourceID, RawJson: raws[k],
			})
			if err != nil {
				return nil, err
			}
			msgs[j] = m
		}
		out[i] = msgs
	}
	return out, nil
}

// signed is one webhook request: body and headers, signed at build time.
type signed struct {
	body      []byte
	timestamp string
	signature string
}

func (b *bench) webhookBodies(n int) ([]any, error) {
	_, raws, err := b.events(n * batchSize)
	if err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		body := append([]byte("["), bytes.Join(raws[i*batchSize:(i+1)*batchSize], []byte(","))...)
		body = append(body, ']')
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		out[i] = &signed{body: body, timestamp: ts, signature: hubspot.SignV3(secret, http.MethodPost, b.url, body, ts)}
	}
	return out, nil
}

// errRefused marks a batch refused for now (a 503, or for raw publishing
// the same 4 s timeout the receiver answers 503 after); HubSpot would retry it.
var errRefused = errors.New("refused, retry later")

func (b *bench) rawSend(_ int, batch any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	_, err := b.pub.PublishBatch(ctx, batch.([]*nats.Msg))
	if errors.Is(err, natsx.ErrUnavailable) {
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return err
}

func (b *bench) webhookSend(_ int, batch any) error {
	s := batch.(*signed)
	req, err := http.NewRequest(http.MethodPost, b.url, bytes.NewReader(s.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hubspot.HeaderRequestTimestamp, s.timestamp)
	req.Header.Set(hubspot.HeaderSignatureV3, s.signature)
	res, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %.300s", errRefused, raw)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", res.StatusCode, raw)
	}
	return nil
}

func (b *bench) rawThroughput() (time.Duration, error) {
	batches, err := b.rawBatches(b.o.n / batchSize)
	if err != nil {
		return 0, err
	}
	return closed(batches, b.o.workers, b.rawSend)
}

// rawThroughput1000 publishes the same number of events in the largest
// atomic batches the server takes: what merging can approach at best.
func (b *bench) rawThroughput1000() (time.Duration, error) {
	batches, err := b.rawBatches(b.o.n / batchSize)
	if err != nil {
		return 0, err
	}
	per := natsx.MaxBatchSize / batchSize
	var big []any
	for i := 0; i < len(batches); i += per {
		var msgs []*nats.Msg
		for _, bt := range batches[i:min(i+per, len(batches))] {
			msgs = append(msgs, bt.([]*nats.Msg)...)
		}
		big = append(big, msgs)
	}
	return closed(big, b.o.workers, b.rawSend)
}

func (b *bench) webhookThroughput() (time.Duration, error) {
	batches, err := b.webhookBodies(b.o.n / batchSize)
	if err != nil {
		return 0, err
	}
	return closed(batches, b.o.workers, b.webhookSend)
}

// closed sends every batch over workers goroutines as fast as they go.
func closed(batches []any, workers int, send func(int, any) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	begin := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				if err := send(i, batches[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(begin)
	close(errs)
	return d, <-errs
}

// slowRequest is the latency target per request: the latency phases list
// the requests slower than this to say what they waited for.
const slowRequest = 25 * time.Millisecond

// pacedResult is what paced measured.
type pacedResult struct {
	lat      []time.Duration // accepted batches, sorted, from their due time
	refused  int             // 503s (HubSpot retries them: counted, not fatal)
	achieved float64         // accepted batches per second
	slow     []span          // accepted batches slower than slowRequest, from due time to answer
	phase    span
}

// paced sends batch i when it is due (i/perSecond after the start), each in
// its own goroutine, and measures each from its due time. Any error other
// than a refusal ends the phase.
func paced(batches []any, perSecond int, send func(int, any) error) (pacedResult, error) {
	interval := time.Second / time.Duration(perSecond)
	lat := make([]time.Duration, len(batches))
	ok := make([]bool, len(batches))
	var wg sync.WaitGroup
	var refused atomic.Int64
	var firstErr atomic.Pointer[error]
	begin := time.Now()
	due := func(i int) time.Time { return begin.Add(time.Duration(i) * interval) }
	for i, batch := range batches {
		if d := time.Until(due(i)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := send(i, batch)
			switch {
			case err == nil:
				lat[i], ok[i] = time.Since(due(i)), true
			case errors.Is(err, errRefused):
				refused.Add(1)
			default:
				firstErr.CompareAndSwap(nil, &err)
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if p := firstErr.Load(); p != nil {
		return pacedResult{}, *p
	}
	r := pacedResult{refused: int(refused.Load()), phase: span{from: begin, to: end}}
	for i, d := range lat {
		if !ok[i] {
			continue
		}
		r.lat = append(r.lat, d)
		if d > slowRequest {
			r.slow = append(r.slow, span{from: due(i), to: due(i).Add(d)})
		}
	}
	slices.Sort(r.lat)
	r.achieved = float64(len(r.lat)) / end.Sub(begin).Seconds()
	return r, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fsyncProbe writes 64 KiB and fsyncs it in dir every 5 ms for d and returns
// the latency percentiles of those write+fsync pairs.
func fsyncProbe(dir string, d time.Duration) (p50, p99, maxLat time.Duration, n int, err error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 64<<10)
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0, 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, 0, 0, err
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1], len(lat), nil
}
