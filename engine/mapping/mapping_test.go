package mapping

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

var testVars = []string{"data", "body", "headers", "state", "parameters", "query", "rawBody", "method", "connection", "credentials", "connectorParameters"}

func compile(t testing.TB, src string, vars ...string) (*Value, []yamlsrc.Problem) {
	t.Helper()
	if vars == nil {
		vars = testVars
	}
	f, err := yamlsrc.Parse([]byte(src))
	require.NoError(t, err)
	env, err := NewEnv(vars...)
	require.NoError(t, err)
	c := &Compiler{Env: env, File: f, Path: "m.map.yml"}
	v := c.Compile(f.Root)
	return v, c.Problems
}

func mustCompile(t testing.TB, src string) *Value {
	t.Helper()
	v, probs := compile(t, src)
	require.Empty(t, probs)
	return v
}

func doc(t testing.TB, s string) any {
	t.Helper()
	v, err := value.DecodeString(s)
	require.NoError(t, err)
	return v
}

const body = `{"action":"opened","n":41,"f":1.5,"big":1234567,"items":[{"id":1,"n":3},{"id":2,"n":5},{"id":3,"n":4}],"issue":{"id":1234567,"title":"Bug","user":{"login":"octo"}},"tags":["a","b"],"weird key":{"x":1}}`

