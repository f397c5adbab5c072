// Package redistest gives tests a Redis client: the real server named by
// REDIS_URL (default redis://127.0.0.1:6379/0) when it answers; otherwise
// miniredis with a warning, unless CI is set, when a missing server fails the
// test. Tests share the server, so isolate them with Portal, never with
// FLUSHDB or FLUSHALL.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/redisx"
)

// testTimeout replaces the production read and write timeouts, which a
// loaded test machine can exceed.
const testTimeout = 5 * time.Second

// URL returns the URL of a Redis that answers, following the package rules.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = redisx.DefaultURL
	}
	c, err := redisx.New(t.Context(), redisx.Config{URL: url, ReadTimeout: testTimeout, WriteTimeout: testTimeout})
	if err == nil {
		_ = c.Close()
		return url
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redistest: CI is set and no Redis answers: %v", err)
		return ""
	}
	t.Logf("redistest: WARNING: no Redis answers (%v); using miniredis, which only approximates Redis", err)
	return "redis://" + miniredis.RunT(t).Addr()
}

// TestClient returns a client for URL(t), closed when the test ends.
func TestClient(t testing.TB) *redis.Client {
	t.Helper()
	url := URL(t)
	if url == "" {
		return nil // t.Fatalf was called
	}
	c, err := redisx.New(t.Context(), redisx.Config{URL: url, ReadTimeout: testTimeout, WriteTimeout: testTimeout})
	if err != nil {
		t.Fatalf("redistest: %v", err)
		return nil
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Portal returns a portal id unique to this call, for keys built with
// redisx.Key. When the test ends every "sb:{<portal>}:*" key is deleted.
func Portal(t testing.TB, c *redis.Client) string {
	t.Helper()
	portal := "test-" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := DeleteKeys(ctx, c, redisx.Key(portal, "*")); err != nil {
			t.Errorf("redistest: delete keys of portal %s: %v", portal, err)
		}
	})
	return portal
}

// DeleteKeys deletes the keys matching the SCAN pattern.
func DeleteKeys(ctx context.Context, c *redis.Client, pattern string) error {
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.Unlink(ctx, batch...).Err()
	}
	return nil
}
