package app_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkOAuthRenewal runs a subscription's refresh (one PATCH to the app) on an OAuth
// 2.0 connection through the core, as the scheduler does:
//
// "token-valid" is the refresh alone (the renewal check costs no I/O); "renew-after-401"
// has the app refuse the token first, so each refresh is the refused PATCH, one token
// request, the write of the new tokens (sealed, compare-and-swap on their version, lease
// released) and the PATCH sent again.
//
//	go test ./server/app -run '^$' -bench BenchmarkOAuthRenewal -benchtime 500x
func BenchmarkOAuthRenewal(b *testing.B) {
	w := startOAuth(b)
	conn := w.connect()
	sub := w.subscribe(conn)
	c := w.h.App.Core()
	ctx := context.Background()
	refresh := func(b *testing.B) {
		_, out, err := c.RefreshSubscription(ctx, "default", sub.GetId())
		require.NoError(b, err)
		require.NoError(b, out.Err)
	}
	b.Run("token-valid", func(b *testing.B) {
		for b.Loop() {
			refresh(b)
		}
	})
	b.Run("renew-after-401", func(b *testing.B) {
		before := w.app.grantCount("refresh_token")
		for b.Loop() {
			w.app.revokeAccess()
			refresh(b)
		}
		require.Equal(b, b.N, w.app.grantCount("refresh_token")-before)
	})
}
