package app_test

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/apptest"
)

// TestHostileJSONAPI sends what a client may send to the JSON API, the other door to
// every RPC: each is answered with its Connect error (never internal, never a 5xx) and
// the API still serves after it.
func TestHostileJSONAPI(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"))
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	envelope := func(msg string) string {
		var b bytes.Buffer
		b.WriteByte(0)
		_ = binary.Write(&b, binary.BigEndian, uint32(len(msg)))
		b.WriteString(msg)
		return b.String()
	}
	const get, create, list, stream = "hookmap.v1.ConnectionService/GetConnection", "hookmap.v1.ConnectionService/CreateConnection",
		"hookmap.v1.ConnectionService/ListConnections", "hookmap.v1.EventService/StreamEvents"
	for _, c := range []struct {
		name, method, ct, body string
		status                 int
		code, field            string
	}{
		{"malformed JSON", get, "", `{"id": `, 400, "invalid_argument", ""},
		{"trailing data", get, "", `{"id": "x"} trailing`, 400, "invalid_argument", ""},
		{"an array, not an object", get, "", `[]`, 400, "invalid_argument", ""},
		{"wrong type", list, "", `{"pageSize": "x"}`, 400, "invalid_argument", ""},
		{"number out of range", list, "", `{"pageSize": 1e40}`, 400, "invalid_argument", ""},
		{"invalid UTF-8", get, "", "{\"id\": \"\xff\"}", 400, "invalid_argument", ""},
		{"lone surrogate", get, "", `{"id": "\ud800"}`, 400, "invalid_argument", ""},
		{"empty body", get, "", ``, 400, "invalid_argument", ""},
		{"empty stream", stream, "application/connect+json", ``, 400, "invalid_argument", ""},
		{"unknown field", get, "", `{"id": "nope", "nope": 1}`, 404, "not_found", ""},
		{"parameters at the nesting limit", create, "", `{"connectorKey": "signedhooks", "parameters": {"a": ` + nested(value.MaxDepth-1) + `}}`, 200, "", ""},
		{"parameters past the nesting limit", create, "", `{"connectorKey": "signedhooks", "parameters": {"a": ` + nested(value.MaxDepth) + `}}`, 400, "invalid_argument", "parameters"},
		{"parameters past protobuf's recursion limit", create, "", `{"connectorKey": "signedhooks", "parameters": {"a": ` + nested(20000) + `}}`, 400, "invalid_argument", ""},
		{"7 MB id", get, "", `{"id": "` + strings.Repeat("x", 7<<20) + `"}`, 400, "invalid_argument", "id"},
		{"body over 8 MiB", get, "", `{"id": "` + strings.Repeat("x", 9<<20) + `"}`, 429, "resource_exhausted", ""},
		{"stream without a consumer", stream, "application/connect+json", envelope(`{}`), 200, "invalid_argument", "consumer"},
		{"unknown RPC", "hookmap.v1.ConnectionService/Nope", "", `{}`, 404, "unimplemented", ""},
	} {
		ct := c.ct
		if ct == "" {
			ct = "application/json"
		}
		r := h.Do(http.MethodPost, h.Hook("/api/"+c.method), []byte(c.body), "Content-Type", ct)
		require.Equal(t, c.status, r.Status, "%s: %.300s", c.name, r.Body)
		require.Less(t, len(r.Body), 8<<10, "%s: the answer echoes what it was sent", c.name)
		if c.code != "" && strings.HasPrefix(ct, "application/connect+") && r.Status == http.StatusOK {
			// A stream's error is its end message: flags 2, then {"error": {...}}.
			require.GreaterOrEqual(t, len(r.Body), 5, c.name)
			require.Equal(t, byte(2), r.Body[0], "%s: %s", c.name, r.Body)
			end := r.Body[5:]
			require.Contains(t, string(end), `"code":"`+c.code+`"`, c.name)
			require.Contains(t, string(end), c.field, c.name)
		} else if c.code != "" {
			e := apptest.DecodeAPIError(t, r)
			require.Equal(t, c.code, e.Code, "%s: %s", c.name, e.Message)
			if c.field != "" {
				require.Contains(t, e.Fields(), c.field, "%s: %s", c.name, e.Message)
			}
		}
		h.APIOK(list, `{}`, "", nil)
	}
}