func TestFormulas(t *testing.T) {
	newVars := func() map[string]any {
		return map[string]any{
			"data":       doc(t, body),
			"headers":    map[string]any{"x-delivery": "d1"},
			"state":      map[string]any{"count": int64(2)},
			"parameters": map[string]any{"owner": "o", "repo": "r/x"},
		}
	}
	vars := newVars()
	tests := []struct {
		name, src string
		want      any
	}{
		{"constant", `{a: 1, b: [x, 2.5, null, true]}`, map[string]any{"a": int64(1), "b": []any{"x", 2.5, nil, true}}},
		{"cel int stays int", `{$cel: data.big}`, int64(1234567)},
		{"cel int arithmetic", `{$cel: data.n + 1}`, int64(42)},
		{"cel mixed comparison", `{$cel: data.f > 1}`, true},
		{"cel map", `{$cel: '{"id": data.issue.id, "who": data.issue.user.login}'}`, map[string]any{"id": int64(1234567), "who": "octo"}},
		{"cel list", `{$cel: 'data.items.map(i, i.id)'}`, []any{int64(1), int64(2), int64(3)}},
		{"cel shares input", `{$cel: data.issue.user}`, map[string]any{"login": "octo"}},
		{"cel optional orValue", `{$cel: 'data.?missing.orValue("d")'}`, "d"},
		{"cel has", `{$cel: 'has(data.missing) ? 1 : 2'}`, int64(2)},
		{"cel optional none omitted", `{a: {$cel: 'optional.none()'}, b: 1}`, map[string]any{"b": int64(1)}},
		{"cel map entry none omitted", `{$cel: '{"a": optional.none(), "b": 1}'}`, map[string]any{"b": int64(1)}},
		{"cel optional of", `{$cel: 'optional.of(3)'}`, int64(3)},
		{"cel optional none top", `{$cel: 'optional.none()'}`, nil},
		{"cel none in list is null", `[{$cel: 'optional.none()'}]`, []any{nil}},
		{"cel bytes base64", `{$cel: 'b"hi"'}`, "aGk="},
		{"cel timestamp", `{$cel: 'timestamp("2024-01-02T03:04:05Z")'}`, "2024-01-02T03:04:05Z"},
		{"cel duration", `{$cel: 'duration("90s")'}`, "90s"},
		{"cel uint", `{$cel: '7u'}`, int64(7)},
		{"cel double", `{$cel: '1.5 * 2.0'}`, 3.0},
		{"cel null", `{$cel: 'null'}`, nil},
		{"cel body alias", `{$cel: body.action}`, "opened"},
		{"cel bool scalar", `{$cel: true}`, true},
		{"cel state", `{$cel: state.count + 1}`, int64(3)},
		{"cel index with key", `{$cel: 'data["weird key"].x'}`, int64(1)},
		{"cel int keys", `{$cel: '{1: "a"}'}`, map[string]any{"1": "a"}},
		{"jmespath field", `{$jmespath: data.issue.id}`, int64(1234567)},
		{"jmespath length compare", "{$jmespath: 'length(data.items) > `2`'}", true},
		{"jmespath sum", `{$jmespath: 'sum(data.items[].n)'}`, int64(12)},
		{"jmespath max_by", `{$jmespath: 'max_by(data.items, &n).id'}`, int64(2)},
		{"jmespath filter", "{$jmespath: 'data.items[?n > `3`].id'}", []any{int64(2), int64(3)}},
		{"jmespath float", `{$jmespath: data.f}`, 1.5},
		{"jmespath missing is null", `{$jmespath: data.nope.deeper}`, nil},
		{"jmespath quoted header", `{$jmespath: 'headers."x-delivery"'}`, "d1"},
		{"jmespath body alias", `{$jmespath: body.action}`, "opened"},
		{"var path", `{$var: $.data.issue.user.login}`, "octo"},
		{"var index", `{$var: '$.data.items[1].id'}`, int64(2)},
		{"var negative index", `{$var: '$.data.items[-1].id'}`, int64(3)},
		{"var quoted", `{$var: "$.data['weird key'].x"}`, int64(1)},
		{"var missing", `{$var: $.data.nope.x}`, nil},
		{"var out of range", `{$var: '$.data.items[9]'}`, nil},
		{"var whole variable", `{$var: $.parameters}`, map[string]any{"owner": "o", "repo": "r/x"}},
		{"tpl", `{$tpl: {template: "/repos/{{owner}}/{{ repo }}/n/{{n}}", values: {owner: {$cel: parameters.owner}, repo: {$var: $.parameters.repo}, n: {$cel: data.big}}}}`, "/repos/o/r/x/n/1234567"},
		{"tpl json value", `{$tpl: {template: "t={{t}} f={{f}} z={{z}}", values: {t: {$cel: data.tags}, f: {$cel: data.f}, z: null}}}`, `t=["a","b"] f=1.5 z=`},
		{"tpl without placeholders", `{$tpl: {template: "plain"}}`, "plain"},
		{"literal", `{$literal: {$cel: data.x, a: [1]}}`, map[string]any{"$cel": "data.x", "a": []any{int64(1)}}},
		{"nested", `{events: [{type: {$cel: '"issue." + data.action'}, record: {id: {$jmespath: data.issue.id}, title: {$var: $.data.issue.title}}}]}`,
			map[string]any{"events": []any{map[string]any{"type": "issue.opened", "record": map[string]any{"id": int64(1234567), "title": "Bug"}}}}},
		{"empty file", ``, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustCompile(t, tc.src)
			got, err := v.Eval(NewScope(context.Background(), vars))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			// with only the variables it reads, the same
			if r := v.Reads(); !r.All() {
				only := map[string]any{}
				for k, e := range vars {
					if r.Has(k) {
						only[k] = e
					}
				}
				got, err := v.Eval(NewScope(context.Background(), only))
				require.NoError(t, err)
				require.Equal(t, tc.want, got, "with only %v", r.Names())
			}
		})
	}
	// Callers share variables between runs (the receiver opens a subscription's sealed
	// values once): no formula may change them, nor the values its results share.
	require.Equal(t, newVars(), vars, "the variables are as they were")
}

