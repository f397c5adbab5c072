// Command ingest-bench measures ingest throughput against raw JetStream publishing of the same
// signals, in one run on one NATS server (embedded, in a process of its own), and prints ratios (machines are noisy; only
// ratios measured side by side mean anything). Every phase uses the same durability setting
// (fsync before acknowledgement unless -lazy-fsync), the same batch size and the same
// concurrency; the raw baseline publishes pre-built messages as atomic batches, the best raw
// method for request-scoped batches (see shared/design/durability.md).
//
//	go run ./services/ingest/cmd/ingest-bench -n 200000 -memory-n 1000000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	ingestv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/ingest/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/ingest"
)

const (
	portalID = "777"
	apiKey   = "sbk_bench_key"
)

func main() {
	embedded.RunProcessIfChild()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n, memoryN, batch, workers int
	lazy                       bool
}

func run() error {
	var o options
	flag.IntVar(&o.n, "n", 200_000, "signals per throughput phase")
	flag.IntVar(&o.memoryN, "memory-n", 1_000_000, "signals in the memory run (0 skips it)")
	flag.IntVar(&o.batch, "batch", 500, "signals per request / chunk / atomic batch")
	flag.IntVar(&o.workers, "workers", 4, "concurrent clients (and raw publishers)")
	flag.BoolVar(&o.lazy, "lazy-fsync", false, "acknowledge before fsync (not what production runs)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
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

	dir, err := os.MkdirTemp("", "ingest-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The server runs in a process of its own, as in production: its work and memory (the
	// de-duplication window's ids, the message cache) stay out of ingest's figures.
	natsURL, stopNATS, err := embedded.StartProcess(embedded.Options{StoreDir: dir, LazyFsync: o.lazy})
	if err != nil {
		return err
	}
	defer stopNATS()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	nc, err := natsx.Connect(ctx, natsx.Config{URL: natsURL, Name: "bench"}, log)
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
	pc, err := portal.Parse(fmt.Appendf(nil, "portal_id: %q\nname: bench\nhubspot: { auth: { type: private_app, secret: T }, tier: starter }\ningest: { api_keys: [ { name: bench, hash: %q } ] }\n", portalID, portal.HashAPIKey(apiKey)))
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
	for deadline := time.Now().Add(5 * time.Second); len(reg.Portals()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	svc, err := ingest.New(ingest.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		MaxBodyBytes: 8 << 20, MaxFutureSkew: 5 * time.Minute, MaxAge: 365 * 24 * time.Hour,
		StreamWindow: 4, ShutdownTimeout: 5 * time.Second,
	}, ingest.Deps{NC: nc, JS: js, Portals: reg, Logger: log, Meter: noop.NewMeterProvider(), Tracer: tracenoop.NewTracerProvider()})
	if err != nil {
		return err
	}
	go func() { _ = svc.Run(ctx) }()
	stream, err := js.Stream(ctx, "SIGNALS")
	if err != nil {
		return err
	}

	durability := "fsync before ack (sync always)"
	if o.lazy {
		durability = "lazy fsync"
	}
	fmt.Printf("ingest throughput — %d signals per phase, batches of %d, %d workers, %s, GOMAXPROCS=%d\n\n",
		o.n, o.batch, o.workers, durability, runtime.GOMAXPROCS(0))

	phases := []struct {
		name string
		fn   func(prefix string) (time.Duration, error)
	}{
		{"raw JetStream atomic batches", func(p string) (time.Duration, error) { return raw(ctx, nc, js, o, p) }},
		{"ingest HTTP (JSON)", func(p string) (time.Duration, error) { return httpPhase(svc.HTTPAddr(), o, p) }},
		{"ingest gRPC streaming", func(p string) (time.Duration, error) { return grpcPhase(ctx, svc.GRPCAddr(), o, p) }},
	}
	// Round 0 warms up caches and the file store; rounds 1..3 count. A phase runs slower the
	// later it comes in a round on this kind of machine, so each counted round starts with a
	// different phase and each phase's rate is its median over the counted rounds.
	samples := map[string][]float64{}
	for round := range 4 {
		for k := range phases {
			pi := (k + round) % len(phases)
			ph := phases[pi]
			if err := stream.Purge(ctx); err != nil {
				return err
			}
			runtime.GC()
			d, err := ph.fn(fmt.Sprintf("r%d-p%d", round, pi))
			if err != nil {
				return fmt.Errorf("%s: %w", ph.name, err)
			}
			if info, err := stream.Info(ctx); err != nil || info.State.Msgs != uint64(o.n) {
				return fmt.Errorf("%s: stream holds %d messages, want %d (%v)", ph.name, info.State.Msgs, o.n, err)
			}
			if round > 0 {
				samples[ph.name] = append(samples[ph.name], float64(o.n)/d.Seconds())
			}
		}
	}
	rates := map[string]float64{}
	for name, xs := range samples {
		slices.Sort(xs)
		rates[name] = xs[len(xs)/2]
	}
	base := rates["raw JetStream atomic batches"]
	fmt.Printf("%-32s %12s %8s %8s   (median of 3 rounds in rotating order)\n", "phase", "signals/s", "ratio", "target")
	for _, ph := range phases {
		target := map[string]string{"ingest HTTP (JSON)": "≥ 0.60", "ingest gRPC streaming": "≥ 0.80"}[ph.name]
		fmt.Printf("%-32s %12.0f %8.2f %8s\n", ph.name, rates[ph.name], rates[ph.name]/base, target)
	}
	if o.memoryN > 0 {
		if err := memoryRun(ctx, svc.HTTPAddr(), stream, o); err != nil {
			return err
		}
	}
	return nil
}

func signal(prefix string, i int) *signalsv1.Signal {
	return &signalsv1.Signal{
		Id:       fmt.Sprintf("%s-%d", prefix, i),
		Type:     "page_view",
		Account:  &signalsv1.Account{Domain: fmt.Sprintf("company%d.example.com", i%5000)},
		Visitor:  &signalsv1.Visitor{Email: fmt.Sprintf("person%d@company%d.example.com", i%997, i%5000)},
		Strength: signalsv1.Strength_STRENGTH_MEDIUM,
		Source:   "bench",
	}
}

func jsonItem(prefix string, i int) string {
	return fmt.Sprintf(`{"id":"%s-%d","type":"page_view","account":{"domain":"https://www.Company%d.example.com/pricing"},"visitor":{"email":"Person%d@company%d.example.com"},"strength":"medium","source":"bench"}`,
		prefix, i, i%5000, i%997, i%5000)
}

// split runs fn for batch starts [0, n) over o.workers goroutines.
func split(o options, fn func(start, end int) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.workers)
	begin := time.Now()
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(int64(o.batch))) - o.batch
				if start >= o.n {
					return
				}
				if err := fn(start, min(start+o.batch, o.n)); err != nil {
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

func raw(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, o options, prefix string) (time.Duration, error) {
	pub := natsx.NewPublisher(nc, js, tracenoop.NewTracerProvider())
	subject := natsx.SignalReceivedSubject(portalID)
	msgs := make([]*nats.Msg, o.n)
	for i := range msgs {
		sig := signal(prefix, i)
		id := "sig:" + portalID + ":" + sig.Id
		m, err := natsx.NewMsg(ctx, subject, id, &signalsv1.SignalReceived{Meta: &eventsv1.EventMeta{EventId: id, PortalId: portalID}, Signal: sig})
		if err != nil {
			return 0, err
		}
		msgs[i] = m
	}
	return split(o, func(start, end int) error {
		_, err := pub.PublishBatch(ctx, msgs[start:end])
		return err
	})
}

func httpPhase(addr string, o options, prefix string) (time.Duration, error) {
	bodies := make(map[int][]byte, o.n/o.batch+1)
	for start := 0; start < o.n; start += o.batch {
		var b bytes.Buffer
		b.WriteString(`{"signals":[`)
		for i := start; i < min(start+o.batch, o.n); i++ {
			if i > start {
				b.WriteByte(',')
			}
			b.WriteString(jsonItem(prefix, i))
		}
		b.WriteString(`]}`)
		bodies[start] = b.Bytes()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers}}
	url := "http://" + addr + "/v1/portals/" + portalID + "/signals"
	return split(o, func(start, _ int) error { return post(client, url, bodies[start]) })
}

func post(client *http.Client, url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d: %.300s", res.StatusCode, raw)
	}
	return nil
}

