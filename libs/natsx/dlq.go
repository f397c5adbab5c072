package natsx

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReasonMaxDeliveries is the Sb-Dlq-Reason of messages forwarded by
// ForwardMaxDeliveries.
const ReasonMaxDeliveries = "max deliveries exceeded"

// maxDeliveriesAdvisoryPrefix is the subject prefix of the server's advisory
// for a message that exhausted its consumer's MaxDeliver
// ($JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>).
const maxDeliveriesAdvisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// forwardAttempts bounds how often the forwarder tries one dead letter.
const forwardAttempts = 5

// DLQMsgID is the Nats-Msg-Id of the dead letter of stream's message seq:
// "dlq:<stream>:<seq>", so forwarding the same message twice stores it once.
func DLQMsgID(stream string, seq uint64) string {
	return "dlq:" + stream + ":" + strconv.FormatUint(seq, 10)
}

// deadLetter is a message on its way to the DLQ stream.
type deadLetter struct {
	stream, consumer, subject string
	seq, deliveries           uint64
	header                    nats.Header
	data                      []byte
	reason                    string
}

// deadLetterMsg copies m, a delivery of consumer durable that failed for
// good with cause, to the DLQ and terminates it. On error nothing was
// terminated: the caller naks m, so it is retried and dead-lettered on a
// later delivery.
func deadLetterMsg(ctx context.Context, js jetstream.JetStream, durable string, m jetstream.Msg, md *jetstream.MsgMetadata, cause error, log *slog.Logger) error {
	reason := oneLine(cause.Error(), maxReasonLen)
	dl := deadLetter{
		stream: md.Stream, consumer: durable, subject: m.Subject(), seq: md.Sequence.Stream,
		deliveries: md.NumDelivered, header: m.Headers(), data: m.Data(), reason: reason,
	}
	if err := publishDeadLetter(ctx, js, dl); err != nil {
		return err
	}
	log.Warn("permanent failure: message dead-lettered", "err", cause, "dlq_subject", DLQSubject(md.Stream, durable))
	if err := m.TermWithReason(oneLine(reason, 256)); err != nil {
		log.Warn("term failed", "err", err)
	}
	return nil
}

// publishDeadLetter publishes dl to dlq.<stream>.<consumer> and waits for the
// acknowledgement. The copy keeps the payload and headers (minus Nats-*
// control headers; the original Nats-Msg-Id goes to Sb-Dlq-Msg-Id).
func publishDeadLetter(ctx context.Context, js jetstream.JetStream, dl deadLetter) error {
	ctx, cancel := context.WithTimeout(ctx, dlqPublishTimeout)
	defer cancel()
	h := withoutNatsHeaders(dl.header)
	if id := dl.header.Get(HeaderMsgID); id != "" {
		h.Set(HeaderDLQMsgID, id)
	}
	h.Set(HeaderMsgID, DLQMsgID(dl.stream, dl.seq))
	h.Set(HeaderDLQReason, oneLine(dl.reason, maxReasonLen))
	h.Set(HeaderDLQSubject, dl.subject)
	h.Set(HeaderDLQStream, dl.stream)
	h.Set(HeaderDLQStreamSeq, strconv.FormatUint(dl.seq, 10))
	h.Set(HeaderDLQConsumer, dl.consumer)
	h.Set(HeaderDLQDeliveries, strconv.FormatUint(dl.deliveries, 10))
	subject := DLQSubject(dl.stream, dl.consumer)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: dl.data}); err != nil {
		return classify(ctx, fmt.Sprintf("natsx: dead-letter %s seq %d to %s", dl.stream, dl.seq, subject), err)
	}
	return nil
}

// maxDeliveriesAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver event we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// ForwardMaxDeliveries dead-letters the messages that durable (a consumer
// on stream) gave up on after MaxDeliver deliveries: it listens to the
// server's MAX_DELIVERIES advisory, reads the message by sequence and
// publishes it to dlq.<stream>.<durable> with reason "max deliveries
// exceeded" and Nats-Msg-Id dlq:<stream>:<seq>.
//
// Advisories are core NATS messages (at most once): run the forwarder
// wherever the consumer runs, for as long as it runs. Several replicas may
// each forward the same message; the msg id makes the copies one. It runs
// until stop is called or ctx ends.
func ForwardMaxDeliveries(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, stream, durable string, logger *slog.Logger) (stop func(), err error) {
	if err := ValidToken(stream); err != nil {
		return nil, fmt.Errorf("natsx: forward max deliveries: stream: %w", err)
	}
	if err := ValidToken(durable); err != nil {
		return nil, fmt.Errorf("natsx: forward max deliveries: durable: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("stream", stream, "consumer", durable, "component", "dlq-forwarder")
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, classify(ctx, fmt.Sprintf("natsx: forward max deliveries: stream %q", stream), err)
	}
	base := context.WithoutCancel(ctx)

	forward := func(msg *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(msg.Data, &adv); err != nil || adv.StreamSeq == 0 {
			log.Error("unreadable max-deliveries advisory", "err", err, "data", string(msg.Data))
			return
		}
		if err := forwardWithRetry(base, ctx, js, st, adv, durable, stream); err != nil {
			log.Error("forwarding to the DLQ failed; message stays in its stream", "stream_seq", adv.StreamSeq, "err", err)
			return
		}
		log.Warn("message exceeded max deliveries: dead-lettered", "stream_seq", adv.StreamSeq, "deliveries", adv.Deliveries)
	}
	sub, err := nc.Subscribe(maxDeliveriesAdvisoryPrefix+stream+"."+durable, forward)
	if err != nil {
		return nil, fmt.Errorf("natsx: forward max deliveries for %s/%s: subscribe: %w", stream, durable, err)
	}
	// Make sure the server has the subscription before we return.
	fctx, fcancel := context.WithTimeout(ctx, dlqPublishTimeout)
	err = nc.FlushWithContext(fctx)
	fcancel()
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, classify(ctx, fmt.Sprintf("natsx: forward max deliveries for %s/%s: flush", stream, durable), err)
	}

	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			if err := sub.Unsubscribe(); err != nil && nc.Status() != nats.CLOSED {
				log.Warn("unsubscribe failed", "err", err)
			}
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}

// forwardWithRetry reads the message and dead-letters it, retrying passing
// failures (NATS unavailable) a few times while ctx lasts.
func forwardWithRetry(base, ctx context.Context, js jetstream.JetStream, st jetstream.Stream, adv maxDeliveriesAdvisory, durable, stream string) error {
	wait := 500 * time.Millisecond
	var err error
	for attempt := 1; attempt <= forwardAttempts; attempt++ {
		if err = forwardOne(base, js, st, adv, durable, stream); err == nil {
			return nil
		}
		if attempt == forwardAttempts || !isUnavailable(base, err) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (stopped: %w)", err, ctx.Err())
		}
		wait *= 2
	}
	return err
}

func forwardOne(base context.Context, js jetstream.JetStream, st jetstream.Stream, adv maxDeliveriesAdvisory, durable, stream string) error {
	ctx, cancel := context.WithTimeout(base, dlqPublishTimeout)
	defer cancel()
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return classify(ctx, fmt.Sprintf("natsx: get %s seq %d", stream, adv.StreamSeq), err)
	}
	return publishDeadLetter(ctx, js, deadLetter{
		stream: stream, consumer: durable, subject: raw.Subject, seq: raw.Sequence,
		deliveries: adv.Deliveries, header: raw.Header, data: raw.Data, reason: ReasonMaxDeliveries,
	})
}

// oneLine makes s fit a header value: no CR/LF, at most n bytes (cut at a
// rune boundary).
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
