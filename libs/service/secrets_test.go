package service_test

import (
	"io/fs"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/service"
)

// fakeFS is a secrets resolver's world: environment, files, clock and a read counter.
type fakeFS struct {
	env   map[string]string
	files map[string]string
	now   time.Time
	reads int
}

func (f *fakeFS) secrets() *service.Secrets {
	return service.NewSecrets(func(k string) string { return f.env[k] },
		func(p string) ([]byte, error) {
			f.reads++
			if v, ok := f.files[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}, func() time.Time { return f.now })
}

func TestSecretsFromEnvOrFile(t *testing.T) {
	t.Parallel()
	f := &fakeFS{
		env: map[string]string{
			"DIRECT": "from-env", "BOTH": "env-wins", "BOTH_FILE": "/s/both", "MOUNTED_FILE": "/s/mounted",
			"BLANK_FILE": "/s/blank", "GONE_FILE": "/s/gone",
		},
		files: map[string]string{"/s/both": "file", "/s/mounted": "  v1\n", "/s/blank": " \n"},
	}
	s := f.secrets()
	cases := []struct {
		name, want string
		ok         bool
	}{
		{"DIRECT", "from-env", true}, {"BOTH", "env-wins", true}, {"MOUNTED", "v1", true},
		{"BLANK", "", false}, {"GONE", "", false}, {"UNSET", "", false}, {"", "", false},
	}
	for _, tc := range cases {
		if got, ok := s.Lookup(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%q) = %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if f.reads != 3 {
		t.Errorf("%d file reads, want 3 (mounted, blank, gone; the environment wins over BOTH_FILE)", f.reads)
	}
}

func TestSecretFileRotationIsPickedUpAfterTheTTL(t *testing.T) {
	t.Parallel()
	f := &fakeFS{
		env:   map[string]string{"TOKEN_FILE": "/run/secrets/token", "MISSING_FILE": "/run/secrets/missing"},
		files: map[string]string{"/run/secrets/token": "v1\n"},
		now:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	s := f.secrets()

	if got, ok := s.Lookup("TOKEN"); got != "v1" || !ok {
		t.Fatalf("first read: %q %v", got, ok)
	}
	f.files["/run/secrets/token"] = "v2"
	f.now = f.now.Add(service.SecretFileTTL - time.Second)
	if got, _ := s.Lookup("TOKEN"); got != "v1" || f.reads != 1 {
		t.Fatalf("within the TTL: %q after %d reads, want the cached v1 after 1", got, f.reads)
	}
	f.now = f.now.Add(time.Second)
	if got, _ := s.Lookup("TOKEN"); got != "v2" || f.reads != 2 {
		t.Fatalf("after the TTL: %q after %d reads, want v2 after 2", got, f.reads)
	}

	// A missing file is cached as missing too, and found once it appears and the TTL passed.
	if _, ok := s.Lookup("MISSING"); ok {
		t.Fatal("missing file resolved")
	}
	f.files["/run/secrets/missing"] = "late"
	if _, ok := s.Lookup("MISSING"); ok {
		t.Fatal("missing file re-read within the TTL")
	}
	f.now = f.now.Add(service.SecretFileTTL)
	if got, ok := s.Lookup("MISSING"); got != "late" || !ok {
		t.Fatalf("appeared file: %q %v", got, ok)
	}
}
