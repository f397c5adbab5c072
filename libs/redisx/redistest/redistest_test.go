package redistest_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
)

func TestPortalKeysAreDeletedAfterTheTest(t *testing.T) {
	t.Parallel()
	client := redistest.TestClient(t)
	var portal, other string
	t.Run("writer", func(t *testing.T) {
		portal = redistest.Portal(t, client)
		other = redistest.Portal(t, client)
		if portal == other {
			t.Fatalf("two calls gave the same portal %q", portal)
		}
		for i := range 3 {
			if err := client.Set(t.Context(), redisx.Key(portal, "k", fmt.Sprint(i)), i, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		}
		n, err := client.Exists(t.Context(), redisx.Key(portal, "k", "0"), redisx.Key(other, "k", "0")).Result()
		if err != nil || n != 1 {
			t.Fatalf("Exists = %d, %v; want 1 (portals are isolated)", n, err)
		}
	})
	keys, err := client.Keys(t.Context(), redisx.Key(portal, "*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("keys left after the test: %q", keys)
	}
}

// closedURL returns a redis URL nothing listens on.
func closedURL(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = lis.Close()
	return "redis://" + lis.Addr().String()
}

// Not parallel: it sets environment variables.
func TestFallsBackToMiniredisOutsideCI(t *testing.T) {
	t.Setenv("REDIS_URL", closedURL(t))
	t.Setenv("CI", "")
	rec := &recorder{TB: t}
	client := redistest.TestClient(rec)
	if rec.fatal != "" {
		t.Fatalf("fatal outside CI: %s", rec.fatal)
	}
	if !strings.Contains(rec.logs, "miniredis") {
		t.Errorf("no miniredis warning logged: %q", rec.logs)
	}
	if err := client.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("miniredis client: %v", err)
	}
}

// Not parallel: it sets environment variables.
func TestMissingRedisFailsUnderCI(t *testing.T) {
	url := closedURL(t)
	t.Setenv("REDIS_URL", url)
	t.Setenv("CI", "true")
	rec := &recorder{TB: t}
	if client := redistest.TestClient(rec); client != nil {
		t.Fatal("got a client under CI without Redis")
	}
	if !strings.Contains(rec.fatal, strings.TrimPrefix(url, "redis://")) {
		t.Fatalf("Fatalf message %q does not name the address", rec.fatal)
	}
}

// recorder captures Fatalf and Logf instead of ending the test.
type recorder struct {
	testing.TB
	fatal, logs string
}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal += fmt.Sprintf(format, args...) }
func (r *recorder) Logf(format string, args ...any)   { r.logs += fmt.Sprintf(format, args...) }
