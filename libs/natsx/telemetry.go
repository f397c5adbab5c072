package natsx

import (
	"go.opentelemetry.io/otel/attribute"
)

// instrumentationName names the tracer of this package.
const instrumentationName = "github.com/signalbridge/signalbridge/libs/natsx"

// Span attribute keys. The OpenTelemetry messaging conventions are still in
// Development, so every name we use lives here.
const (
	attrMessagingSystem       = attribute.Key("messaging.system")
	attrMessagingOperation    = attribute.Key("messaging.operation.type")
	attrMessagingDestination  = attribute.Key("messaging.destination.name")
	attrMessagingSubject      = attribute.Key("messaging.destination.subject") // concrete subject, ours
	attrMessagingMessageID    = attribute.Key("messaging.message.id")
	attrMessagingBatchCount   = attribute.Key("messaging.batch.message_count")
	attrMessagingConsumer     = attribute.Key("messaging.consumer.group.name")
	attrMessagingDeliveries   = attribute.Key("messaging.nats.delivery_count")  // ours
	attrMessagingStreamSeq    = attribute.Key("messaging.nats.stream_sequence") // ours
	attrMessagingStream       = attribute.Key("messaging.nats.stream")          // ours
	attrPortal                = attribute.Key("signalbridge.portal_id")
	attrBatchDuplicates       = attribute.Key("signalbridge.batch.duplicates")
	attrBatchFallback         = attribute.Key("signalbridge.batch.fallback")
	messagingSystemNATS       = "nats"
	messagingOperationSend    = "send"
	messagingOperationProcess = "process"
)

// subjectAttrs are the attributes that describe a subject.
func subjectAttrs(subject string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attrMessagingSystem.String(messagingSystemNATS),
		attrMessagingDestination.String(SubjectTemplate(subject)),
		attrMessagingSubject.String(subject),
	}
	if p := PortalOf(subject); p != "" {
		attrs = append(attrs, attrPortal.String(p))
	}
	return attrs
}
