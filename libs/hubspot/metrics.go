package hubspot

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

// meterName is the instrumentation scope of the client's metrics.
const meterName = "github.com/signalbridge/signalbridge/libs/hubspot"

// clientMetrics are the client's instruments. The operation names a call
// ("objects.batch.update"), never a URL, so the series stay few.
type clientMetrics struct {
	calls       metric.Int64Counter     // finished calls by op and outcome
	duration    metric.Float64Histogram // a call's whole time: quota waits, attempts, retries
	retries     metric.Int64Counter     // attempts after the first, by op and status
	rateLimited metric.Int64Counter     // 429s by policy and portal
	quotaWait   metric.Float64Histogram // time spent waiting for the governor, by class
}

func newClientMetrics(mp metric.MeterProvider) (*clientMetrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	var cm clientMetrics
	var err, e error
	cm.calls, e = m.Int64Counter("signalbridge.hubspot.calls",
		metric.WithDescription("HubSpot API calls finished, by operation and outcome (ok or the HTTP status / error class of the last attempt)"))
	err = errors.Join(err, e)
	cm.duration, e = m.Float64Histogram("signalbridge.hubspot.call.duration", metric.WithUnit("s"),
		metric.WithDescription("time of a HubSpot API call, including quota waits and retries"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	err = errors.Join(err, e)
	cm.retries, e = m.Int64Counter("signalbridge.hubspot.retries",
		metric.WithDescription("HubSpot API attempts retried, by operation and the status that caused the retry (0: network error)"))
	err = errors.Join(err, e)
	cm.rateLimited, e = m.Int64Counter("signalbridge.hubspot.rate_limited",
		metric.WithDescription("429 responses from HubSpot, by policy (TEN_SECONDLY_ROLLING, SECONDLY, DAILY) and portal"))
	err = errors.Join(err, e)
	cm.quotaWait, e = m.Float64Histogram("signalbridge.hubspot.quota.wait", metric.WithUnit("s"),
		metric.WithDescription("time a HubSpot call waited for the portal's quota governor, by priority class"),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	return &cm, nil
}

// finished records a call's outcome and duration.
func (m *clientMetrics) finished(ctx context.Context, op string, began time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = outcomeOf(err)
	}
	attrs := metric.WithAttributes(attribute.String("hubspot.op", op), attribute.String("outcome", outcome))
	m.calls.Add(ctx, 1, attrs)
	m.duration.Record(ctx, time.Since(began).Seconds(), attrs)
}

// outcomeOf names an error for the outcome attribute: the HTTP status code,
// "daily_limit", "canceled" or "error".
func outcomeOf(err error) string {
	var he *Error
	switch {
	case errors.As(err, &he):
		return strconv.Itoa(he.StatusCode)
	case errors.Is(err, quota.ErrDailyLimit):
		return "daily_limit"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

func (m *clientMetrics) retried(ctx context.Context, op string, err error) {
	status := 0
	var he *Error
	if errors.As(err, &he) {
		status = he.StatusCode
	}
	m.retries.Add(ctx, 1, metric.WithAttributes(attribute.String("hubspot.op", op), attribute.Int("http.response.status_code", status)))
}

func (m *clientMetrics) limited(ctx context.Context, portal int64, policy string) {
	if policy == "" {
		policy = "unknown"
	}
	m.rateLimited.Add(ctx, 1, metric.WithAttributes(attribute.String("hubspot.policy", policy), attribute.Int64("hubspot.portal_id", portal)))
}

func (m *clientMetrics) waited(ctx context.Context, class quota.Class, d time.Duration) {
	m.quotaWait.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("hubspot.quota.class", class.String())))
}
