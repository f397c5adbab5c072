// Command scoresync-bench measures score-sync in one run, in three phases, and prints each
// figure beside its target:
//
//  1. delta: computing the delta of a 1,000,000-account portal with 8 % changed — loading the
//     scores table, resolving every account through a MappingService (gRPC over loopback TCP),
//     loading the sent state and diffing — timed, with the peak RSS of this process during the
//     phase (NATS and the MappingService run in a child process, so their memory is not
//     counted; the peak is reset with /proc/self/clear_refs after seeding);
//  2. batch: a full run through batch updates against the HubSpot sandbox with a scaled-up
//     tier, the quota governor on the real Redis; records per second while sending, against
//     the tier's ceiling (100 records × allowed calls per second), and the 429s seen;
//  3. import: a full run of 1,000,000 accounts through CRM imports; import jobs and other
//     HubSpot calls.
//
// The score table is seeded directly (intake is measured by its own tests), as a compacted
// base plus the day's changes in separate parts, the way intake leaves it.
//
//	go run ./services/score-sync/cmd/scoresync-bench
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx"
	scoresync "github.com/signalbridge/signalbridge/services/score-sync"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/engine"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/mappingtest"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

const deltaPortal = "777000"

type options struct {
	serve                  bool
	accounts, changedPct   int
	batchN, batchBurst     int
	batchInterval          time.Duration
	importN                int
	phases                 string
	redisURL               string
	mappingWorkers         int
	batchWorkers           int
	importChunk, importPar int
}

