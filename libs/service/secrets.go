package service

import (
	"strings"
	"sync"
	"time"
)

// SecretFileTTL is how long a secret read from a file is used before the file is read again,
// so that a rotated mounted secret is picked up within a minute.
const SecretFileTTL = time.Minute

// Secrets resolves the secret names that portal configs hold (hubspot.auth.secret, the OAuth
// secrets, hubspot.webhook_secret) to their values: the environment variable NAME, else the
// file named by NAME_FILE, trimmed of surrounding white space. A file is re-read at most once
// per SecretFileTTL. It is safe for concurrent use.
type Secrets struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	now      func() time.Time

	mu    sync.Mutex
	files map[string]cachedSecret // by file path
}

type cachedSecret struct {
	value string
	ok    bool
	read  time.Time
}

// NewSecrets returns a resolver over getenv (os.Getenv in a main), readFile (os.ReadFile)
// and the clock now (time.Now).
func NewSecrets(getenv func(string) string, readFile func(string) ([]byte, error), now func() time.Time) *Secrets {
	return &Secrets{getenv: getenv, readFile: readFile, now: now, files: map[string]cachedSecret{}}
}

// Lookup returns the value of the secret name, and false when it is not set: no name, neither
// variable set, an unreadable file, or an empty value.
func (s *Secrets) Lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if v := s.getenv(name); v != "" {
		return v, true
	}
	path := s.getenv(name + "_FILE")
	if path == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.files[path]; ok && s.now().Sub(c.read) < SecretFileTTL {
		return c.value, c.ok
	}
	data, err := s.readFile(path)
	c := cachedSecret{read: s.now()}
	if err == nil {
		c.value = strings.TrimSpace(string(data))
		c.ok = c.value != ""
	}
	s.files[path] = c
	return c.value, c.ok
}