// TestReads: the variables a value may read, from every kind of formula.
func TestReads(t *testing.T) {
	for _, tc := range []struct {
		src   string
		names []string // nil: all
	}{
		{`{a: 1, b: [x, 2]}`, []string{}},
		{`{$cel: 'state.count + size(headers)'}`, []string{"headers", "state"}},
		{`{$cel: 'data.items.map(i, i.id)'}`, []string{"@result", "body", "data", "i"}}, // and the macro's own variables
		{`{$cel: '"issue." + body.action'}`, []string{"body", "data"}},
		{`{$cel: 'now'}`, []string{"now"}},
		{`{$jmespath: 'data.{id: id, login: user.login}'}`, []string{"body", "data", "id", "login", "user"}},
		{`{$jmespath: '@'}`, nil},
		{`{$var: $.parameters.owner}`, []string{"parameters"}},
		{`{$var: $}`, nil},
		{`{$tpl: {template: "{{a}}/{{b}}", values: {a: {$cel: connection.id}, b: {$var: $.query.x}}}}`, []string{"connection", "query"}},
		{`{$literal: {$cel: state}}`, []string{}},
		{`[{$cel: rawBody}, {x: {$jmespath: 'credentials.token'}}]`, []string{"credentials", "rawBody", "token"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			r := mustCompile(t, tc.src).Reads()
			if tc.names == nil {
				require.True(t, r.All())
				return
			}
			require.False(t, r.All())
			require.ElementsMatch(t, tc.names, r.Names())
			for _, n := range tc.names {
				require.True(t, r.Has(n))
			}
			require.False(t, r.Has("nope"))
		})
	}
	require.True(t, AllReads().Has("x"))
	u := mustCompile(t, `{$cel: state}`).Reads().Union(mustCompile(t, `{$cel: headers}`).Reads())
	require.Equal(t, []string{"headers", "state"}, u.Names())
	require.True(t, u.Union(AllReads()).All())
}

func TestConstantsAreCopied(t *testing.T) {
	v := mustCompile(t, `{a: {b: [1]}}`)
	s := NewScope(context.Background(), nil)
	out, err := v.Eval(s)
	require.NoError(t, err)
	out.(map[string]any)["a"].(map[string]any)["b"] = "changed"
	again, err := v.Eval(s)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": map[string]any{"b": []any{int64(1)}}}, again)
}

func TestAbsentVariables(t *testing.T) {
	v := mustCompile(t, `{s: {$cel: 'state'}, c: {$cel: 'connection.parameters'}, m: {$cel: 'method'}, d: {$cel: 'data'}}`)
	out, err := v.Eval(NewScope(context.Background(), map[string]any{"body": "raw"}))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"s": map[string]any{}, "c": map[string]any{}, "m": nil, "d": "raw"}, out)
}

func TestEvalErrors(t *testing.T) {
	src := "events:\n  - type: x\n    record:\n      id: {$cel: data.issue.id}\n"
	v := mustCompile(t, src)
	_, err := v.Eval(NewScope(context.Background(), map[string]any{"data": map[string]any{}}))
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "m.map.yml", ee.File)
	require.Equal(t, 4, ee.Line)
	require.Equal(t, 22, ee.Col, "points at .issue")
	require.Equal(t, "m.map.yml:4:22: no such key: issue", err.Error())

	v = mustCompile(t, "x: {$jmespath: 'abs(data.s)'}\n")
	_, err = v.Eval(NewScope(context.Background(), map[string]any{"data": map[string]any{"s": "str"}}))
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.Line)
	require.Contains(t, ee.Message, "JMESPath")
}

func TestCostLimit(t *testing.T) {
	v := mustCompile(t, `{$cel: 'lists.range(3000).map(i, lists.range(3000).map(j, i * j)).size()'}`)
	_, err := v.Eval(NewScope(context.Background(), nil))
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Message, "cost limit")
}

