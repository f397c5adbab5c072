package main

import (
	"context"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/libs/service/servicetest"
)

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SB_SCORESYNC_MAPPING_BATCH": "5000", "SB_SCORESYNC_LOCK_TTL": "10ms"}
	err := run(t.Context(), func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "SB_SCORESYNC_MAPPING_BATCH") || !strings.Contains(err.Error(), "SB_SCORESYNC_LOCK_TTL") {
		t.Fatalf("err = %v, want both bad settings named", err)
	}
}

// TestRunServesUntilCancelled starts the whole process against an embedded NATS and Redis
// and stops it with its context, as SIGTERM does.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	admin := servicetest.FreeAddr(t)
	env := map[string]string{
		"SB_NATS_URL": srv.URL(), "SB_REDIS_URL": redistest.URL(t), "SB_LOG_LEVEL": "error",
		"SB_SCORESYNC_ADMIN_ADDR": admin, "SB_SCORESYNC_GRPC_ADDR": "127.0.0.1:0", "SB_MATCHER_ADDR": "127.0.0.1:1",
		"SB_HUBSPOT_BASE_URL": "http://127.0.0.1:1",
	}
	stop := servicetest.Serve(t, admin, func(ctx context.Context) error {
		return run(ctx, func(k string) string { return env[k] })
	})
	if err := stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