func main() {
	var o options
	flag.BoolVar(&o.serve, "serve", false, "internal: run the child (NATS and the MappingService)")
	flag.IntVar(&o.accounts, "accounts", 1_000_000, "accounts in the delta phase")
	flag.IntVar(&o.changedPct, "changed-pct", 8, "percent of accounts changed in the delta phase")
	flag.IntVar(&o.batchN, "batch-n", 300_000, "companies in the batch phase")
	flag.IntVar(&o.batchBurst, "batch-burst", 2000, "scaled-up tier: requests per interval in the batch phase")
	flag.DurationVar(&o.batchInterval, "batch-interval", 10*time.Second, "scaled-up tier: the burst interval")
	flag.IntVar(&o.importN, "import-n", 1_000_000, "companies in the import phase")
	flag.StringVar(&o.phases, "phases", "delta,batch,import", "phases to run")
	flag.StringVar(&o.redisURL, "redis", cmpOr(os.Getenv("REDIS_URL"), redisx.DefaultURL), "Redis for the quota governor and locks")
	flag.IntVar(&o.mappingWorkers, "mapping-workers", 4, "MappingService calls in flight")
	flag.IntVar(&o.batchWorkers, "batch-workers", 8, "batch update calls in flight")
	flag.IntVar(&o.importChunk, "import-chunk", 100_000, "rows per import")
	flag.IntVar(&o.importPar, "import-concurrency", 2, "imports in flight")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process to this file")
	flag.Parse()
	if *cpuProfile != "" && !o.serve {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scoresync-bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "scoresync-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	if o.serve {
		err = serve(o)
	} else {
		err = run(o)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "scoresync-bench:", err)
		os.Exit(1)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func domain(i int) string    { return fmt.Sprintf("acct%07d.example.com", i) }
func companyID(i int) uint64 { return 20_000_000 + uint64(i) }

// values is account i's score in version v.
func values(i, v int) store.Values {
	return store.Values{
		IntentScore: uint16((i*7 + v*13) % 10001), ICPFitScore: uint16((i*11 + v*5) % 10001),
		IntentStrength: scoresv1.IntentStrength(1 + (i+v)%5), IntentTrend: scoresv1.IntentTrend(1 + (i*3+v)%6),
		ICPFitGrade: scoresv1.FitGrade(1 + (i+2*v)%5),
	}
}

// ---- child: NATS and the MappingService ----

func serve(o options) error {
	dir, err := os.MkdirTemp("", "scoresync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.Start(embedded.Options{StoreDir: dir})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	m := mappingtest.New()
	for i := range o.accounts {
		m.Set(deltaPortal, domain(i), strconv.FormatUint(companyID(i), 10))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g := grpcx.NewServer(grpcx.ServerConfig{})
	mappingv1.RegisterMappingServiceServer(g.Server, m)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	debug.FreeOSMemory()
	fmt.Printf("READY %s %s\n", srv.ClientURL(), lis.Addr())
	return g.Serve(ctx, lis)
}

// ---- parent ----

type env struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	scores *store.Table
	sent   *store.Table
	mapCC  *grpc.ClientConn
	rdb    *redis.Client
	child  *exec.Cmd
}

func run(o options) error {
	ctx := context.Background()
	fmt.Printf("score-sync benchmark — GOMAXPROCS=%d, NATS sync-always (child process), Redis %s\n\n", runtime.GOMAXPROCS(0), o.redisURL)
	e, err := startChild(ctx, o)
	if err != nil {
		return err
	}
	defer e.close()
	phases := map[string]bool{}
	for _, p := range strings.Split(o.phases, ",") {
		phases[strings.TrimSpace(p)] = true
	}
	if phases["delta"] {
		if err := deltaPhase(ctx, e, o); err != nil {
			return fmt.Errorf("delta phase: %w", err)
		}
	}
	if phases["batch"] {
		if err := batchPhase(ctx, e, o); err != nil {
			return fmt.Errorf("batch phase: %w", err)
		}
	}
	if phases["import"] {
		if err := importPhase(ctx, e, o); err != nil {
			return fmt.Errorf("import phase: %w", err)
		}
	}
	return nil
}

func startChild(ctx context.Context, o options) (*env, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve", "-accounts", strconv.Itoa(o.accounts))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &env{child: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		e.close()
		return nil, fmt.Errorf("child: %w", err)
	}
	var natsURL, mapAddr string
	if _, err := fmt.Sscanf(line, "READY %s %s", &natsURL, &mapAddr); err != nil {
		e.close()
		return nil, fmt.Errorf("child said %q: %w", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if e.nc, err = natsx.Connect(ctx, natsx.Config{URL: natsURL, Name: "bench"}, nil); err != nil {
		e.close()
		return nil, err
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		e.close()
		return nil, err
	}
	if err := natsx.Provision(ctx, e.js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		e.close()
		return nil, err
	}
	kv, err := e.js.KeyValue(ctx, natsx.BucketScoreState)
	if err != nil {
		e.close()
		return nil, err
	}
	obj, err := e.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "score-sync"})
	if err != nil {
		e.close()
		return nil, err
	}
	e.scores = store.NewTable(store.TableScores, kv, obj, nil)
	e.sent = store.NewTable(store.TableSent, kv, obj, nil)
	if e.mapCC, err = grpc.NewClient(mapAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		e.close()
		return nil, err
	}
	if e.rdb, err = redisx.New(ctx, redisx.Config{URL: o.redisURL, ReadTimeout: time.Second, WriteTimeout: time.Second}); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.mapCC != nil {
		_ = e.mapCC.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.child != nil && e.child.Process != nil {
		_ = e.child.Process.Signal(os.Interrupt)
		_ = e.child.Wait()
	}
}

// seedScores writes n accounts (version 0) as one compacted part, then the changed accounts
// (version 1) as parts of 10,000 like intake writes them. changed(i) selects them.
func seedScores(ctx context.Context, t *store.Table, portalID string, n int, name func(int) string, changed func(int) bool) error {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const chunk = 100_000
	for start := 0; start < n; start += chunk {
		rows := make([]store.Row, 0, chunk)
		for i := start; i < min(start+chunk, n); i++ {
			r, err := store.ScoreRow{Domain: name(i), ScoredAt: at, Values: values(i, 0)}.Row()
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		if _, err := t.Append(ctx, portalID, rows); err != nil {
			return err
		}
	}
	if _, err := t.Compact(ctx, portalID); err != nil {
		return err
	}
	var rows []store.Row
	for i := range n {
		if changed == nil || !changed(i) {
			continue
		}
		r, err := store.ScoreRow{Domain: name(i), ScoredAt: at.Add(24 * time.Hour), Values: values(i, 1)}.Row()
		if err != nil {
			return err
		}
		if rows = append(rows, r); len(rows) == 10_000 {
			if _, err := t.Append(ctx, portalID, rows); err != nil {
				return err
			}
			rows = rows[:0]
		}
	}
	if len(rows) > 0 {
		_, err := t.Append(ctx, portalID, rows)
		return err
	}
	return nil
}

func deltaPhase(ctx context.Context, e *env, o options) error {
	n := o.accounts
	changed := func(i int) bool { return i%100 < o.changedPct }
	fmt.Printf("1. delta computation — %d accounts, %d %% changed\n", n, o.changedPct)
	seedStart := time.Now()
	if err := seedScores(ctx, e.scores, deltaPortal, n, domain, changed); err != nil {
		return err
	}
	// What HubSpot confirmed yesterday: every company, version 0, under the managed mapping.
	fp, err := managedFingerprint(ctx)
	if err != nil {
		return err
	}
	const chunk = 100_000
	for start := 0; start < n; start += chunk {
		rows := make([]store.Row, 0, chunk)
		for i := start; i < min(start+chunk, n); i++ {
			rows = append(rows, store.SentRow{CompanyID: companyID(i), Fingerprint: fp, Packed: values(i, 0).Pack(), ConfirmedAt: time.Now()}.Row())
		}
		if _, err := e.sent.Append(ctx, deltaPortal, rows); err != nil {
			return err
		}
	}
	if _, err := e.sent.Compact(ctx, deltaPortal); err != nil {
		return err
	}
	fmt.Printf("   seeded in %s\n", time.Since(seedStart).Round(time.Millisecond))

	runtime.GC()
	debug.FreeOSMemory()
	resetPeak := clearRefs()
	baseRSS := rssKiB("VmRSS")
	sampler := newHeapSampler()

	t0 := time.Now()
	accts, err := engine.LoadAccounts(ctx, e.scores, deltaPortal)
	if err != nil {
		return err
	}
	t1 := time.Now()
	rs, err := accts.Resolve(ctx, mappingv1.NewMappingServiceClient(e.mapCC), deltaPortal,
		engine.ResolveOptions{Batch: 1000, Workers: o.mappingWorkers, Timeout: 30 * time.Second, Attempts: 3})
	if err != nil {
		return err
	}
	t2 := time.Now()
	sent, _, err := engine.LoadSent(ctx, e.sent, deltaPortal, fp)
	if err != nil {
		return err
	}
	t3 := time.Now()
	changes, ds := engine.Diff(accts, sent, false)
	t4 := time.Now()
	heapPeak := sampler.stop()
	peak := rssKiB("VmHWM")
	runtime.KeepAlive(accts)
	runtime.KeepAlive(sent)

	wantChanged := 0
	for i := range n {
		if changed(i) {
			wantChanged++
		}
	}
	if len(changes) != wantChanged || rs.Matched != n {
		return fmt.Errorf("delta found %d changes (want %d), %d matched of %d", len(changes), wantChanged, rs.Matched, n)
	}
	total := t4.Sub(t0)
	fmt.Printf("   load scores      %8s  (%d accounts, merged from the base and %d parts of changes)\n", t1.Sub(t0).Round(time.Millisecond), accts.Len(), (wantChanged+9999)/10000)
	fmt.Printf("   resolve          %8s  (%d MappingService calls over loopback TCP, %d in flight)\n", t2.Sub(t1).Round(time.Millisecond), rs.Calls, o.mappingWorkers)
	fmt.Printf("   load sent state  %8s  (%d companies)\n", t3.Sub(t2).Round(time.Millisecond), sent.Len())
	fmt.Printf("   diff             %8s  (%d changed of %d companies)\n", t4.Sub(t3).Round(time.Millisecond), ds.Changed, ds.Companies)
	fmt.Printf("   %-16s %8s  target ≤ 5s   %s\n", "total", total.Round(time.Millisecond), verdict(total <= 5*time.Second))
	fmt.Printf("   without resolve  %8s\n", (total - t2.Sub(t1)).Round(time.Millisecond))
	peakNote := "peak reset after seeding"
	if !resetPeak {
		peakNote = "could not reset the peak: includes seeding"
	}
	fmt.Printf("   peak RSS %6.1f MiB (at start %.1f MiB; %s)  target ≤ 300 MiB   %s\n", float64(peak)/1024, float64(baseRSS)/1024, peakNote, verdict(peak <= 300*1024))
	fmt.Printf("   peak Go heap in use %.1f MiB (sampled)\n\n", float64(heapPeak)/(1<<20))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

// managedFingerprint is the fingerprint of the default managed mapping, from a throwaway
// sandbox portal.
func managedFingerprint(ctx context.Context) (uint32, error) {
	sb := hubspottest.New(hubspottest.Options{DisableRateLimits: true})
	defer sb.Close()
	p := sb.AddPortal(hubspottest.PortalOptions{Tier: "enterprise"})
	c, err := hubspot.New(hubspot.Config{BaseURL: sb.URL, Auth: hubspot.BearerToken(p.Token())})
	if err != nil {
		return 0, err
	}
	cfg, err := portalConfig(deltaPortal, 5000)
	if err != nil {
		return 0, err
	}
	res, err := engine.Setup(ctx, c, cfg)
	return res.Mapping.Fingerprint, err
}

func portalConfig(id string, threshold int) (*portal.Config, error) {
	return portal.Parse(fmt.Appendf(nil, `portal_id: %q
name: bench
hubspot: { auth: { type: private_app, secret: T }, tier: enterprise }
score_sync: { enabled: true, import_threshold: %d }
`, id, threshold))
}

// clearRefs resets this process's peak RSS (VmHWM).
func clearRefs() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func rssKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return -1
}

type heapSampler struct {
	peak atomic.Uint64
	done chan struct{}
	wg   sync.WaitGroup
}

func newHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	})
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	return h.peak.Load()
}

