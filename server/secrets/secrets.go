package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/durable"
)

// KeySize is the key length: AES-256.
const KeySize = 32

// version1 prefixes every sealed value, so a later key rotation can tell formats apart.
const version1 byte = 1

// ErrDecrypt is returned when a sealed value does not open: wrong key, wrong context or
// tampered data.
var ErrDecrypt = errors.New("cannot decrypt: wrong key, wrong context or tampered data")

// Box seals and opens values with one key.
type Box struct {
	aead   cipher.AEAD
	macKey []byte // derived from the key; never the key itself
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("hookmap derived tokens v1"))
	return &Box{aead: aead, macKey: mac.Sum(nil)}, nil
}

// ParseKey decodes a --secret-key: base64 (standard or URL, padded or not) or hex of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as base64 or hex (e.g. from `openssl rand -base64 32`)", KeySize)
}

// LoadOrCreateKeyFile reads a key file, creating it with a random key when missing.
//
// A new key file (mode 0600, in a folder created 0700) is written durably: to a
// temporary file that is fsynced, then linked to its name, then the folder is fsynced,
// so a power cut leaves either no key file or a complete one, never an empty one, and a
// key that was used is never lost. Two processes creating the file at once end up with
// the same key. Temporary files left by a crash are removed.
//
// A key file readable by group or others is refused, and so is a damaged one: it is
// never replaced, since whatever was sealed with it would become unreadable for good.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	// Leftovers of a crash during an earlier creation hold no key anyone used.
	_ = durable.RemoveTemps(path)
	return key, nil
}

func readKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s is damaged (%w): restore it from the backup taken with the database "+
			"(or, if nothing was ever sealed with it, delete it to have a new key made)", path, err)
	}
	return key, nil
}

func createKeyFile(path string) ([]byte, error) {
	if err := durable.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("key file folder: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	err := durable.WriteFileExclusive(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKeyFile(path) // another process created it first: use its key
	}
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	return key, nil
}

// Seal encrypts plaintext bound to aad (the record it belongs to), so a sealed value
// copied to another record does not open.
func (b *Box) Seal(plaintext []byte, aad string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version1)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(aad)), nil
}

// Open decrypts a value sealed with the same key and aad.
func (b *Box) Open(sealed []byte, aad string) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version1 {
		return nil, ErrDecrypt
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealValue seals a plain map as JSON.
func (b *Box) SealValue(v map[string]any, aad string) ([]byte, error) {
	if v == nil {
		v = map[string]any{}
	}
	js, err := value.Encode(v)
	if err != nil {
		return nil, err
	}
	return b.Seal(js, aad)
}

// OpenValue opens a map sealed with SealValue.
func (b *Box) OpenValue(sealed []byte, aad string) (map[string]any, error) {
	js, err := b.Open(sealed, aad)
	if err != nil {
		return nil, err
	}
	v, err := value.DecodeStored(js)
	if err != nil {
		return nil, fmt.Errorf("sealed value is not JSON: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("sealed value is not an object")
	}
	return m, nil
}

var token = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// RandomToken returns n random bytes as lower-case base32 (16 bytes: 26 characters, 128 bits).
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics itself instead).
		panic(err)
	}
	return token.EncodeToString(b)
}

// DeriveToken returns a token of n bytes (at most 32) that is a keyed hash of input: the
// same input gives the same token under the same key, and nobody without the key can
// compute or guess it. Used for idempotent ids (a retried create gets the same id).
func (b *Box) DeriveToken(input string, n int) string {
	mac := hmac.New(sha256.New, b.macKey)
	mac.Write([]byte(input))
	return token.EncodeToString(mac.Sum(nil)[:min(n, sha256.Size)])
}
