package httpbody

import (
	"bytes"
	"errors"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		want           any
		err            error
	}{
		{"json", "application/json", `{"id":1234567,"f":1.5}`, map[string]any{"id": int64(1234567), "f": 1.5}, nil},
		{"json charset", "application/json; charset=utf-8", `[1]`, []any{int64(1)}, nil},
		{"vendor json", "application/vnd.github+json", `{"a":true}`, map[string]any{"a": true}, nil},
		{"bad json", "application/json", `{"a":`, nil, ErrMalformedJSON},
		{"trailing json", "application/json", `{} x`, nil, ErrMalformedJSON},
		{"empty", "application/json", ``, nil, nil},
		{"form", "application/x-www-form-urlencoded", `a=1&b=x&b=y&payload=%7B%22k%22%3A1%7D`,
			map[string]any{"a": "1", "b": []any{"x", "y"}, "payload": `{"k":1}`}, nil},
		{"bad form", "application/x-www-form-urlencoded", `a=%zz`, nil, ErrMalformedForm},
		{"text", "text/plain", "hello", "hello", nil},
		{"text invalid utf8", "text/plain", "a\xffb", "a\uFFFDb", nil},
		{"xml as string", "application/xml", "<a/>", "<a/>", nil},
		{"no content type", "", `{"a":1}`, `{"a":1}`, nil},
		{"binary", "application/octet-stream", "\xff\x00", "/wA=", nil},
		{"multipart without boundary", "multipart/form-data", "x", nil, ErrMalformedMulti},
		{"multipart without its boundary", "multipart/form-data; boundary=zz", "--b\r\n\r\n1\r\n--b--\r\n", nil, ErrMalformedMulti},
		{"multipart without parts", "multipart/form-data; boundary=zz", "--zz--\r\n", map[string]any{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.ct, []byte(tc.body))
			fromString, errString := ParseString(tc.ct, tc.body)
			require.Equal(t, err, errString, "ParseString fails as Parse does")
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want, fromString)
		})
	}
}

func TestDeepJSONIsAnErrorNotACrash(t *testing.T) {
	body := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	_, err := Parse("application/json", []byte(body))
	require.ErrorIs(t, err, ErrMalformedJSON)
}

func TestMultipart(t *testing.T) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	require.NoError(t, w.WriteField("name", "octo"))
	require.NoError(t, w.WriteField("tag", "a"))
	require.NoError(t, w.WriteField("tag", "b"))
	fw, err := w.CreateFormFile("file", "x.bin")
	require.NoError(t, err)
	_, _ = fw.Write([]byte{1, 2, 3})
	require.NoError(t, w.Close())
	got, err := Parse(w.FormDataContentType(), buf.Bytes())
	require.NoError(t, err)
	m := got.(map[string]any)
	require.Equal(t, "octo", m["name"])
	require.Equal(t, []any{"a", "b"}, m["tag"])
	f := m["file"].(map[string]any)
	require.Equal(t, "x.bin", f["filename"])
	require.Equal(t, int64(3), f["size"])
	require.Equal(t, "AQID", f["content"])
}

func TestHeadersAndQuery(t *testing.T) {
	h := http.Header{"X-Github-Event": {"push"}, "Accept": {"a", "b"}}
	require.Equal(t, map[string]any{"x-github-event": "push", "accept": "a, b"}, LowerHeaders(h))
	q, _ := url.ParseQuery("a=1&b=2&b=3")
	require.Equal(t, map[string]any{"a": "1", "b": []any{"2", "3"}}, Query(q))
}

// TestHeaderNamesAreLoweredOnce: a name seen before is lowered from the table of names,
// and names past the table's bound are still lowered.
func TestHeaderNamesAreLoweredOnce(t *testing.T) {
	h := http.Header{"X-Probe-Once": {"v"}}
	require.Equal(t, map[string]any{"x-probe-once": "v"}, LowerHeaders(h))
	l, ok := lowerNames.Load("X-Probe-Once")
	require.True(t, ok)
	require.Equal(t, "x-probe-once", l)
	require.Equal(t, 0, int(testing.AllocsPerRun(10, func() { _ = lowerName("X-Probe-Once") })))

	long := "X-" + strings.Repeat("Long", maxLowerNameLen)
	require.Equal(t, strings.ToLower(long), lowerName(long))
	_, ok = lowerNames.Load(long)
	require.False(t, ok, "a name longer than maxLowerNameLen is not kept")
	for i := range maxLowerNames + 10 {
		k := "X-Many-" + strconv.Itoa(i)
		require.Equal(t, strings.ToLower(k), lowerName(k))
	}
	require.LessOrEqual(t, lowerNameCount.Load(), int64(maxLowerNames))
}

// FuzzMediaType: the media type Parse dispatches on is mime.ParseMediaType's, or the
// same of a Content-Type it refuses.
func FuzzMediaType(f *testing.F) {
	for _, ct := range []string{"application/json", " Application/JSON ; charset=UTF-8", "text/plain;", "multipart/form-data; boundary=x",
		"a/b; c", "bad type", "", ";", "application/json;;", "application/vnd.api+json; x=\"y\""} {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		want, _, err := mime.ParseMediaType(ct)
		if err != nil {
			want = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
		}
		require.Equal(t, want, mediaType(ct))
	})
}

// FuzzParse parses arbitrary bodies as arbitrary content types, what the receiver does
// with every request: Parse never panics, refuses only with its own errors, and what it
// accepts is within the nesting limit and stores and reads back as JSON.
func FuzzParse(f *testing.F) {
	f.Add("application/json", []byte(`{"a":[1,2.5,"x"]}`))
	f.Add("application/json; charset=utf-8", []byte(strings.Repeat("[", value.MaxDepth)+strings.Repeat("]", value.MaxDepth)))
	f.Add("application/vnd.api+json", []byte(strings.Repeat(`{"a":`, value.MaxDepth+1)+"1"+strings.Repeat("}", value.MaxDepth+1)))
	f.Add("application/json", []byte(`{"n": 1e400, "big": 18446744073709551616, "s": "\ud800"}`))
	f.Add("application/x-www-form-urlencoded", []byte("a=1&b=2&b=3&payload=%7B%22k%22%3A1%7D"))
	f.Add("application/x-www-form-urlencoded", []byte("a=%zz;b"))
	f.Add("multipart/form-data; boundary=xyz", []byte("--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--\r\n"))
	f.Add("multipart/form-data; boundary=xyz", []byte("--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\xff\r\n--xyz--\r\n"))
	f.Add("multipart/form-data; boundary=xyz", []byte("--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1"))
	f.Add("multipart/form-data", []byte("--xyz--"))
	f.Add("text/plain; charset=latin1", []byte("\xe9"))
	f.Add("", []byte("\x00\x01\xfe"))
	f.Add("application/json;;;=", []byte(`[]`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		v, err := Parse(ct, body)
		if err != nil {
			for _, known := range []error{ErrMalformedJSON, ErrMalformedForm, ErrMalformedMulti, ErrTooManyParts} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("an error of no known kind: %v", err)
		}
		if err := value.Check(v); errors.Is(err, value.ErrTooDeep) {
			t.Fatalf("accepted past the nesting limit: %v", err)
		}
		b, err := value.Encode(v)
		if err != nil {
			t.Fatalf("accepted but cannot be stored: %v", err)
		}
		if _, err := value.DecodeStored(b); err != nil {
			t.Fatalf("stored but cannot be read back: %v", err)
		}
	})
}
