package apptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/stretchr/testify/require"
)

// APIError is the JSON error body of the JSON API (the Connect protocol's).
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type  string `json:"type"`
		Debug struct {
			FieldViolations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		} `json:"debug"`
	} `json:"details"`
}

// Fields returns the error's field violations by field.
func (e *APIError) Fields() map[string]string {
	out := map[string]string{}
	for _, d := range e.Details {
		for _, v := range d.Debug.FieldViolations {
			out[v.Field] = v.Description
		}
	}
	return out
}

// API calls method ("hookmap.v1.ConnectorService/ListConnectors") through the JSON API
// with body (a JSON object) and headers (alternating name, value); a non-empty token is
// sent as `authorization: Bearer token`.
func (h *Harness) API(method, body, token string, headers ...string) *Response {
	h.T.Helper()
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	return h.PostJSON(h.Hook("/api/"+method), body, headers...)
}

// APIOK calls method like API, requires 200 and decodes the answer into out (when not nil).
func (h *Harness) APIOK(method, body, token string, out any) {
	h.T.Helper()
	r := h.API(method, body, token)
	require.Equal(h.T, http.StatusOK, r.Status, "%s: %s", method, r.Body)
	if out != nil {
		require.NoError(h.T, json.Unmarshal(r.Body, out), "%s", r.Body)
	}
}

// DecodeAPIError decodes r's JSON error body.
func DecodeAPIError(t testingT, r *Response) *APIError {
	var e APIError
	require.NoError(t, json.Unmarshal(r.Body, &e), "%s", r.Body)
	require.NotEmpty(t, e.Code, "%s", r.Body)
	return &e
}

type testingT interface {
	require.TestingT
	Helper()
}

// APIStream is an open server stream of the JSON API (Connect streaming protocol).
type APIStream struct {
	Status int
	body   io.ReadCloser
	r      *bufio.Reader
}

// OpenAPIStream opens a server-streaming call with the Connect protocol's enveloped JSON.
func (h *Harness) OpenAPIStream(ctx context.Context, method, body, token string) *APIStream {
	h.T.Helper()
	var env bytes.Buffer
	env.WriteByte(0)
	_ = binary.Write(&env, binary.BigEndian, uint32(len(body)))
	env.WriteString(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Hook("/api/"+method), &env)
	require.NoError(h.T, err)
	req.Header.Set("Content-Type", "application/connect+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.T, err)
	s := &APIStream{Status: resp.StatusCode, body: resp.Body, r: bufio.NewReader(resp.Body)}
	h.T.Cleanup(func() { _ = resp.Body.Close() })
	return s
}

// Next returns the next message; at the end of the stream it returns nil and the stream's
// end message (its "error", if any).
func (s *APIStream) Next() (msg, end json.RawMessage, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return nil, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, nil, err
	}
	if hdr[0]&2 != 0 {
		return nil, b, nil
	}
	if hdr[0] != 0 {
		return nil, nil, fmt.Errorf("unexpected envelope flags %d", hdr[0])
	}
	return b, nil, nil
}

// Close ends the stream.
func (s *APIStream) Close() { _ = s.body.Close() }
