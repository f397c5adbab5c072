// Package telemetrytest reads what tests recorded through an OpenTelemetry SDK
// metric reader (sdkmetric.NewManualReader).
package telemetrytest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Int64 sums the points of the int64 counter or gauge name whose attributes
// include attrs; 0 when it has none. A metric of that name of another kind
// fails the test.
func Int64(t testing.TB, r sdkmetric.Reader, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var total int64
	for _, m := range collect(t, r, name) {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			total += sumValues(d.DataPoints, attrs)
		case metricdata.Gauge[int64]:
			total += sumValues(d.DataPoints, attrs)
		default:
			t.Fatalf("telemetrytest: %s is %T, not an int64 counter or gauge", name, m.Data)
		}
	}
	return total
}

// HistogramCount is the number of recordings of the histogram name (int64 or
// float64) whose attributes include attrs. A metric of that name of another
// kind fails the test.
func HistogramCount(t testing.TB, r sdkmetric.Reader, name string, attrs ...attribute.KeyValue) uint64 {
	t.Helper()
	var n uint64
	for _, m := range collect(t, r, name) {
		switch d := m.Data.(type) {
		case metricdata.Histogram[int64]:
			n += sumCounts(d.DataPoints, attrs)
		case metricdata.Histogram[float64]:
			n += sumCounts(d.DataPoints, attrs)
		default:
			t.Fatalf("telemetrytest: %s is %T, not a histogram", name, m.Data)
		}
	}
	return n
}

// sumValues adds the values of the points whose attributes include attrs.
func sumValues(dps []metricdata.DataPoint[int64], attrs []attribute.KeyValue) int64 {
	var total int64
	for _, dp := range dps {
		if has(dp.Attributes, attrs) {
			total += dp.Value
		}
	}
	return total
}

// sumCounts adds the recording counts of the histogram points whose
// attributes include attrs.
func sumCounts[N int64 | float64](dps []metricdata.HistogramDataPoint[N], attrs []attribute.KeyValue) uint64 {
	var n uint64
	for _, dp := range dps {
		if has(dp.Attributes, attrs) {
			n += dp.Count
		}
	}
	return n
}

// collect returns the metrics named name that r holds now.
func collect(t testing.TB, r sdkmetric.Reader, name string) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("telemetrytest: collect: %v", err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				out = append(out, m)
			}
		}
	}
	return out
}

func has(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}
