package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/config"
)

// env returns a getenv backed by a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

type natsBlock struct {
	URL    string        `env:"URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL"`
	Token  config.Secret `env:"TOKEN"`
	Stream string        `env:"STREAM"`
}

type shared struct {
	LogLevel slog.Level `env:"LOG_LEVEL" default:"info"`
}

type kinds struct {
	shared
	Addr     string        `env:"HTTP_ADDR" default:":8080" desc:"listen address"`
	Token    config.Secret `env:"TOKEN" required:"true"`
	Debug    bool          `env:"DEBUG"`
	Workers  int           `env:"WORKERS" default:"4"`
	MaxBytes int64         `env:"MAX_BYTES"`
	Port     uint16        `env:"PORT"`
	Ratio    float64       `env:"RATIO"`
	Timeout  time.Duration `env:"TIMEOUT" default:"5s"`
	Portals  []string      `env:"PORTALS"`
	IP       netip.Addr    `env:"IP"`
	NATS     natsBlock     `env:"NATS"`
	Ignored  string
	Skipped  string `env:"-"`
}

func TestLoadFillsEveryKind(t *testing.T) {
	t.Parallel()
	var got kinds
	err := config.Load("SB_INGEST", env(map[string]string{
		"SB_INGEST_TOKEN":      "s3cret",
		"SB_INGEST_DEBUG":      "true",
		"SB_INGEST_WORKERS":    "16",
		"SB_INGEST_MAX_BYTES":  "-9000000000",
		"SB_INGEST_PORT":       "65535",
		"SB_INGEST_RATIO":      "0.25",
		"SB_INGEST_TIMEOUT":    "1m30s",
		"SB_INGEST_PORTALS":    " 101, 202,,303 ",
		"SB_INGEST_IP":         "10.0.0.7",
		"SB_INGEST_LOG_LEVEL":  "debug",
		"SB_INGEST_NATS_TOKEN": "nats-secret",
		"SB_INGEST_NATS_URL":   "nats://nats:4222",
		"SB_INGEST_SKIPPED":    "no",
		"Ignored":              "no",
	}), &got)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := kinds{
		shared:   shared{LogLevel: slog.LevelDebug},
		Addr:     ":8080",
		Token:    "s3cret",
		Debug:    true,
		Workers:  16,
		MaxBytes: -9000000000,
		Port:     65535,
		Ratio:    0.25,
		Timeout:  90 * time.Second,
		Portals:  []string{"101", "202", "303"},
		IP:       netip.MustParseAddr("10.0.0.7"),
		NATS:     natsBlock{URL: "nats://nats:4222", Token: "nats-secret"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load:\n got %#v\nwant %#v", got, want)
	}
}

func TestLoadNaming(t *testing.T) {
	t.Parallel()
	type inner struct {
		Name string `env:"NAME"`
	}
	type middle struct {
		inner       // embedded, unexported: its exported fields are promoted
		Inner inner `env:"INNER"`
		Embed struct {
			Name string `env:"DEEP"`
		} `env:"EMBED"`
	}
	type Block struct {
		Name string `env:"BLOCK_NAME"`
	}
	type cfg struct {
		Block        // embedded, untagged: no segment
		Mid   middle `env:"MID"`
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"BLOCK_NAME", "MID_NAME", "MID_INNER_NAME", "MID_EMBED_DEEP"}},
		{"SB_INGEST", []string{"SB_INGEST_BLOCK_NAME", "SB_INGEST_MID_NAME", "SB_INGEST_MID_INNER_NAME", "SB_INGEST_MID_EMBED_DEEP"}},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			t.Parallel()
			var names []string
			for _, v := range config.Describe(tt.prefix, (*cfg)(nil)) {
				names = append(names, v.Name)
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Fatalf("Describe names = %q, want %q", names, tt.want)
			}
			m := map[string]string{}
			for _, n := range tt.want {
				m[n] = "v-" + n
			}
			var c cfg
			if err := config.Load(tt.prefix, env(m), &c); err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := []string{c.Block.Name, c.Mid.inner.Name, c.Mid.Inner.Name, c.Mid.Embed.Name}
			for i, n := range tt.want {
				if got[i] != "v-"+n {
					t.Errorf("field for %s = %q, want %q", n, got[i], "v-"+n)
				}
			}
		})
	}
}

func TestLoadKeepsCodeDefaultsWhenUnset(t *testing.T) {
	t.Parallel()
	c := struct {
		Addr  string `env:"ADDR"`
		Other string `env:"OTHER" default:"tag"`
	}{Addr: "from-code", Other: "from-code"}
	if err := config.Load("X", env(nil), &c); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "from-code" || c.Other != "tag" {
		t.Fatalf("got Addr=%q Other=%q, want from-code and tag", c.Addr, c.Other)
	}
}

