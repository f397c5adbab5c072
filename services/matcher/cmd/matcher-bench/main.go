// Command matcher-bench measures the matcher in one run on one machine, and prints ratios
// and counts (machines are noisy; only figures measured side by side mean anything):
//
//  1. the full CRM read of a portal of -companies companies (with contacts and deals) into
//     Redis: duration, HubSpot calls, Redis memory;
//  2. warm-cache matching throughput: -n SignalReceived messages over those companies,
//     in -rounds rounds of fresh signals already in the stream, matched and published
//     as SignalMatched, each round against a raw relay of the same signals (the
//     matcher's JetStream work: consume, republish in atomic batches, ack; no matching:
//     what each signal costs the server), the two in alternating order;
//     and, for context, raw JetStream consumption of the first round's signals by a
//     durable consumer with the same number of workers (no work, ack only) and by a
//     single plain consumer;
//  3. ResolveAccount latency over gRPC with a warm cache (p50, p99, max), one call at a
//     time and with concurrent callers;
//  4. cold start: HubSpot calls made to match 1,000 signals whose domains were never
//     seen, for a portal not mirrored yet, against 1,000 for one search per signal.
//
// Everything runs in-process against an embedded NATS server (fsync before every
// acknowledgement unless -lazy-fsync), the real Redis (-redis, default REDIS_URL or
// 127.0.0.1:6379) and the HubSpot sandbox with its rate limits raised (HubSpot's real
// limits would make the set-up, not the matcher, the thing measured).
//
//	go run ./services/matcher/cmd/matcher-bench -n 1000000
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
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
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/services/matcher"
	"github.com/signalbridge/signalbridge/services/matcher/internal/pipeline"
	"github.com/signalbridge/signalbridge/services/matcher/internal/resolve"
)

func main() {
	embedded.RunProcessIfChild()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "matcher-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n, rounds, natsxN, companies, workers, rpcCalls, coldCompanies, parallel, batch, cacheKeys int
	linger                                                                                     time.Duration
	lazy                                                                                       bool
	redisURL, cpuProfile, memProfile                                                           string
}

// bench holds the shared set-up.
type bench struct {
	o                  options
	ctx                context.Context
	nc                 *nats.Conn
	js                 jetstream.JetStream
	rdb                *redis.Client
	sandbox            *hubspottest.Server
	gov                *quota.Governor
	kv                 jetstream.KeyValue
	reg                *portal.Registry
	log                *slog.Logger
	rawPlain, rawNatsx float64 // baseline rates

	mu      sync.Mutex
	clients map[string]*hubspot.Client
	portals map[string]*hubspottest.Portal
}

