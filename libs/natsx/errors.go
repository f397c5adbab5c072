package natsx

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrUnavailable means JetStream could not be reached or did not answer
	// in time: no connection, no responders, a timeout, or the server is
	// overloaded. Retrying later may succeed; HTTP edges answer 503.
	ErrUnavailable = errors.New("jetstream unavailable")

	// ErrRejected means JetStream answered and refused the request (the
	// wrapped *jetstream.APIError says why). Retrying the same input will
	// fail the same way.
	ErrRejected = errors.New("jetstream rejected the request")

	// ErrInvalidMsg means a message given to NewMsg, Publish or PublishBatch
	// is unusable (nil, no subject, no Nats-Msg-Id where one is required).
	ErrInvalidMsg = errors.New("invalid message")

	// ErrBatchTooLarge means PublishBatch got more than MaxBatchSize messages.
	ErrBatchTooLarge = errors.New("batch too large")

	// ErrPermanent marks a handler error that retrying cannot fix: Consume
	// dead-letters the message instead of redelivering it.
	ErrPermanent = errors.New("permanent failure")
)

// errDisconnected is the cancel cause used when the connection drops while a
// publish waits for its acknowledgement.
var errDisconnected = errors.New("nats connection lost")

// JetStream API error codes this package acts on (nats-server
// server/errors.json).
const (
	codeDuplicateInProcess   jetstream.ErrorCode = 10158 // a publish with the same msg id is still being stored
	codeTooManyRequests      jetstream.ErrorCode = 10167 // stream ingest queue full
	codeBatchIncomplete      jetstream.ErrorCode = 10176 // atomic batch missing a message or abandoned
	codeBatchDuplicateMsgID  jetstream.ErrorCode = 10201 // atomic batch contains a msg id already stored
	codeBatchTooManyInflight jetstream.ErrorCode = 10210 // too many atomic batches in flight
)

// permanentError marks err as permanent while keeping it in the chain.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Permanent marks err as permanent (see ErrPermanent). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err is, or wraps, ErrPermanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// classify wraps err from a publish with the matching sentinel. ctx is the
// context the call ran under; a disconnect cancels it with errDisconnected.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRejected) || errors.Is(err, ErrInvalidMsg) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
	}
	if isUnavailable(ctx, err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w: %w", op, ErrRejected, err)
	}
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) || errors.Is(err, nats.ErrInvalidMsg) {
		return fmt.Errorf("%s: %w: %w", op, ErrInvalidMsg, err)
	}
	// Anything else (I/O errors, a malformed ack) leaves the outcome
	// unknown; the caller should retry, so it counts as unavailable.
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

func isUnavailable(ctx context.Context, err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, errDisconnected),
		errors.Is(context.Cause(ctx), errDisconnected),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrStaleConnection),
		errors.Is(err, nats.ErrInvalidConnection),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeTooManyRequests, codeBatchTooManyInflight, codeDuplicateInProcess:
			return true
		}
		return apiErr.Code == 503
	}
	return false
}
