package natsx

import (
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// Message headers.
const (
	// HeaderMsgID is JetStream's de-duplication id; ours is the event id,
	// deterministic from business keys.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderEventType is the full protobuf name of the payload's message type.
	HeaderEventType = "Sb-Event-Type"
	// HeaderContentType is the payload's media type.
	HeaderContentType = "Content-Type"
	// ContentTypeProtobuf is the media type of a binary protobuf payload.
	ContentTypeProtobuf = "application/x-protobuf"
)

// Headers added to a message forwarded to the DLQ stream. The original
// payload and headers are kept (except JetStream's own Nats-* headers, whose
// meaning is tied to the original publish).
const (
	// HeaderDLQReason says, for a person, why the message was dead-lettered.
	HeaderDLQReason = "Sb-Dlq-Reason"
	// HeaderDLQSubject is the subject the message was originally stored on.
	HeaderDLQSubject = "Sb-Dlq-Subject"
	// HeaderDLQStream is the stream the message was stored in.
	HeaderDLQStream = "Sb-Dlq-Stream"
	// HeaderDLQStreamSeq is its sequence in that stream.
	HeaderDLQStreamSeq = "Sb-Dlq-Stream-Seq"
	// HeaderDLQConsumer is the durable consumer that gave up on it.
	HeaderDLQConsumer = "Sb-Dlq-Consumer"
	// HeaderDLQDeliveries is how many times it had been delivered.
	HeaderDLQDeliveries = "Sb-Dlq-Deliveries"
	// HeaderDLQMsgID is the original Nats-Msg-Id (the DLQ copy gets its own).
	HeaderDLQMsgID = "Sb-Dlq-Msg-Id"
)

// Headers of JetStream atomic batch publishing (nats-server 2.12+).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// HeaderCarrier adapts nats.Header to propagation.TextMapCarrier.
//
// nats.Header is case-sensitive. otel's propagation.HeaderCarrier goes
// through http.Header and would write "Traceparent"; this carrier keeps the
// W3C lower-case keys ("traceparent", "tracestate") that non-Go clients and
// the nats CLI use, and reads keys case-insensitively so either spelling is
// found.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, matched exactly, else case-insensitively.
func (c HeaderCarrier) Get(key string) string {
	if vs := c[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range c {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// Set stores value under key exactly as spelled, replacing any value stored
// under another spelling of the same key.
func (c HeaderCarrier) Set(key, value string) {
	setShared(nats.Header(c), key, []string{value})
}

// Keys lists the header keys, sorted.
func (c HeaderCarrier) Keys() []string {
	return slices.Sorted(maps.Keys(c))
}

// cloneHeader copies h deeply enough that setting, adding or deleting keys on
// the copy leaves h untouched. A nil h gives an empty header. The copy shares
// the value slices, clipped to their length so that an Add on either side
// reallocates instead of writing into the other's array (nobody here writes
// a value in place); this saves an allocation per key on every published
// message.
func cloneHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+4)
	for k, vs := range h {
		out[k] = slices.Clip(vs)
	}
	return out
}

// withoutNatsHeaders copies h without the JetStream control headers
// (Nats-*), which would change how a republished copy is stored: a batch id
// would make it part of an atomic batch, expectations could fail, a TTL
// could expire it.
func withoutNatsHeaders(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+8)
	for k, vs := range h {
		if len(k) >= 5 && strings.EqualFold(k[:5], "nats-") {
			continue
		}
		out[k] = slices.Clone(vs)
	}
	return out
}