func run() error {
	var o options
	flag.IntVar(&o.n, "n", 200_000, "signals in the warm throughput phase")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds the warm throughput phase is split into (each on fresh signals, the relay and the matcher in alternating order)")
	flag.IntVar(&o.natsxN, "natsx-n", 100_000, "signals for the natsx.Consume mode comparison (0 skips it)")
	flag.IntVar(&o.companies, "companies", 50_000, "companies in the mirrored portal")
	flag.IntVar(&o.workers, "workers", 512, "natsx.Consume loops (raw natsx baseline and the natsx mode)")
	flag.IntVar(&o.parallel, "parallel", 3, "match batches in flight (SB_MATCHER_MATCH_PARALLEL; the relay uses as many)")
	flag.IntVar(&o.batch, "batch", 1000, "most signals matched and published together")
	flag.IntVar(&o.cacheKeys, "cache-keys", 200_000, "SB_MATCHER_CACHE_KEYS: mirror answers kept in memory (0: none)")
	flag.DurationVar(&o.linger, "linger", time.Millisecond, "how long a match batch waits for more signals")
	flag.IntVar(&o.rpcCalls, "rpc-calls", 20_000, "ResolveAccount calls per latency phase")
	flag.IntVar(&o.coldCompanies, "cold-companies", 5_000, "companies in the cold-start portal")
	flag.BoolVar(&o.lazy, "lazy-fsync", false, "acknowledge before fsync (not what production runs)")
	flag.StringVar(&o.redisURL, "redis", envOr("REDIS_URL", redisx.DefaultURL), "Redis URL")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the matcher in the last warm round (its in-memory answers are warm by then) to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write heap profiles before (FILE.base) and after the matcher's last warm round to FILE: go tool pprof -sample_index=alloc_space -diff_base FILE.base BINARY FILE shows what the round allocated; the two full collections this takes count in that round's CPU figures")
	gogc := flag.Int("gogc", 400, "GC percent of the benchmark process: it also hosts the HubSpot sandbox, whose heap would otherwise set the GC pace")
	flag.Parse()
	debug.SetGCPercent(*gogc)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &bench{o: o, ctx: ctx, log: slog.New(slog.DiscardHandler), clients: map[string]*hubspot.Client{}, portals: map[string]*hubspottest.Portal{}}

	dir, err := os.MkdirTemp("", "matcher-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The NATS server runs in a process of its own, as in production.
	natsURL, stopNATS, err := embedded.StartProcess(embedded.Options{StoreDir: dir, LazyFsync: o.lazy})
	if err != nil {
		return err
	}
	defer stopNATS()
	if b.nc, err = natsx.Connect(ctx, natsx.Config{URL: natsURL, Name: "matcher-bench"}, b.log); err != nil {
		return err
	}
	defer b.nc.Close()
	if b.js, err = jetstream.New(b.nc); err != nil {
		return err
	}
	if err := natsx.Provision(ctx, b.js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		return err
	}
	if b.kv, err = b.js.KeyValue(ctx, natsx.BucketPortals); err != nil {
		return err
	}
	if b.reg, err = portal.Watch(ctx, b.kv, b.log); err != nil {
		return err
	}
	defer b.reg.Close()
	if b.rdb, err = redisx.New(ctx, redisx.Config{URL: o.redisURL, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}); err != nil {
		return err
	}
	defer b.rdb.Close()
	b.sandbox = hubspottest.New(hubspottest.Options{})
	defer b.sandbox.Close()
	limits := quota.Limits{Burst: 1_000_000, Interval: 10 * time.Second, SearchPerSecond: 1_000}
	if b.gov, err = quota.New(quota.Config{Default: limits, ExpectedReplicas: 1, Logger: b.log}); err != nil {
		return err
	}

	durability := "fsync before ack (sync always)"
	if o.lazy {
		durability = "lazy fsync"
	}
	fmt.Printf("matcher benchmark — %d companies, %d signals, %s, GOMAXPROCS=%d, GOGC=%d\n\n", o.companies, o.n, durability, runtime.GOMAXPROCS(0), *gogc)

	warm, err := b.addPortal(o.companies, 1, 1, 1)
	if err != nil {
		return err
	}
	defer b.cleanup(warm)
	svc, err := b.service(pipeline.ModeBatch)
	if err != nil {
		return err
	}
	domains, emails, err := b.fullRead(svc, warm)
	if err != nil {
		return err
	}
	if err := b.throughput(warm, domains, emails); err != nil {
		return err
	}
	stop := b.start(svc)
	if err := b.latency(svc, warm, domains); err != nil {
		return err
	}
	cold, err := b.addPortal(o.coldCompanies, 0, 0, 2)
	if err != nil {
		return err
	}
	defer b.cleanup(cold)
	if err := b.coldStart(cold); err != nil {
		return err
	}
	if err := stop(); err != nil {
		return err
	}
	if o.natsxN > 0 {
		return b.natsxMode(warm, domains, emails)
	}
	return nil
}

// service builds a matcher with the given signals consumer mode (not yet running).
func (b *bench) service(mode string) (*matcher.Service, error) {
	return matcher.New(matcher.Config{
		GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		SignalConsumer: mode, SignalWorkers: b.o.workers, MatchBatch: b.o.batch, MatchLinger: b.o.linger, MatchParallel: b.o.parallel,
		CRMWorkers: 8, CRMLinger: 20 * time.Millisecond,
		NegativeTTL: 10 * time.Minute, SearchMirroredMisses: true, MissLinger: 10 * time.Millisecond, CacheKeys: b.o.cacheKeys,
		Sync: false, SyncTick: time.Minute, FullReadEvery: -1, SyncConcurrency: 1, IndexLag: 5 * time.Minute,
		RedisProbe: 500 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
	}, matcher.Deps{
		NC: b.nc, JS: b.js, Portals: b.reg, Redis: b.rdb, HubSpot: b.client, Logger: b.log,
		Meter: noop.NewMeterProvider(), Tracer: tracenoop.NewTracerProvider(),
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// addPortal creates a sandbox portal with generated data and its config in KV.
func (b *bench) addPortal(companies, contacts, deals int, seed int64) (string, error) {
	var r [8]byte
	_, _ = rand.Read(r[:])
	id := 800_000_000_000 + int64(binary.BigEndian.Uint64(r[:])%99_000_000_000)
	p, err := b.sandbox.CreatePortal(hubspottest.PortalOptions{ID: id, Tier: hubspottest.TierEnterprise, Burst: 1_000_000, SearchPerSecond: 1_000})
	if err != nil {
		return "", err
	}
	p.Generate(hubspottest.GenerateOptions{Companies: companies, ContactsPerCompany: contacts, DealsPerCompany: deals,
		AliasRate: 0.2, DuplicateDomainRate: 0.05, WebsiteOnlyRate: 0.05, Seed: seed})
	pid := strconv.FormatInt(id, 10)
	b.mu.Lock()
	b.portals[pid] = p
	b.mu.Unlock()
	cfg, err := portal.Parse(fmt.Appendf(nil, "portal_id: %q\nname: bench\nhubspot: { auth: { type: private_app, secret: T }, tier: enterprise }\n", pid))
	if err != nil {
		return "", err
	}
	if err := portal.NewStore(b.kv).Put(b.ctx, cfg); err != nil {
		return "", err
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, ok := b.reg.Get(pid); ok {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("portal config not seen by the registry")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *bench) cleanup(pid string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = redistest.DeleteKeys(ctx, b.rdb, redisx.Key(pid, "*"))
}

func (b *bench) client(pid string) (*hubspot.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[pid]; ok {
		return c, nil
	}
	p, ok := b.portals[pid]
	if !ok {
		return nil, fmt.Errorf("no sandbox portal %s", pid)
	}
	c, err := hubspot.New(hubspot.Config{BaseURL: b.sandbox.URL, PortalID: p.ID(), Auth: hubspot.BearerToken(p.Token()), Governor: b.gov, Logger: b.log})
	if err != nil {
		return nil, err
	}
	b.clients[pid] = c
	return c, nil
}

func totalRequests(s hubspottest.Stats) int {
	n := 0
	for _, v := range s.Requests {
		n += v
	}
	return n
}

func redisMemory(ctx context.Context, rdb *redis.Client) int64 {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// fullRead mirrors the warm portal and returns the domains and emails to use.
func (b *bench) fullRead(svc *matcher.Service, pid string) ([]string, []string, error) {
	p := b.portals[pid]
	runtime.GC()
	mem0 := redisMemory(b.ctx, b.rdb)
	start := time.Now()
	if err := svc.SyncPortal(b.ctx, pid); err != nil {
		return nil, nil, err
	}
	d := time.Since(start)
	mem := redisMemory(b.ctx, b.rdb) - mem0
	st := p.Stats()
	fmt.Printf("full CRM read: %d companies, %d contacts, %d deals in %s — %d HubSpot calls, Redis +%.1f MiB (%.0f bytes per record)\n\n",
		p.Count(hubspottest.Companies), p.Count(hubspottest.Contacts), p.Count(hubspottest.Deals), d.Round(time.Millisecond),
		totalRequests(st), float64(mem)/(1<<20),
		float64(mem)/float64(p.Count(hubspottest.Companies)+p.Count(hubspottest.Contacts)+p.Count(hubspottest.Deals)))
	seen := map[string]bool{}
	var domains, emails []string
	for _, id := range p.IDs(hubspottest.Companies) {
		props, _ := p.Object(hubspottest.Companies, id)
		d := props["domain"]
		if d == "" {
			d = strings.TrimPrefix(props["website"], "https://www.")
		}
		if !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
	}
	for _, id := range p.IDs(hubspottest.Contacts) {
		props, _ := p.Object(hubspottest.Contacts, id)
		emails = append(emails, props["email"])
	}
	return domains, emails, nil
}

func signalMsg(ctx context.Context, pid, id, domain, email string) (*nats.Msg, error) {
	eid := "sig:" + pid + ":" + id
	ev := &signalsv1.SignalReceived{
		Meta:   &eventsv1.EventMeta{EventId: eid, PortalId: pid, CorrelationId: eid, Producer: "bench"},
		Signal: &signalsv1.Signal{Id: id, Type: "page_view", Account: &signalsv1.Account{Domain: domain}, Strength: signalsv1.Strength_STRENGTH_MEDIUM},
	}
	if email != "" {
		ev.Signal.Visitor = &signalsv1.Visitor{Email: email}
	}
	return natsx.NewMsg(ctx, natsx.SignalReceivedSubject(pid), eid, ev)
}

// publishAll publishes n messages built by gen as atomic batches of 500 from 4
// publishers, without holding them all in memory.
func (b *bench) publishAll(n int, gen func(i int) (*nats.Msg, error)) error {
	pub := natsx.NewPublisher(b.nc, b.js, tracenoop.NewTracerProvider())
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(500)) - 500
				if start >= n {
					return
				}
				msgs := make([]*nats.Msg, 0, 500)
				for i := start; i < min(start+500, n); i++ {
					m, err := gen(i)
					if err != nil {
						errs <- err
						return
					}
					msgs = append(msgs, m)
				}
				if _, err := pub.PublishBatch(b.ctx, msgs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// rawConsume consumes n messages of subject with a durable consumer and returns the time.
func (b *bench) rawConsume(name, subject string, n int, natsxWorkers int) (time.Duration, error) {
	var count atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	mark := func() {
		if count.Add(1) == int64(n) {
			once.Do(func() { close(done) })
		}
	}
	start := time.Now()
	var stop func() error
	if natsxWorkers > 0 {
		c, err := natsx.Consume(b.ctx, b.js, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: name, FilterSubjects: []string{subject},
			Workers: natsxWorkers, MaxAckPending: 4 * natsxWorkers * 16, TracerProvider: tracenoop.NewTracerProvider()},
			func(context.Context, jetstream.Msg) error { mark(); return nil }, b.log)
		if err != nil {
			return 0, err
		}
		stop = func() error { return c.Stop(b.ctx) }
	} else {
		cons, err := b.js.CreateOrUpdateConsumer(b.ctx, natsx.StreamSignals, jetstream.ConsumerConfig{
			Durable: name, FilterSubjects: []string{subject}, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096})
		if err != nil {
			return 0, err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack(); mark() }, jetstream.PullMaxMessages(1024))
		if err != nil {
			return 0, err
		}
		stop = func() error { cc.Drain(); <-cc.Closed(); return nil }
	}
	select {
	case <-done:
	case <-time.After(30 * time.Minute):
		return 0, errors.New("raw consume timed out")
	}
	d := time.Since(start)
	if err := stop(); err != nil {
		return 0, err
	}
	// Gone before the next phase, which should not share the stream with idle consumers.
	return d, b.js.DeleteConsumer(b.ctx, natsx.StreamSignals, name)
}

// rawRelay is the matcher's JetStream work without the matching, over the n
// signals of pid from stream sequence from on: one plain pull consumer
// (prefetching, as the matcher's does) feeds -parallel loops that each take
// up to -batch signals (waiting at most -linger for more), publish a copy of
// every one (same payload and headers, its own msg id) as one atomic batch
// with the matcher's publisher, then acknowledge them (the last one
// double-acked). It is what each signal costs the server with none of the
// matcher's own work. (It is not a ceiling: over short rounds the matcher's
// batch consumer, which overlaps more, can beat it.)
func (b *bench) rawRelay(pid string, n int, from uint64) (time.Duration, error) {
	const name = "bench-raw-relay"
	cons, err := b.js.CreateOrUpdateConsumer(b.ctx, natsx.StreamSignals, jetstream.ConsumerConfig{
		Durable: name, FilterSubjects: []string{natsx.SignalReceivedSubject(pid)}, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		MaxAckPending: (b.o.parallel + 2) * b.o.batch})
	if err != nil {
		return 0, err
	}
	in := make(chan jetstream.Msg, 2*b.o.batch)
	finished := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-finished:
		}
	}, jetstream.PullMaxMessages(2*b.o.batch))
	if err != nil {
		return 0, err
	}
	pub := natsx.NewPublisher(b.nc, b.js, tracenoop.NewTracerProvider())
	out := natsx.SignalMatchedSubject("relay-" + pid)
	var relayed atomic.Int64
	var end time.Time
	var once sync.Once
	all := make(chan struct{}) // closed once n signals are relayed, or on the first error
	errs := make(chan error, b.o.parallel)
	fail := func(err error) { errs <- err; once.Do(func() { close(all) }) }
	var wg sync.WaitGroup
	for range b.o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-all:
					return
				default:
				}
				batch := make([]jetstream.Msg, 0, b.o.batch)
				linger := time.NewTimer(time.Second)
			collect:
				for len(batch) < b.o.batch {
					select {
					case m := <-in:
						batch = append(batch, m)
						if len(batch) == 1 {
							linger.Reset(b.o.linger)
						}
					case <-linger.C:
						break collect
					case <-all:
						break collect
					}
				}
				linger.Stop()
				if len(batch) == 0 {
					continue
				}
				msgs := make([]*nats.Msg, len(batch))
				for i, m := range batch {
					h := make(nats.Header, len(m.Headers()))
					for k, v := range m.Headers() {
						h[k] = v
					}
					h.Set(natsx.HeaderMsgID, "relay:"+h.Get(natsx.HeaderMsgID))
					msgs[i] = &nats.Msg{Subject: out, Data: m.Data(), Header: h}
				}
				if _, err := pub.PublishBatch(b.ctx, msgs); err != nil {
					fail(err)
					return
				}
				for _, m := range batch[:len(batch)-1] {
					if err := m.Ack(); err != nil {
						fail(err)
						return
					}
				}
				if err := batch[len(batch)-1].DoubleAck(b.ctx); err != nil {
					fail(err)
					return
				}
				if relayed.Add(int64(len(batch))) >= int64(n) {
					once.Do(func() { end = time.Now(); close(all) })
				}
			}
		}()
	}
	wg.Wait()
	d := end.Sub(start)
	close(finished)
	cc.Stop()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("raw relay: %w", err)
	}
	return d, b.js.DeleteConsumer(b.ctx, natsx.StreamSignals, name)
}