func grpcPhase(ctx context.Context, addr string, o options, prefix string) (time.Duration, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := ingestv1.NewIngestServiceClient(cc)
	chunks := make(map[int]*ingestv1.StreamSignalsRequest, o.n/o.batch+1)
	for start := 0; start < o.n; start += o.batch {
		req := &ingestv1.StreamSignalsRequest{PortalId: portalID}
		for i := start; i < min(start+o.batch, o.n); i++ {
			req.Signals = append(req.Signals, signal(prefix, i))
		}
		chunks[start] = req
	}
	// Each worker holds one stream and sends its share of the chunks through it.
	octx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+apiKey)
	perWorker := make([][]int, o.workers)
	w := 0
	for start := 0; start < o.n; start += o.batch {
		perWorker[w%o.workers] = append(perWorker[w%o.workers], start)
		w++
	}
	var wg sync.WaitGroup
	errs := make(chan error, o.workers)
	begin := time.Now()
	for _, starts := range perWorker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream, err := client.StreamSignals(octx)
			if err != nil {
				errs <- err
				return
			}
			for _, s := range starts {
				if err := stream.Send(chunks[s]); err != nil {
					errs <- err
					return
				}
			}
			sum, err := stream.CloseAndRecv()
			if err != nil {
				errs <- err
				return
			}
			if sum.Rejected > 0 {
				errs <- fmt.Errorf("%d rejected: %v", sum.Rejected, sum.RejectedItems[0])
			}
		}()
	}
	wg.Wait()
	d := time.Since(begin)
	close(errs)
	return d, <-errs
}