// ---- service phases (batch, import) ----

// countingTransport counts HubSpot requests and times batch updates.
type countingTransport struct {
	next                 http.RoundTripper
	batches              atomic.Int64
	firstBatch, lastDone atomic.Int64 // unix nanos
	busy                 atomic.Int64 // nanoseconds spent in batch requests
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	batch := strings.HasSuffix(r.URL.Path, "/batch/update")
	if batch {
		c.firstBatch.CompareAndSwap(0, time.Now().UnixNano())
	}
	began := time.Now()
	res, err := c.next.RoundTrip(r)
	if batch {
		c.batches.Add(1)
		c.lastDone.Store(time.Now().UnixNano())
		c.busy.Add(int64(time.Since(began)))
	}
	return res, err
}

type servicePhase struct {
	sb        *hubspottest.Server
	p         *hubspottest.Portal
	portalID  string
	transport *countingTransport
	svc       *scoresync.Service
	client    scoresyncv1.ScoreSyncServiceClient
	stop      func()
}

// startService creates a sandbox portal with n companies, seeds their scores, maps them in an
// in-process MappingService and starts the service on the child's NATS.
func startService(ctx context.Context, e *env, o options, n, threshold int, po hubspottest.PortalOptions, limits quota.Limits) (ph *servicePhase, err error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	sb := hubspottest.New(hubspottest.Options{})
	closers = append(closers, sb.Close)
	po.ID = 880_000_000 + time.Now().UnixNano()%1_000_000
	p := sb.AddPortal(po)
	portalID := strconv.FormatInt(p.ID(), 10)
	name := func(i int) string { return fmt.Sprintf("p%d-%s", i, domain(i)) }
	recs := make([]map[string]string, n)
	for i := range recs {
		recs[i] = map[string]string{"name": "c", "domain": name(i)}
	}
	ids := p.SeedCompanies(recs...)
	m := mappingtest.New()
	for i, id := range ids {
		m.Set(portalID, name(i), id)
	}
	if err := seedScores(ctx, e.scores, portalID, n, name, nil); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := grpcx.NewServer(grpcx.ServerConfig{})
	mappingv1.RegisterMappingServiceServer(g.Server, m)
	gctx, gcancel := context.WithCancel(ctx)
	closers = append(closers, gcancel)
	go func() { _ = g.Serve(gctx, lis) }()
	mapCC, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = mapCC.Close() })

	kv, err := e.js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		return nil, err
	}
	cfg, err := portalConfig(portalID, threshold)
	if err != nil {
		return nil, err
	}
	if err := portal.NewStore(kv).Put(ctx, cfg); err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	reg, err := portal.Watch(ctx, kv, log)
	if err != nil {
		return nil, err
	}
	closers = append(closers, reg.Close)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, ok := reg.Get(portalID); ok {
			break
		}
	}
	gov, err := quota.New(quota.Config{Redis: e.rdb, KeyPrefix: "bench:quota:" + portalID, Logger: log,
		Portals: map[int64]quota.Limits{p.ID(): limits}})
	if err != nil {
		return nil, err
	}
	tr := &countingTransport{next: http.DefaultTransport}
	factory := func(string) (*hubspot.Client, error) {
		return hubspot.New(hubspot.Config{BaseURL: sb.URL, PortalID: p.ID(), Auth: hubspot.BearerToken(p.Token()),
			Governor: gov, HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute}, Logger: log})
	}
	sc := scoresync.Config{
		GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Replica: "bench", ObjectBucket: "score-sync", MaxRuns: 1,
		IntakeBatch: 10_000, IntakeLinger: time.Second, CompactParts: 16, LockTTL: 30 * time.Second, SchedulerTick: time.Hour,
		MappingBatch: 1000, MappingWorkers: o.mappingWorkers, MappingTimeout: time.Minute,
		BatchWorkers: o.batchWorkers, ImportChunkRows: o.importChunk, ImportConcurrency: o.importPar,
		ImportPollInterval: time.Second, ImportPollMax: 5 * time.Second, ImportTimeout: time.Hour,
		ConfirmFlushRows: 5000, RunsKept: 100, ShutdownTimeout: 30 * time.Second,
	}
	svc, err := scoresync.New(sc, scoresync.Deps{NC: e.nc, JS: e.js, Portals: reg, Redis: e.rdb, HubSpot: factory,
		Mapping: mappingv1.NewMappingServiceClient(mapCC), Logger: log, Meter: noop.NewMeterProvider(), Tracer: tracenoop.NewTracerProvider()})
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	closers = append(closers, func() {
		scancel()
		<-done
		_ = e.rdb.Del(context.Background(), store.LockKey(portalID)).Err()
	})
	cc, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = cc.Close() })
	return &servicePhase{sb: sb, p: p, portalID: portalID, transport: tr, svc: svc,
		client: scoresyncv1.NewScoreSyncServiceClient(cc), stop: cleanup}, nil
}