func (b *bench) matchedCount(pid string) (uint64, error) {
	st, err := b.js.Stream(b.ctx, natsx.StreamSignals)
	if err != nil {
		return 0, err
	}
	subject := natsx.SignalMatchedSubject(pid)
	info, err := st.Info(b.ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[subject], nil
}

func (b *bench) waitMatched(pid string, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := b.matchedCount(pid)
		if err != nil {
			return err
		}
		if c >= uint64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d signals matched after %s", c, n, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// warmSignals returns the generator of warm signals with ids prefix<i>.
func (b *bench) warmSignals(pid, prefix string, domains, emails []string) func(int) (*nats.Msg, error) {
	return func(i int) (*nats.Msg, error) {
		email := ""
		if i%4 == 0 {
			email = emails[(i/4)%len(emails)]
		}
		return signalMsg(b.ctx, pid, prefix+strconv.Itoa(i), domains[(i*7919)%len(domains)], email)
	}
}

// throughput measures warm matching in -rounds rounds, each on n/rounds fresh
// signals taken by the raw relay and by the matcher, in an order that
// alternates from round to round, so that a machine that speeds up or slows
// down during the run weighs on both. Each round runs a fresh matcher, as
// after a deploy: the mirror is in Redis, its in-memory answers start empty.
// Raw consumption is measured once, on the first round's signals, for
// context.
func (b *bench) throughput(pid string, domains, emails []string) error {
	rounds := max(1, b.o.rounds)
	size := func(r int) int { // n spread over the rounds
		if r < b.o.n%rounds {
			return b.o.n/rounds + 1
		}
		return b.o.n / rounds
	}
	fmt.Printf("warm-cache matching — %d signals in %d rounds over %d company domains (1 in 4 with a visitor email), %d companies mirrored\n",
		b.o.n, rounds, len(domains), b.o.companies)
	type result struct {
		n                  int
		relay, match       time.Duration
		relayUse, matchUse usage
		order              string
	}
	var res []result
	var hubspotCalls, lookupErrors, memoryHits int64 // over the matcher's rounds
	for r := range rounds {
		per := size(r)
		from, err := b.nextSeq()
		if err != nil {
			return err
		}
		if err := b.publishAll(per, b.warmSignals(pid, fmt.Sprintf("w%d-", r), domains, emails)); err != nil {
			return err
		}
		runtime.GC()
		if r == 0 {
			subject := natsx.SignalReceivedSubject(pid)
			rawPlain, err := b.rawConsume("bench-raw-plain", subject, per, 0)
			if err != nil {
				return err
			}
			rawNatsx, err := b.rawConsume("bench-raw-natsx", subject, per, b.o.workers)
			if err != nil {
				return err
			}
			b.rawPlain, b.rawNatsx = rate(per, rawPlain), rate(per, rawNatsx)
		}
		cur := result{n: per}
		relay := func() (err error) {
			before := processUsage()
			cur.relay, err = b.rawRelay(pid, per, from)
			cur.relayUse = processUsage().since(before)
			return err
		}
		match := func() (err error) {
			var st resolve.Stats
			before := processUsage()
			cur.match, st, err = b.matchRound(pipeline.ModeBatch, pid, per, r == rounds-1)
			cur.matchUse = processUsage().since(before)
			hubspotCalls += st.SearchCalls + st.BatchReadCalls
			lookupErrors += st.FetchErrors + st.RedisErrors
			memoryHits += st.WarmHits
			return err
		}
		steps := []func() error{relay, match}
		cur.order = "relay, matcher"
		if r%2 == 1 {
			steps, cur.order = []func() error{match, relay}, "matcher, relay"
		}
		for _, step := range steps {
			runtime.GC() // neither starts with the other's garbage
			if err := step(); err != nil {
				return err
			}
		}
		res = append(res, cur)
	}
	total := b.o.n
	matched, unmatched, err := b.countOutcomes(pid, total)
	if err != nil {
		return err
	}

	fmt.Printf("%-60s %12s %10s %10s\n", "phase", "signals/s", "vs plain", "vs natsx")
	row := func(name string, r float64) {
		fmt.Printf("%-60s %12.0f %10.2f %10.2f\n", name, r, r/b.rawPlain, r/b.rawNatsx)
	}
	row("raw: one plain pull consumer, async ack, no work (round 1)", b.rawPlain)
	row(fmt.Sprintf("raw: natsx.Consume, %d workers, double ack, no work (round 1)", b.o.workers), b.rawNatsx)
	var relayTotal, matchTotal time.Duration
	ratios := make([]float64, 0, len(res))
	fmt.Printf("\n%-6s %-15s %12s %10s %6s %17s %17s %18s %17s\n", "round", "order", "raw relay/s", "matcher/s", "ratio", "CPU µs/sig r / m", "server µs/sig r/m", "alloc B/sig r / m", "machine busy r/m")
	for i, r := range res {
		ratio := r.relay.Seconds() / r.match.Seconds()
		ratios = append(ratios, ratio)
		relayTotal += r.relay
		matchTotal += r.match
		perSignal := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.n) }
		alloc := func(u usage) float64 { return float64(u.alloc) / float64(r.n) }
		fmt.Printf("%-6d %-15s %12.0f %10.0f %6.2f %9.1f / %5.1f %9.1f / %5.1f %10.0f / %5.0f %10.0f%% / %2.0f%%\n", i+1, r.order, rate(r.n, r.relay), rate(r.n, r.match), ratio,
			perSignal(r.relayUse.cpu), perSignal(r.matchUse.cpu), perSignal(r.relayUse.server), perSignal(r.matchUse.server),
			alloc(r.relayUse), alloc(r.matchUse), r.relayUse.load(), r.matchUse.load())
	}
	slices.Sort(ratios)
	m := rate(total, matchTotal)
	fmt.Printf("  raw relay: consume, republish by %d as one atomic batch with the same headers, ack; %d in flight (the matcher's JetStream work, no matching)\n", b.o.batch, b.o.parallel)
	fmt.Printf("  matcher (batch mode): match + publish SignalMatched + ack, over all rounds: %.0f signals/s; raw relay %.0f; median ratio %.2f\n",
		m, rate(total, relayTotal), ratios[len(ratios)/2])
	fmt.Printf("  target ≥ 25,000 signals/s end to end: %s; %d matched, %d unmatched (match rate %.1f%%)\n",
		verdict(m >= 25_000), matched, unmatched, 100*float64(matched)/float64(matched+unmatched))
	fmt.Printf("  during the matcher's rounds: %d HubSpot calls, %d failed look-ups, %d answers from memory\n\n", hubspotCalls, lookupErrors, memoryHits)
	return nil
}

