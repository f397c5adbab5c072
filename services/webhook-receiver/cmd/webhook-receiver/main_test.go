package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

func TestSecretsFromEnvOrFile(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DIRECT": "from-env", "BOTH": "env-wins", "BOTH_FILE": "/s/both", "MOUNTED_FILE": "/s/mounted", "BLANK_FILE": "/s/blank", "GONE_FILE": "/s/gone"}
	files := map[string]string{"/s/both": "file", "/s/mounted": "  v1\n", "/s/blank": " \n"}
	reads := 0
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSecrets(func(k string) string { return env[k] },
		func(p string) ([]byte, error) {
			reads++
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}, func() time.Time { return now })
	cases := []struct {
		name, want string
		ok         bool
	}{
		{"DIRECT", "from-env", true}, {"BOTH", "env-wins", true}, {"MOUNTED", "v1", true},
		{"BLANK", "", false}, {"GONE", "", false}, {"UNSET", "", false},
	}
	for _, tc := range cases {
		if got, ok := s.lookup(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("lookup(%s) = %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	// A rotated file is picked up once the cached value is a minute old.
	files["/s/mounted"] = "v2"
	before := reads
	if got, _ := s.lookup("MOUNTED"); got != "v1" || reads != before {
		t.Fatalf("within the minute: %q after %d reads, want the cached v1", got, reads-before)
	}
	now = now.Add(secretFileTTL)
	if got, _ := s.lookup("MOUNTED"); got != "v2" {
		t.Fatalf("after a minute: %q, want v2", got)
	}
}

func TestEnsureSubscriptionsFlag(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	app := sb.AddApp(hubspottest.App{ClientSecret: "s", DeveloperAPIKey: "dev-key"})
	pc, err := portal.Parse(fmt.Appendf(nil, "portal_id: \"42\"\nname: p\nhubspot:\n  auth: { type: private_app, secret: T }\n  tier: starter\n  app_id: %d\n  webhook_secret: HS_SECRET\n", app))
	if err != nil {
		t.Fatal(err)
	}
	if err := portal.NewStore(kv).Put(ctx, pc); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SB_NATS_URL": srv.URL(), "SB_LOG_LEVEL": "error",
		"SB_WEBHOOK_HUBSPOT_BASE_URL": sb.URL, "SB_WEBHOOK_DEVELOPER_API_KEY": "dev-key",
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"-ensure-subscriptions"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	want := len(webhookrx.DesiredSubscriptions(pc))
	if !strings.Contains(out.String(), fmt.Sprintf("app %d: %d created, 0 activated, 0 paused, 0 already active", app, want)) {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"-ensure-subscriptions"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("app %d: 0 created, 0 activated, 0 paused, %d already active", app, want)) {
		t.Fatalf("second run output:\n%s", out.String())
	}
	delete(env, "SB_WEBHOOK_DEVELOPER_API_KEY")
	if err := run(ctx, []string{"-ensure-subscriptions"}, func(k string) string { return env[k] }, &out); err == nil || !strings.Contains(err.Error(), "DEVELOPER_API_KEY") {
		t.Fatalf("without a developer key: %v", err)
	}
	if err := run(ctx, []string{"-no-such-flag"}, func(k string) string { return env[k] }, &out); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("unknown flag: %v", err)
	}
}
