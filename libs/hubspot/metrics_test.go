package hubspot_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

// counterValues sums an Int64 counter's points by the value of one attribute.
func counterValues(t *testing.T, rm metricdata.ResourceMetrics, name, key string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want a Sum[int64]", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key(key))
				out[v.String()] += dp.Value
			}
		}
	}
	return out
}

func histogramCount(rm metricdata.ResourceMetrics, name string) uint64 {
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					n += dp.Count
				}
			}
		}
	}
	return n
}

func TestMetrics_CallsRetriesRateLimitsAndQuotaWaits(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{Burst: 100, Interval: time.Second})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	gov := newGovernor(t, testRedis(t), uniquePrefix(t), p.ID(), quota.Limits{Burst: 100, Interval: time.Second, SearchPerSecond: 5})
	c := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.MeterProvider = mp; cfg.Governor = gov })
	ids := p.SeedCompanies(map[string]string{"name": "x"})
	ctx := testCtx(t)

	// One call through a 503, one through a 429 (both retried), one for a
	// record that does not exist.
	p.Faults(hubspottest.Faults{NextErrors: 1, ErrorStatus: 503})
	if _, err := c.BatchUpdate(ctx, hubspot.Companies, []hubspot.BatchInput{{ID: ids[0], Properties: map[string]string{"city": "Graz"}}}); err != nil {
		t.Fatalf("BatchUpdate after one 503: %v", err)
	}
	p.Faults(hubspottest.Faults{Next429: 1})
	if _, err := c.BatchUpdate(ctx, hubspot.Companies, []hubspot.BatchInput{{ID: ids[0], Properties: map[string]string{"city": "Linz"}}}); err != nil {
		t.Fatalf("BatchUpdate after one 429: %v", err)
	}
	if _, err := c.Get(ctx, hubspot.Companies, "999999999", hubspot.GetOptions{}); err == nil {
		t.Fatal("Get of a missing company succeeded")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	calls := counterValues(t, rm, "signalbridge.hubspot.calls", "outcome")
	if calls["ok"] != 2 || calls["404"] != 1 {
		t.Errorf("calls by outcome = %v, want ok 2 and 404 1", calls)
	}
	retries := counterValues(t, rm, "signalbridge.hubspot.retries", "http.response.status_code")
	if retries["503"] != 1 || retries["429"] != 1 {
		t.Errorf("retries by status = %v, want 503 1 and 429 1", retries)
	}
	limited := counterValues(t, rm, "signalbridge.hubspot.rate_limited", "hubspot.policy")
	if limited["TEN_SECONDLY_ROLLING"] != 1 {
		t.Errorf("429s by policy = %v, want TEN_SECONDLY_ROLLING 1", limited)
	}
	if n := histogramCount(rm, "signalbridge.hubspot.call.duration"); n != 3 {
		t.Errorf("call durations recorded = %d, want 3", n)
	}
	// Five attempts went through the governor: 2 + 2 + 1.
	if n := histogramCount(rm, "signalbridge.hubspot.quota.wait"); n != 5 {
		t.Errorf("quota waits recorded = %d, want 5", n)
	}
}
