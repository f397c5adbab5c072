package hubspot_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

var benchWindow = flag.Duration("hubspot.benchwindow", 20*time.Second,
	"how long BenchmarkGovernedBatchUpdate saturates the portal per iteration")

// BenchmarkGovernedBatchUpdate runs four clients, each with its own quota
// governor (four replicas sharing Redis), batch-updating one sandbox portal
// at a scaled-up tier of 1000 requests / 10 s, while an interactive caller
// on the same portal makes one call per second. It reports bulk records/s
// against the ceiling (100 records × 100 requests/s), HubSpot 429s, and the
// interactive calls' latency (governor wait + request).
func BenchmarkGovernedBatchUpdate(b *testing.B) {
	const (
		burst     = 1000
		interval  = 10 * time.Second
		replicas  = 4
		workers   = 4 // per replica
		batchSize = hubspot.MaxBatchSize
	)
	srv, p := sandbox(b, hubspottest.Options{}, hubspottest.PortalOptions{
		Tier: hubspottest.TierEnterprise, Burst: burst, Interval: interval, Daily: 100_000_000,
	})
	recs := make([]map[string]string, 2000)
	for i := range recs {
		recs[i] = map[string]string{"name": "bench-" + strconv.Itoa(i)}
	}
	ids := p.SeedCompanies(recs...)
	rdb := testRedis(b)
	lim := quota.Limits{Burst: burst, Interval: interval, Daily: 100_000_000, DailyReserve: 1_000_000}
	ceiling := float64(burst) / interval.Seconds() * batchSize

	for b.Loop() {
		prefix := uniquePrefix(b)
		clients := make([]*hubspot.Client, replicas)
		for i := range clients {
			g, err := quota.New(quota.Config{Redis: rdb, KeyPrefix: prefix, Portals: map[int64]quota.Limits{p.ID(): lim},
				BurstFraction: 0.015, Logger: quietLogger(), ExpectedReplicas: replicas})
			if err != nil {
				b.Fatal(err)
			}
			clients[i] = newClient(b, srv, p, func(c *hubspot.Config) { c.Governor = g; c.MaxRetries = 3 })
		}
		p.ResetStats()
		ctx, cancel := context.WithTimeout(context.Background(), *benchWindow)
		var bulkCalls, bulkFailed atomic.Int64
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for r, c := range clients {
			for w := range workers {
				wg.Go(func() {
					bctx := hubspot.WithClass(ctx, quota.Bulk)
					for ctx.Err() == nil {
						n := int(next.Add(1))
						inputs := make([]hubspot.BatchInput, batchSize)
						for k := range inputs {
							id := ids[(n*batchSize+k)%len(ids)]
							inputs[k] = hubspot.BatchInput{ID: id, Properties: map[string]string{"city": fmt.Sprintf("r%dw%d-%d", r, w, n)}}
						}
						_, err := c.BatchUpdate(bctx, hubspot.Companies, inputs)
						switch {
						case err == nil:
							bulkCalls.Add(1)
						case ctx.Err() != nil:
						default:
							bulkFailed.Add(1)
						}
					}
				})
			}
		}
		var waits []time.Duration
		var interactiveErrs int
		wg.Go(func() {
			ictx := hubspot.WithClass(ctx, quota.Interactive)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				t0 := time.Now()
				_, err := clients[i%replicas].Get(ictx, hubspot.Companies, ids[i%len(ids)], hubspot.GetOptions{Properties: []string{"name"}})
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						interactiveErrs++
					}
					continue
				}
				waits = append(waits, time.Since(t0))
			}
		})
		wg.Wait()
		cancel()
		elapsed := time.Since(start)
		st := p.Stats()

		recordsPerSec := float64(bulkCalls.Load()*batchSize) / elapsed.Seconds()
		slices.Sort(waits)
		p99 := time.Duration(0)
		if len(waits) > 0 {
			p99 = waits[min(len(waits)-1, len(waits)*99/100)]
		}
		b.ReportMetric(recordsPerSec, "records/s")
		b.ReportMetric(100*recordsPerSec/ceiling, "%ceiling")
		b.ReportMetric(float64(st.Total429()), "429s")
		b.ReportMetric(float64(p99.Milliseconds()), "interactive-p99-ms")
		b.Logf("bulk %.0f records/s = %.1f%% of the %.0f records/s ceiling (%d calls, %d failed) | HubSpot 429s: %d | interactive p99 %s over %d calls (%d errors)",
			recordsPerSec, 100*recordsPerSec/ceiling, ceiling, bulkCalls.Load(), bulkFailed.Load(), st.Total429(), p99, len(waits), interactiveErrs)
	}
}
