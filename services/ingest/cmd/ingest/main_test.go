package main

import (
	"context"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/service/servicetest"
)

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SB_NATS_PROVISION": "maybe"}
	err := run(t.Context(), func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "SB_NATS_PROVISION") {
		t.Fatalf("err = %v, want the bad setting named", err)
	}
}

// TestRunServesUntilCancelled starts the whole process against an embedded NATS and stops
// it with its context, as SIGTERM does.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	admin := servicetest.FreeAddr(t)
	env := map[string]string{
		"SB_NATS_URL": srv.URL(), "SB_LOG_LEVEL": "error", "SB_INGEST_ADMIN_ADDR": admin,
		"SB_INGEST_HTTP_ADDR": "127.0.0.1:0", "SB_INGEST_GRPC_ADDR": "127.0.0.1:0",
	}
	stop := servicetest.Serve(t, admin, func(ctx context.Context) error {
		return run(ctx, func(k string) string { return env[k] })
	})
	if err := stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