// errorsOf flattens an errors.Join result.
func errorsOf(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestLoadReportsEveryError(t *testing.T) {
	t.Parallel()
	var c kinds
	err := config.Load("SB", env(map[string]string{
		"SB_DEBUG":     "yes please",
		"SB_WORKERS":   "many",
		"SB_PORT":      "70000",
		"SB_RATIO":     "half",
		"SB_TIMEOUT":   "10",
		"SB_IP":        "not-an-ip",
		"SB_LOG_LEVEL": "loud",
	}), &c)
	want := []struct {
		sentinel error
		parts    []string
	}{
		{config.ErrInvalid, []string{`SB_LOG_LEVEL="loud"`, "slog.Level"}},
		{config.ErrRequired, []string{"SB_TOKEN"}},
		{config.ErrInvalid, []string{`SB_DEBUG="yes please"`, "true or false"}},
		{config.ErrInvalid, []string{`SB_WORKERS="many"`, "an integer from"}},
		{config.ErrInvalid, []string{`SB_PORT="70000"`, "from 0 to 65535"}},
		{config.ErrInvalid, []string{`SB_RATIO="half"`, "a number"}},
		{config.ErrInvalid, []string{`SB_TIMEOUT="10"`, "a duration such as"}},
		{config.ErrInvalid, []string{`SB_IP="not-an-ip"`, "netip.Addr"}},
	}
	got := errorsOf(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if !errors.Is(got[i], w.sentinel) {
			t.Errorf("error %d %q: not %v", i, got[i], w.sentinel)
		}
		for _, p := range w.parts {
			if !strings.Contains(got[i].Error(), p) {
				t.Errorf("error %d %q: missing %q", i, got[i], p)
			}
		}
	}
}

func TestLoadRejectsBadTargets(t *testing.T) {
	t.Parallel()
	var notStruct int
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"nil", nil, "non-nil pointer to a struct, got <nil>"},
		{"value", kinds{}, "got config_test.kinds"},
		{"pointer to int", &notStruct, "got *int"},
		{"url.URL field", &struct {
			U url.URL `env:"U"`
		}{}, "unsupported type url.URL"},
		{"map field", &struct {
			M map[string]string `env:"M"`
		}{}, "unsupported type map[string]string"},
		{"unexported tagged", &struct {
			m string `env:"M"`
		}{}, "unexported"},
		{"bad required tag", &struct {
			M string `env:"M" required:"maybe"`
		}{}, `required tag "maybe"`},
		{"bad default", &struct {
			D time.Duration `env:"D" default:"soon"`
		}{}, `X_D: default "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := config.Load("X", env(nil), tt.dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := config.Load("X", nil, &kinds{}); err == nil {
		t.Fatal("Load with nil getenv: no error")
	}
}

type validated struct {
	Name string    `env:"NAME"`
	Sub  validSub  `env:"SUB"`
	Emb  embedding `env:"EMB"`
}

func (v *validated) Validate() error {
	if v.Name == "bad" {
		return errors.New("name must not be bad")
	}
	return nil
}

type validSub struct {
	N int `env:"N"`
}

func (s validSub) Validate() error {
	if s.N < 0 {
		return fmt.Errorf("N=%d must not be negative", s.N)
	}
	return nil
}

// embedding gets Validate promoted from counted.
type embedding struct{ counted }

type counted struct {
	Calls *int
	Val   string `env:"VAL"`
}

func (c counted) Validate() error {
	if c.Calls != nil {
		*c.Calls++
	}
	if c.Val == "bad" {
		return errors.New("val must not be bad")
	}
	return nil
}

func TestLoadValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		want  []string // substrings, one per joined error
		calls int      // calls of the promoted Validate
	}{
		{"valid", map[string]string{"V_NAME": "ok"}, nil, 1},
		{"top", map[string]string{"V_NAME": "bad"}, []string{"name must not be bad"}, 1},
		{"nested", map[string]string{"V_SUB_N": "-1"}, []string{"validated.Sub: N=-1 must not be negative"}, 1},
		{"promoted once", map[string]string{"V_EMB_VAL": "bad"}, []string{"validated.Emb: val must not be bad"}, 1},
		{"both", map[string]string{"V_NAME": "bad", "V_SUB_N": "-2"}, []string{"validated.Sub: N=-2", "name must not be bad"}, 1},
		{"parse error skips validation", map[string]string{"V_SUB_N": "x", "V_EMB_VAL": "bad"}, []string{`V_SUB_N="x"`, "val must not be bad"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls int
			c := validated{Emb: embedding{counted{Calls: &calls}}}
			got := errorsOf(config.Load("V", env(tt.env), &c))
			if len(got) != len(tt.want) {
				t.Fatalf("got errors %q, want %d containing %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], w)
				}
			}
			if calls != tt.calls {
				t.Errorf("promoted Validate called %d times, want %d", calls, tt.calls)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	const value = "hunter2"
	s := config.Secret(value)
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "token", s)
	js, err := json.Marshal(struct{ T config.Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": s.String(),
		"%v":     fmt.Sprintf("%v", s),
		//lint:ignore S1025 the %s verb itself is under test
		"%s":     fmt.Sprintf("%s", s),
		"%q":     fmt.Sprintf("%q", s),
		"%x":     fmt.Sprintf("%x", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%+v":    fmt.Sprintf("%+v", struct{ T config.Secret }{s}),
		"json":   string(js),
		"slog":   logBuf.String(),
		"errorf": fmt.Errorf("with %v", s).Error(),
	}
	for name, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, "***") && !strings.Contains(out, fmt.Sprintf("%x", "***")) {
			t.Errorf("%s does not show the mask: %s", name, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q, want %q", s.Reveal(), value)
	}
	var empty config.Secret
	if empty.String() != "" || fmt.Sprint(empty) != "" {
		t.Errorf("empty secret prints %q, want empty", empty.String())
	}
	if js, _ := json.Marshal(empty); string(js) != `""` {
		t.Errorf("empty secret JSON = %s, want \"\"", js)
	}
}

func TestLoadSecretFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type cfg struct {
		Token config.Secret `env:"TOKEN" required:"true"`
		Plain string        `env:"PLAIN"`
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    config.Secret
		wantErr string
	}{
		{"file", map[string]string{"A_TOKEN_FILE": file}, "from-file", ""},
		{"env", map[string]string{"A_TOKEN": "from-env"}, "from-env", ""},
		{"both", map[string]string{"A_TOKEN": "x", "A_TOKEN_FILE": file}, "", "A_TOKEN and A_TOKEN_FILE are both set"},
		{"missing file", map[string]string{"A_TOKEN_FILE": filepath.Join(dir, "nope")}, "", "A_TOKEN_FILE: read secret file"},
		{"plain ignores _FILE", map[string]string{"A_TOKEN": "t", "A_PLAIN_FILE": file}, "t", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c cfg
			err := config.Load("A", env(tt.env), &c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Token != tt.want || c.Plain != "" {
				t.Fatalf("Token=%q Plain=%q, want %q and empty", c.Token.Reveal(), c.Plain, tt.want.Reveal())
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	got := config.Describe("SB", kinds{})
	want := []config.Var{
		{Name: "SB_LOG_LEVEL", Default: "info"},
		{Name: "SB_HTTP_ADDR", Default: ":8080", Desc: "listen address"},
		{Name: "SB_TOKEN", Required: true, Secret: true},
		{Name: "SB_DEBUG"},
		{Name: "SB_WORKERS", Default: "4"},
		{Name: "SB_MAX_BYTES"},
		{Name: "SB_PORT"},
		{Name: "SB_RATIO"},
		{Name: "SB_TIMEOUT", Default: "5s"},
		{Name: "SB_PORTALS"},
		{Name: "SB_IP"},
		{Name: "SB_NATS_URL", Default: "nats://127.0.0.1:4222", Desc: "NATS server URL"},
		{Name: "SB_NATS_TOKEN", Secret: true},
		{Name: "SB_NATS_STREAM"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Describe:\n got %+v\nwant %+v", got, want)
	}
	if config.Describe("SB", 42) != nil {
		t.Error("Describe of an int should be nil")
	}
}

func TestStringMasksSecrets(t *testing.T) {
	t.Parallel()
	c := kinds{
		Addr:    ":9090",
		Token:   "s3cret",
		Workers: 2,
		Timeout: 1500 * time.Millisecond,
		Portals: []string{"1", "2"},
		IP:      netip.MustParseAddr("::1"),
		NATS:    natsBlock{URL: "nats://x", Stream: "with space"},
	}
	want := strings.Join([]string{
		"LOG_LEVEL=INFO",
		"HTTP_ADDR=:9090",
		"TOKEN=***",
		"DEBUG=false",
		"WORKERS=2",
		"MAX_BYTES=0",
		"PORT=0",
		"RATIO=0",
		"TIMEOUT=1.5s",
		"PORTALS=1,2",
		"IP=::1",
		"NATS_URL=nats://x",
		"NATS_TOKEN=",
		`NATS_STREAM="with space"`,
	}, "\n")
	if got := config.String(&c); got != want {
		t.Fatalf("String:\n%s\nwant:\n%s", got, want)
	}
	if got := config.Format("SB", c); !strings.HasPrefix(got, "SB_LOG_LEVEL=INFO\nSB_HTTP_ADDR=:9090\nSB_TOKEN=***\n") {
		t.Fatalf("Format with prefix:\n%s", got)
	}
}