// usage is what has been spent so far: this process's CPU time (user and system) and
// bytes allocated on its heap (what drives the garbage collector's work), the NATS
// server's CPU time (its own process), and the whole machine's CPU time.
type usage struct {
	cpu   time.Duration
	alloc uint64
	// server is the CPU time of this process's children: the NATS server.
	server time.Duration
	// busy and total are the machine's CPU time (every process, every core) in
	// clock ticks from /proc/stat: busy/total is how loaded the two cores were.
	busy, total uint64
}

func processUsage() usage {
	var u usage
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		u.alloc = s[0].Value.Uint64()
	}
	u.busy, u.total = machineCPU()
	u.server = childrenCPU()
	return u
}

// childrenCPU is the CPU time (user and system) the running child processes of this
// one have used so far, from /proc (zero where there is none). The only child is the
// NATS server. /proc counts in clock ticks of 10 ms.
func childrenCPU() time.Duration {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var ticks uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			// Fields after the command name (which may hold spaces): utime and
			// stime are the 12th and 13th of them.
			_, rest, ok := strings.Cut(string(stat), ") ")
			f := strings.Fields(rest)
			if !ok || len(f) < 13 {
				continue
			}
			u, _ := strconv.ParseUint(f[11], 10, 64)
			s, _ := strconv.ParseUint(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// machineCPU reads the machine's busy and total CPU ticks from /proc/stat (zero
// where there is none): user, nice, system, irq, softirq and steal are busy;
// idle and iowait are not.
func machineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// load is the share of the machine's CPU time that was busy, in percent.
func (u usage) load() float64 {
	if u.total == 0 {
		return 0
	}
	return 100 * float64(u.busy) / float64(u.total)
}

// since is what was spent between before and u.
func (u usage) since(before usage) usage {
	return usage{cpu: u.cpu - before.cpu, alloc: u.alloc - before.alloc, server: u.server - before.server,
		busy: u.busy - before.busy, total: u.total - before.total}
}

// writeHeapProfile writes the heap profile (cumulative allocations included) to path,
// after a garbage collection: the profile counts allocations as of the last one.
func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// nextSeq is the stream sequence the next signal published will get.
func (b *bench) nextSeq() (uint64, error) {
	st, err := b.js.Stream(b.ctx, natsx.StreamSignals)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(b.ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq + 1, nil
}

// matchRound runs a fresh matcher with the given signals consumer until it has
// published n more SignalMatched for pid, and stops it.
func (b *bench) matchRound(mode, pid string, n int, profile bool) (time.Duration, resolve.Stats, error) {
	svc, err := b.service(mode)
	if err != nil {
		return 0, resolve.Stats{}, err
	}
	before, err := b.matchedCount(pid)
	if err != nil {
		return 0, resolve.Stats{}, err
	}
	// Heap profiles first: their collections stay outside the CPU profile (the
	// deferred one is written after the CPU profile stops).
	if profile && b.o.memProfile != "" {
		if err := writeHeapProfile(b.o.memProfile + ".base"); err != nil {
			return 0, resolve.Stats{}, err
		}
		defer func() {
			if err := writeHeapProfile(b.o.memProfile); err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
			}
		}()
	}
	if profile && b.o.cpuProfile != "" {
		f, err := os.Create(b.o.cpuProfile)
		if err != nil {
			return 0, resolve.Stats{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, resolve.Stats{}, err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	stop := b.start(svc)
	err = b.waitMatched(pid, int(before)+n, 30*time.Minute)
	d := time.Since(start)
	return d, svc.Resolver().Stats(), errors.Join(err, stop())
}

// start runs svc until the returned function stops it (and returns Run's error).
func (b *bench) start(svc *matcher.Service) func() error {
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// natsxMode runs the matcher with the natsx.Consume signals consumer over a fresh set
// of signals, for comparison with batch mode.
func (b *bench) natsxMode(pid string, domains, emails []string) error {
	if err := b.publishAll(b.o.natsxN, b.warmSignals(pid, "x", domains, emails)); err != nil {
		return err
	}
	d, _, err := b.matchRound(pipeline.ModeNatsx, pid, b.o.natsxN, false)
	if err != nil {
		return err
	}
	r := rate(b.o.natsxN, d)
	fmt.Printf("matcher (natsx mode: natsx.Consume, %d workers), %d signals: %.0f signals/s, %.2f vs plain, %.2f vs natsx\n",
		b.o.workers, b.o.natsxN, r, r/b.rawPlain, r/b.rawNatsx)
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// countOutcomes reads every SignalMatched of the portal and counts matched ones.
func (b *bench) countOutcomes(pid string, n int) (matched, unmatched int, err error) {
	cons, err := b.js.OrderedConsumer(b.ctx, natsx.StreamSignals, jetstream.OrderedConsumerConfig{FilterSubjects: []string{natsx.SignalMatchedSubject(pid)}})
	if err != nil {
		return 0, 0, err
	}
	for matched+unmatched < n {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, 0, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev signalsv1.SignalMatched
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				return 0, 0, err
			}
			if ev.GetCompany() != nil {
				matched++
			} else {
				unmatched++
			}
		}
		if got == 0 {
			return matched, unmatched, batch.Error()
		}
	}
	return matched, unmatched, nil
}

func (b *bench) latency(svc *matcher.Service, pid string, domains []string) error {
	cc, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	client := mappingv1.NewMappingServiceClient(cc)
	call := func(i int) (time.Duration, error) {
		start := time.Now()
		_, err := client.ResolveAccount(b.ctx, &mappingv1.ResolveAccountRequest{PortalId: pid,
			Account: &mappingv1.AccountQuery{Domain: domains[(i*104729)%len(domains)]}})
		return time.Since(start), err
	}
	for i := range 2000 { // warm the connection and the code paths
		if _, err := call(i); err != nil {
			return err
		}
	}
	fmt.Printf("ResolveAccount over gRPC, warm cache, %d calls per phase\n", b.o.rpcCalls)
	fmt.Printf("%-28s %10s %10s %10s %10s %10s\n", "callers", "calls/s", "p50", "p90", "p99", "max")
	for _, callers := range []int{1, 8} {
		lat := make([]time.Duration, b.o.rpcCalls)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		start := time.Now()
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(lat) {
						return
					}
					d, err := call(i)
					if err != nil {
						errs <- err
						return
					}
					lat[i] = d
				}
			}()
		}
		wg.Wait()
		total := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		fmt.Printf("%-28d %10.0f %10s %10s %10s %10s\n", callers, float64(len(lat))/total.Seconds(),
			q(0.50).Round(time.Microsecond), q(0.90).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
		if callers == 1 {
			fmt.Printf("  target p99 ≤ 1 ms (one caller): %s\n", verdict(q(0.99) <= time.Millisecond))
		}
	}
	fmt.Println()
	return nil
}

// coldStart publishes 1,000 signals with unseen domains for a portal never mirrored and
// counts the HubSpot calls the matcher makes for them.
func (b *bench) coldStart(pid string) error {
	p := b.portals[pid]
	var domains []string
	for _, id := range p.IDs(hubspottest.Companies) {
		props, _ := p.Object(hubspottest.Companies, id)
		if d := props["domain"]; d != "" && !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
		if len(domains) == 600 {
			break
		}
	}
	for i := len(domains); i < 1000; i++ {
		domains = append(domains, fmt.Sprintf("never-seen-%d.example.org", i))
	}
	p.ResetStats()
	start := time.Now()
	if err := b.publishAll(len(domains), func(i int) (*nats.Msg, error) {
		return signalMsg(b.ctx, pid, "c"+strconv.Itoa(i), domains[i], "")
	}); err != nil {
		return err
	}
	if err := b.waitMatched(pid, len(domains), 5*time.Minute); err != nil {
		return err
	}
	d := time.Since(start)
	st := p.Stats()
	fmt.Printf("cold start — 1,000 signals with unseen domains (600 of companies, 400 unknown), portal not mirrored\n")
	fmt.Printf("  HubSpot calls: %d (%d searches), against 1,000 for one search per signal: %s (target ≤ 12); all matched in %s\n",
		totalRequests(st), st.SearchCalls, verdict(totalRequests(st) <= 12), d.Round(time.Millisecond))
	return nil
}