// fullRun triggers a full run and waits for it.
func (ph *servicePhase) fullRun(ctx context.Context) (*scoresyncv1.SyncRun, time.Duration, error) {
	var res *scoresyncv1.TriggerSyncResponse
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err = ph.client.TriggerSync(ctx, &scoresyncv1.TriggerSyncRequest{PortalId: ph.portalID, Mode: scoresyncv1.SyncMode_SYNC_MODE_FULL})
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return nil, 0, err
	}
	begin := time.Now()
	for {
		time.Sleep(100 * time.Millisecond)
		got, err := ph.client.GetRun(ctx, &scoresyncv1.GetRunRequest{PortalId: ph.portalID, RunId: res.GetRun().GetRunId()})
		if err != nil {
			return nil, 0, err
		}
		if got.GetRun().GetState() != scoresyncv1.RunState_RUN_STATE_RUNNING {
			return got.GetRun(), time.Since(begin), nil
		}
	}
}

func batchPhase(ctx context.Context, e *env, o options) error {
	n := o.batchN
	fmt.Printf("2. batch path — %d companies, scaled-up tier %d requests / %s, quota governor on Redis, %d calls in flight\n",
		n, o.batchBurst, o.batchInterval, o.batchWorkers)
	limits := quota.Limits{Burst: o.batchBurst, Interval: o.batchInterval, Daily: 10_000_000, DailyReserve: 100_000}
	ph, err := startService(ctx, e, o, n, n+1,
		hubspottest.PortalOptions{Tier: "enterprise", Burst: o.batchBurst, Interval: o.batchInterval, Daily: 10_000_000}, limits)
	if err != nil {
		return err
	}
	defer ph.stop()
	run, took, err := ph.fullRun(ctx)
	if err != nil {
		return err
	}
	if run.GetState() != scoresyncv1.RunState_RUN_STATE_SUCCEEDED || run.GetAccountsConfirmed() != int64(n) {
		return fmt.Errorf("run: %v", run)
	}
	sendTime := time.Duration(ph.transport.lastDone.Load() - ph.transport.firstBatch.Load())
	rate := float64(run.GetAccountsConfirmed()) / sendTime.Seconds()
	ceiling := 100 * float64(o.batchBurst) / o.batchInterval.Seconds()
	stats := ph.p.Stats()
	fmt.Printf("   run %s, %d confirmed, %d HubSpot calls (%d batch updates)\n", took.Round(time.Millisecond), run.GetAccountsConfirmed(), run.GetHubspotCalls(), ph.transport.batches.Load())
	fmt.Printf("   sending %s: %.0f records/s; ceiling %.0f records/s; ratio %.3f  target ≥ 0.95   %s\n",
		sendTime.Round(time.Millisecond), rate, ceiling, rate/ceiling, verdict(rate/ceiling >= 0.95))
	fmt.Printf("   batch request latency %.1f ms on average; %.1f requests in flight on average (%d workers)\n",
		float64(ph.transport.busy.Load())/float64(ph.transport.batches.Load())/1e6, float64(ph.transport.busy.Load())/float64(sendTime), o.batchWorkers)
	fmt.Printf("   whole run (setup, resolve, diff included): %.0f records/s (ratio %.3f)\n", float64(n)/took.Seconds(), float64(n)/took.Seconds()/ceiling)
	fmt.Printf("   429 responses: %d  target 0   %s\n\n", stats.Total429(), verdict(stats.Total429() == 0))
	return nil
}