// memoryRun sends memoryN signals over HTTP and samples the heap after every tenth, to show
// that memory stays flat (nothing grows with the number of signals handled).
func memoryRun(ctx context.Context, addr string, stream jetstream.Stream, o options) error {
	fmt.Printf("\nmemory over a %d-signal HTTP run (heap in use after GC, MiB)\n", o.memoryN)
	if err := stream.Purge(ctx); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers}}
	url := "http://" + addr + "/v1/portals/" + portalID + "/signals"
	step := o.memoryN / 10
	var samples []float64
	sent := 0
	for sent < o.memoryN {
		chunk := options{n: min(step, o.memoryN-sent), batch: o.batch, workers: o.workers}
		prefix := fmt.Sprintf("mem-%d", sent)
		_, err := split(chunk, func(start, end int) error {
			var b bytes.Buffer
			b.WriteString(`{"signals":[`)
			for i := start; i < end; i++ {
				if i > start {
					b.WriteByte(',')
				}
				b.WriteString(jsonItem(prefix, i))
			}
			b.WriteString(`]}`)
			return post(client, url, b.Bytes())
		})
		if err != nil {
			return err
		}
		sent += chunk.n
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, float64(ms.HeapInuse)/(1<<20))
		fmt.Printf("  after %8d signals: %7.1f MiB\n", sent, samples[len(samples)-1])
	}
	first, peak := samples[1], 0.0 // samples[0] includes start-up
	for _, s := range samples[1:] {
		peak = max(peak, s)
	}
	fmt.Printf("  peak / after-warm-up ratio: %.2f (flat: ≤ 1.25)\n", peak/first)
	return nil
}
