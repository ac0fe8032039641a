package sqlite

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// FuzzPageToken sends arbitrary page tokens to every paged list, as a client may: each
// either refuses the token with store.ErrInvalidPageToken or reads from the position it
// names, never anything else; and every token the store issues decodes to its keys.
func FuzzPageToken(f *testing.F) {
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tok := range []string{
		"", "%%%", "garbage", pagetoken.Encode("conn", 5), pagetoken.Encode("dlv", 1_700_000_000_000_000_000, 7),
		raw("dlv:1"), raw("dlv:1:2:3"), raw("conn:-1"), raw("conn:9223372036854775808"), raw("conn: 1"),
		raw("conn:+1"), raw(":"), raw("conn:"), raw("inv:1:2"), raw("ws:0"), raw("sub:-9223372036854775808"),
		base64.StdEncoding.EncodeToString([]byte("conn:1")), raw("conn:1") + "=", raw("conn:1\x00"),
	} {
		f.Add(tok, int64(7), int64(-1))
	}
	s := openTest(f, Options{})
	if err := s.CreateWorkspace(f.Context(), &store.Workspace{ID: "ws"}); err != nil {
		f.Fatal(err)
	}
	lists := map[string]func(ctx context.Context, token string) error{
		"ListConnections": func(ctx context.Context, token string) error {
			_, _, err := s.ListConnections(ctx, "ws", store.Page{Token: token})
			return err
		},
		"ListSubscriptions": func(ctx context.Context, token string) error {
			_, _, err := s.ListSubscriptions(ctx, "ws", "", store.Page{Token: token})
			return err
		},
		"ListDeliveries": func(ctx context.Context, token string) error {
			_, _, err := s.ListDeliveries(ctx, "ws", store.DeliveryFilter{}, store.Page{Token: token})
			return err
		},
		"ListWorkspaces": func(ctx context.Context, token string) error {
			_, _, err := s.ListWorkspaces(ctx, store.Page{Token: token})
			return err
		},
		"ListOutgoingWebhooks": func(ctx context.Context, token string) error {
			_, _, err := s.ListOutgoingWebhooks(ctx, "ws", store.Page{Token: token})
			return err
		},
		"ListInvocations": func(ctx context.Context, token string) error {
			_, _, err := s.ListInvocations(ctx, "ws", store.InvocationFilter{}, store.Page{Token: token})
			return err
		},
	}
	f.Fuzz(func(t *testing.T, token string, a, b int64) {
		for _, keys := range [][]int64{{a}, {a, b}} {
			got, err := pagetoken.Decode("k", pagetoken.Encode("k", keys...), len(keys))
			if err != nil || !slices.Equal(got, keys) {
				t.Fatalf("issued token of %v decodes to %v, %v", keys, got, err)
			}
		}
		for name, list := range lists {
			if err := list(t.Context(), token); err != nil && !errors.Is(err, store.ErrInvalidPageToken) {
				t.Fatalf("%s with token %q: %v", name, token, err)
			}
		}
	})
}
