package celfn

import (
	"context"
	"regexp"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/stretchr/testify/require"
)

func eval(t *testing.T, src string, vars map[string]any) (any, error) {
	t.Helper()
	base, err := BaseEnv()
	require.NoError(t, err)
	env, err := base.Extend(cel.Variable("data", cel.DynType))
	require.NoError(t, err)
	ast, iss := env.Compile(src)
	require.NoError(t, iss.Err(), src)
	prg, err := env.Program(ast)
	require.NoError(t, err)
	if vars == nil {
		vars = map[string]any{}
	}
	if _, ok := vars["data"]; !ok {
		vars["data"] = map[string]any{}
	}
	vars[NowVar] = types.Timestamp{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	out, _, err := prg.ContextEval(context.Background(), vars)
	if err != nil {
		return nil, err
	}
	return ToPlain(out)
}

func TestFunctions(t *testing.T) {
	data := map[string]any{"n": int64(41), "items": []any{int64(3), int64(1), int64(2)}, "s": "Hello", "payload": `{"id":1234567,"f":1.5}`}
	tests := []struct {
		name, src string
		want      any
	}{
		// hookmap's library
		{"hmacSha256 RFC 4231 case 2", `hex(hmacSha256("Jefe", "what do ya want for nothing?"))`, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"hmacSha256 bytes", `hex(hmacSha256(b"Jefe", b"what do ya want for nothing?"))`, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"hmacSha256 mixed", `hex(hmacSha256("Jefe", b"what do ya want for nothing?")) == hex(hmacSha256(b"Jefe", "what do ya want for nothing?"))`, true},
		{"hmacSha256 base64", `base64.encode(hmacSha256("Jefe", "what do ya want for nothing?"))`, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="},
		{"sha256 abc", `hex(sha256("abc"))`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"sha256 bytes", `hex(sha256(b"abc"))`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"hex string", `hex("hi")`, "6869"},
		{"secureEquals strings", `secureEquals("a", "a") && !secureEquals("a", "b")`, true},
		{"secureEquals bytes", `secureEquals(b"a", b"a") && !secureEquals(b"a", b"ab")`, true},
		{"jmespath", "jmespath(data, 'length(items) > `2`')", true},
		{"jmespath ints", `jmespath(data, 'sort(items)')`, []any{int64(1), int64(2), int64(3)}},
		{"jmespath result usable", `jmespath(data, 'max(items)') + 1`, int64(4)},
		{"now variable", `now`, "2024-01-02T03:04:05Z"},
		{"now function", `now() > timestamp("2024-01-01T00:00:00Z")`, true},
		{"parseJson", `parseJson(data.payload).id + 1`, int64(1234568)},
		{"parseJson float", `parseJson(data.payload).f`, 1.5},
		{"toJson", `toJson({"a": [1, 2.5, "x", null]})`, `{"a":[1,2.5,"x",null]}`},
		// extensions
		{"strings", `data.s.lowerAscii() + "," + "a,b".split(",")[1] + "," + "  x ".trim()`, "hello,b,x"},
		{"strings format", `"%d-%s".format([data.n, "x"])`, "41-x"},
		{"encoders", `base64.decode(base64.encode(b"hi")) == b"hi"`, true},
		{"math", `math.greatest(1, 5, 3) + math.abs(-2)`, int64(7)},
		{"math ceil", `math.ceil(1.2)`, 2.0},
		{"lists", `lists.range(3) + data.items.sort()`, []any{int64(0), int64(1), int64(2), int64(1), int64(2), int64(3)}},
		{"lists flatten", `[[1], [2, 3]].flatten()`, []any{int64(1), int64(2), int64(3)}},
		{"sets", `sets.contains(data.items, [1, 2]) && sets.intersects([1], [1, 9])`, true},
		{"optional", `data.?missing.orValue("d")`, "d"},
		{"bindings", `cel.bind(x, data.n, x + x)`, int64(82)},
		{"int arithmetic", `data.n + 1`, int64(42)},
		{"cross-type comparison", `data.n > 40.5`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eval(t, tc.src, map[string]any{"data": data})
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestUUID(t *testing.T) {
	a, err := eval(t, `uuid()`, nil)
	require.NoError(t, err)
	b, err := eval(t, `uuid()`, nil)
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), a)
	require.NotEqual(t, a, b)
	l, err := eval(t, `[uuid(), uuid()]`, nil)
	require.NoError(t, err)
	require.NotEqual(t, l.([]any)[0], l.([]any)[1])
}

func TestFunctionErrors(t *testing.T) {
	_, err := eval(t, `parseJson("{")`, nil)
	require.ErrorContains(t, err, "parseJson()")
	_, err = eval(t, `jmespath(data, "[")`, nil)
	require.ErrorContains(t, err, "jmespath()")
	_, err = eval(t, `jmespath(data, "abs(a)")`, map[string]any{"data": map[string]any{"a": "x"}})
	require.ErrorContains(t, err, "jmespath()")
	_, err = eval(t, `data.ok ? "fine" : fail("auth.test: " + data.error)`, map[string]any{"data": map[string]any{"ok": false, "error": "invalid_auth"}})
	require.EqualError(t, err, "auth.test: invalid_auth")
	got, err := eval(t, `data.ok ? "fine" : fail("never")`, map[string]any{"data": map[string]any{"ok": true}})
	require.NoError(t, err)
	require.Equal(t, "fine", got)
}

func TestToPlain(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{`{"a": b"\x00\x01", "t": timestamp("2024-01-02T03:04:05.5Z"), "d": duration("1m30s"), "u": 3u, "n": null, "o": optional.none(), "s": optional.of("x")}`,
			map[string]any{"a": "AAE=", "t": "2024-01-02T03:04:05.5Z", "d": "90s", "u": int64(3), "n": nil, "s": "x"}},
		{`[optional.none(), 1]`, []any{nil, int64(1)}},
		{`18446744073709551615u`, 1.8446744073709552e19},
		{`int`, "int"},
		{`{true: 1, 2: 3}`, map[string]any{"true": int64(1), "2": int64(3)}},
	}
	for _, tc := range tests {
		got, err := eval(t, tc.src, nil)
		require.NoError(t, err, tc.src)
		require.Equal(t, tc.want, got, tc.src)
	}
}

func TestParseLinkHeader(t *testing.T) {
	got := ParseLinkHeader(`<https://api.github.com/repositories/1/hooks?page=2>; rel="next", <https://api.github.com/repositories/1/hooks?page=5>; rel="last"`)
	if got["next"] != "https://api.github.com/repositories/1/hooks?page=2" || got["last"] != "https://api.github.com/repositories/1/hooks?page=5" {
		t.Fatalf("github form: %v", got)
	}
	got = ParseLinkHeader(`<https://shop.myshopify.com/admin/api/2024-01/webhooks.json?limit=1&page_info=abc>; rel="previous", <https://shop.myshopify.com/admin/api/2024-01/webhooks.json?limit=1&page_info=def>; rel="next"`)
	if got["next"] != "https://shop.myshopify.com/admin/api/2024-01/webhooks.json?limit=1&page_info=def" || got["previous"] == "" {
		t.Fatalf("shopify form: %v", got)
	}
	got = ParseLinkHeader(`<https://x/a,b>; title="a, b"; rel="next last"`)
	if got["next"] != "https://x/a,b" || got["last"] != "https://x/a,b" {
		t.Fatalf("commas inside: %v", got)
	}
	if got := ParseLinkHeader(""); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
	if got := ParseLinkHeader("garbage; rel=next"); len(got) != 0 {
		t.Fatalf("garbage: %v", got)
	}
}
