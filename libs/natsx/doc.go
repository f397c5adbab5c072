// Package natsx is the platform's one contract with NATS JetStream: how to
// connect, the streams and KV buckets (Topology, Provision), subject names
// and headers, publishing (NewMsg, Publisher with atomic batches) and
// consuming (Consume with its ack / nak / dead-letter rules, and
// ForwardMaxDeliveries).
//
// Durability: an acknowledgement from our servers means the message is on
// disk (sync always); request-scoped batches go out as JetStream atomic
// batches so that costs one fsync per batch. See design/durability.md.
package natsx