// TestCostLimitHookmapFunctions: hookmap's own functions are charged by the size of what
// they work through, so a loop calling them on a 1 MiB body reaches the cost limit (it
// used to run for most of a second, each call charged as one operation).
func TestCostLimitHookmapFunctions(t *testing.T) {
	raw := strings.Repeat("a", 1<<20)
	items := make([]any, 20_000)
	for i := range items {
		items[i] = map[string]any{"id": int64(i), "name": "abcdefghij"}
	}
	vars := map[string]any{"rawBody": raw, "data": map[string]any{"items": items}}
	// (parseJson and toJson are charged as surely, see celfn; reaching the limit with them
	// takes 2 MB of JSON work, slow under the race detector)
	for _, call := range []string{
		`sha256(rawBody)`, `hmacSha256("k", rawBody)`, `hex(rawBody)`, `secureEquals(rawBody, rawBody)`,
		`rawBody.size()`, `parseLinkHeader(rawBody)`, `jmespath(data, "length(items)")`,
		// a list literal is not a comprehension: the estimate at load sends it to the tracker
		`[sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody), sha256(rawBody)]`,
	} {
		t.Run(call, func(t *testing.T) {
			src := "events:\n  - record:\n      $cel: 'lists.range(1000).map(i, " + strings.ReplaceAll(call, "'", "''") + ")'\n"
			if strings.HasPrefix(call, "[") {
				src = "events:\n  - record:\n      $cel: '" + call + "'\n"
			}
			v := mustCompile(t, src)
			_, err := v.Eval(NewScope(context.Background(), vars))
			var ee *EvalError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, "m.map.yml", ee.File)
			require.Equal(t, 3, ee.Line)
			require.Contains(t, ee.Message, "CEL cost limit of 1000000 exceeded")
		})
	}
}

func TestContextCancelled(t *testing.T) {
	v := mustCompile(t, `{$cel: 'lists.range(100000).map(i, i * 2).size()'}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Eval(NewScope(ctx, nil))
	require.ErrorIs(t, err, context.Canceled)
}

func TestNowIsStablePerRun(t *testing.T) {
	v := mustCompile(t, `{a: {$cel: now}, b: {$cel: now}, c: {$cel: 'now() >= now'}}`)
	before := time.Now().UTC().Add(-time.Second)
	out, err := v.Eval(NewScope(context.Background(), nil))
	require.NoError(t, err)
	m := out.(map[string]any)
	require.Equal(t, m["a"], m["b"])
	require.Equal(t, true, m["c"])
	ts, err := time.Parse(time.RFC3339Nano, m["a"].(string))
	require.NoError(t, err)
	require.True(t, ts.After(before))
}

func TestCompileProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // "line:col: message prefix"
	}{
		{"typo", `{$cel: dat.x}`, "1:8: CEL: undeclared reference to 'dat' (did you mean 'data'?)"},
		{"syntax", `{$cel: 'data.x +'}`, "1:17: CEL syntax error: mismatched input"},
		{"type", `{$cel: '1 + "a"'}`, "1:11: CEL: found no matching overload"},
		{"jmespath", `{$jmespath: 'data.['}`, "1:20: JMESPath syntax error"},
		{"unsupported", `{$expr: x}`, `1:2: unsupported formula key "$expr": the supported ones are $cel, $jmespath, $var, $tpl, $literal`},
		{"two keys", `{$cel: x, y: 1}`, "1:2: a formula must be the only key"},
		{"var unknown", `{$var: $.dta.x}`, `1:8: $var "$.dta.x": unknown variable "dta"`},
		{"jmespath unknown variable", `{$jmespath: 'dta.items[0]'}`, `1:13: $jmespath "dta.items[0]": unknown variable "dta"`},
		{"var syntax", `{$var: '$.a[x]'}`, `1:8: $var "$.a[x]": bad index`},
		{"tpl missing", `{$tpl: {template: "{{a}}{{b}}", values: {a: 1}}}`, "1:25: $tpl: no value for placeholder {{b}}"},
		{"tpl unclosed", `{$tpl: {template: "x{{a", values: {a: 1}}}`, "1:21: $tpl: unclosed {{"},
		{"tpl bad key", `{$tpl: {template: "x", vals: {}}}`, `1:24: unknown key "vals" in $tpl`},
		{"duplicate key", "a: 1\na: 2\n", `2:1: duplicate key "a"`},
		{"non-string cel", `{$cel: {a: 1}}`, "1:2: $cel needs an expression string, got a mapping"},
		{"jmespath fn", `{$cel: 'jmespath(data, "[")'}`, "1:24: jmespath(): JMESPath syntax error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := compile(t, tc.src)
			require.NotEmpty(t, probs)
			got := ""
			for _, p := range probs {
				got += itoa(p.Line) + ":" + itoa(p.Col) + ": " + p.Message + "\n"
			}
			require.True(t, strings.HasPrefix(got, tc.want), "got %s", got)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