func importPhase(ctx context.Context, e *env, o options) error {
	n := o.importN
	fmt.Printf("3. import path — full run of %d companies, imports of %d rows, %d in flight\n", n, o.importChunk, o.importPar)
	limits, _ := quota.TierLimits(quota.TierEnterprise)
	ph, err := startService(ctx, e, o, n, 1, hubspottest.PortalOptions{Tier: "enterprise"}, limits)
	if err != nil {
		return err
	}
	defer ph.stop()
	ph.p.ResetStats()
	run, took, err := ph.fullRun(ctx)
	if err != nil {
		return err
	}
	if run.GetState() != scoresyncv1.RunState_RUN_STATE_SUCCEEDED || run.GetAccountsConfirmed() != int64(n) {
		return fmt.Errorf("run: %v", run)
	}
	stats := ph.p.Stats()
	total := 0
	for _, c := range stats.Requests {
		total += c
	}
	other := total - stats.Imports
	fmt.Printf("   run %s, %d confirmed, import ids %v\n", took.Round(time.Millisecond), run.GetAccountsConfirmed(), run.GetImportIds())
	fmt.Printf("   import jobs %d (%d rows)  target ≤ 10   %s\n", stats.Imports, stats.ImportRows, verdict(stats.Imports <= 10))
	fmt.Printf("   other HubSpot calls %d  target ≤ 100   %s\n", other, verdict(other <= 100))
	var routes []string
	for r, c := range stats.Requests {
		routes = append(routes, fmt.Sprintf("%s ×%d", r, c))
	}
	fmt.Printf("   by route: %s\n   429 responses: %d\n\n", strings.Join(routes, "; "), stats.Total429())
	return nil
}
