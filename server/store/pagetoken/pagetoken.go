package pagetoken

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/hookmap/hookmap/server/store"
)

// Page sizes.
const (
	DefaultSize = 50   // a store.Page of size 0
	MaxSize     = 1000 // larger pages are cut to this
)

// Size applies the store.Page defaults.
func Size(p store.Page) int {
	switch {
	case p.Size <= 0:
		return DefaultSize
	case p.Size > MaxSize:
		return MaxSize
	default:
		return p.Size
	}
}

// Encode returns the token of kind continuing after keys.
func Encode(kind string, keys ...int64) string {
	var b strings.Builder
	b.WriteString(kind)
	for _, k := range keys {
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(k, 10))
	}
	return base64.RawURLEncoding.EncodeToString([]byte(b.String()))
}

// Decode decodes a token of kind with n keys; "" gives nil keys (the first page).
func Decode(kind, token string, n int) ([]int64, error) {
	if token == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, store.ErrInvalidPageToken
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != n+1 || parts[0] != kind {
		return nil, store.ErrInvalidPageToken
	}
	keys := make([]int64, n)
	for i, p := range parts[1:] {
		if keys[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return nil, store.ErrInvalidPageToken
		}
	}
	return keys, nil
}

// After decodes a single-key token into the key to continue after (0: from the start).
func After(kind, token string) (int64, error) {
	k, err := Decode(kind, token, 1)
	if err != nil || k == nil {
		return 0, err
	}
	return k[0], nil
}
