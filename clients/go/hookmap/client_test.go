package hookmap

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

func TestDialChecksItsOptions(t *testing.T) {
	ctx := t.Context()
	_, err := Dial(ctx, "")
	require.ErrorContains(t, err, "empty target")
	_, err = Dial(ctx, "127.0.0.1:1", WithReconnectBackoff(Backoff{Max: time.Second}))
	require.ErrorContains(t, err, "positive Initial delay")
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Dial(done, "127.0.0.1:1")
	require.ErrorIs(t, err, context.Canceled)

	// Zero backoffs mean the defaults; Dial does not wait for a server.
	c, err := Dial(ctx, "127.0.0.1:1", WithInsecure(), WithReconnectBackoff(Backoff{}), WithRetry(RetryPolicy{MaxAttempts: 3}))
	require.NoError(t, err)
	require.Equal(t, DefaultReconnectBackoff, c.reconnect)
	require.NoError(t, c.Close())
	require.True(t, c.closed())

	err = c.Consume(ctx, "x", func(context.Context, *Event) error { return nil }, WithHandlerBackoff(Backoff{Max: time.Second}))
	require.ErrorContains(t, err, "WithHandlerBackoff")
	err = c.Consume(ctx, "x", nil)
	require.ErrorContains(t, err, "nil handler")
}

func TestCallCredentials(t *testing.T) {
	md, err := callCredentials{token: "k", workspace: "acme", secure: true}.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"authorization": "Bearer k", WorkspaceHeader: "acme"}, md)
	md, err = callCredentials{workspace: "acme"}.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{WorkspaceHeader: "acme"}, md, "no token, no authorization header")
	require.True(t, callCredentials{secure: true}.RequireTransportSecurity())
	require.False(t, callCredentials{}.RequireTransportSecurity())
}

// The Client keeps up with the API: a field for every hookmap.v1 service, an AllX
// iterator for every ListX RPC, and every Get and List RPC (reads) retried.
func TestClientCoversEveryService(t *testing.T) {
	fields := map[string]reflect.Type{}
	ct := reflect.TypeFor[Client]()
	for i := range ct.NumField() {
		if f := ct.Field(i); f.IsExported() {
			fields[f.Type.Name()] = f.Type
		}
	}
	services := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("hookmap.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			services++
			ft, ok := fields[string(sd.Name())]
			if !assert.True(t, ok, "Client has no field for %s", sd.FullName()) {
				continue
			}
			for j := range sd.Methods().Len() {
				m := sd.Methods().Get(j)
				name := string(m.Name())
				if rest, ok := strings.CutPrefix(name, "List"); ok {
					_, has := ft.MethodByName("All" + rest)
					assert.True(t, has, "%s has no iterator All%s", ft.Name(), rest)
				}
				if strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get") {
					full := "/" + string(sd.FullName()) + "/" + name
					_, ok := retriable[full]
					assert.True(t, ok, "%s reads: it is retried", full)
				}
			}
		}
		return true
	})
	require.Equal(t, len(fields), services, "one field per service")
}
