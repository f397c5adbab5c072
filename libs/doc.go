// Package libs holds the code shared by every signalbridge service: the NATS
// JetStream contract (natsx), telemetry, gRPC and Redis plumbing, configuration,
// domain normalisation, portal configuration, the HubSpot client, and the
// generated protobuf contracts (gen).
package libs
