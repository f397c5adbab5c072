package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// apiKeyPrefix marks signalbridge ingest keys, so that secret scanners and
// people recognise them.
const apiKeyPrefix = "sbk_"

// apiKeyLen is the length of the base62 part of a key: 32 random bytes need 43 digits.
const apiKeyLen = 43

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewAPIKey returns a fresh ingest API key: "sbk_" followed by 32 random bytes
// written as 43 base62 digits. Hand the key to its holder once and store only
// [HashAPIKey] of it in the portal config.
func NewAPIKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new api key: %w", err)
	}
	n := new(big.Int).SetBytes(b[:])
	digits := make([]byte, apiKeyLen)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := apiKeyLen - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		digits[i] = base62[mod.Int64()]
	}
	return apiKeyPrefix + string(digits), nil
}

// HashAPIKey returns the form in which an API key is stored: "sha256:" followed by
// the lower-case hex SHA-256 of the key. Keys from [NewAPIKey] carry 256 random
// bits, so an unsalted fast hash is enough: there is nothing to brute-force.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// AuthenticateKey reports which of the portal's ingest keys key is. It hashes
// key and compares the hash with every stored hash in constant time, without
// stopping at the first match, so timing reveals neither the match nor its position.
func (c *Config) AuthenticateKey(key string) (name string, ok bool) {
	if key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	for _, k := range c.Ingest.APIKeys {
		stored, err := hex.DecodeString(strings.TrimPrefix(k.Hash, "sha256:"))
		if err != nil || len(stored) != sha256.Size {
			continue
		}
		if subtle.ConstantTimeCompare(sum[:], stored) == 1 && !ok {
			name, ok = k.Name, true
		}
	}
	return name, ok
}
