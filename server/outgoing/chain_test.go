package outgoing

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

func cel(expr string) map[string]any { return map[string]any{"$cel": expr} }

// A chain is checked at registration: the next webhook exists, no cycle, at most MaxChain
// webhooks, mapping values that compile.
func TestChainRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	url := "https://example.com/"
	e.register(Registration{ID: "c", URL: url})
	e.register(Registration{ID: "b", URL: url, Next: &store.WebhookNext{WebhookID: "c"}})
	e.register(Registration{ID: "a", URL: url, Next: &store.WebhookNext{WebhookID: "b", Data: cel("response.data")}})

	tests := []struct {
		name  string
		r     Registration
		field string
		desc  string
	}{
		{"missing", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "nope"}}, "next.webhook_id", `no webhook "nope"`},
		{"self", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "x"}}, "next.webhook_id", "itself"},
		{"no id", Registration{ID: "x", URL: url, Next: &store.WebhookNext{}}, "next.webhook_id", "required"},
		{"bad cel", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "c", Data: cel("respons.data")}}, "next.data", "respons"},
		{"when not bool", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "c", When: "'yes'"}}, "next.when", "bool"},
		{"when literal", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "c", When: int64(1)}}, "next.when", "must be a boolean"},
		{"headers list", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "c", Headers: []any{"a"}}}, "next.headers", "object"},
		{"bad jmespath", Registration{ID: "x", URL: url, Next: &store.WebhookNext{WebhookID: "c", QueryParams: map[string]any{"q": map[string]any{"$jmespath": "a[["}}}}, "next.query_params", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.Register(ctx, testWorkspace, tc.r)
			f := fields(t, err)
			require.Contains(t, f, tc.field, "violations: %v", f)
			require.Contains(t, f[tc.field], tc.desc)
		})
	}

	// c → a would close the loop a → b → c → a.
	_, err := e.s.Update(ctx, testWorkspace, Registration{ID: "c", Next: &store.WebhookNext{WebhookID: "a"}}, []string{FieldNext})
	require.Contains(t, fields(t, err)["next.webhook_id"], "the chain would loop: c → a → b → c")

	// A chain of MaxChain webhooks is fine; one more is refused, wherever it is added.
	prev := "c"
	for i := 4; i <= MaxChain; i++ { // a, b, c and then d4 … d8
		id := fmt.Sprintf("d%d", i)
		e.register(Registration{ID: id, URL: url})
		_, err := e.s.Update(ctx, testWorkspace, Registration{ID: prev, Next: &store.WebhookNext{WebhookID: id}}, []string{FieldNext})
		require.NoError(t, err, id)
		prev = id
	}
	e.register(Registration{ID: "extra", URL: url})
	_, err = e.s.Update(ctx, testWorkspace, Registration{ID: prev, Next: &store.WebhookNext{WebhookID: "extra"}}, []string{FieldNext})
	require.Contains(t, fields(t, err)["next.webhook_id"], "would call more than 8 webhooks")
	_, err = e.s.Register(ctx, testWorkspace, Registration{ID: "head", URL: url, Next: &store.WebhookNext{WebhookID: "a"}})
	require.Contains(t, fields(t, err)["next.webhook_id"], "head → a → b → c")

	// A webhook another continues into cannot be deleted; the end of a chain can.
	err = e.s.Delete(ctx, testWorkspace, "b")
	require.ErrorIs(t, err, store.ErrInUse)
	require.Contains(t, err.Error(), `next webhook of "a"`)
	require.ErrorIs(t, e.s.Delete(ctx, testWorkspace, "d8"), store.ErrInUse)
	_, err = e.s.Update(ctx, testWorkspace, Registration{ID: "d7"}, []string{FieldNext})
	require.NoError(t, err, "next masked and unset removes it")
	require.NoError(t, e.s.Delete(ctx, testWorkspace, "d8"))
}

// Three webhooks, each call mapped from the previous answer and the trigger's input; the
// caller gets the last answer under the first reference id; every call is recorded.
func TestChainRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	lookup := newRecorder(t, jsonAnswer(200, `{"contact": {"id": 42, "tier": "gold"}}`))
	upsert := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Deal", "d-7")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"deal": "d-7"}`))
	})
	notify := newRecorder(t, jsonAnswer(202, `{"queued": true}`))
	e.register(Registration{ID: "notify", URL: notify.URL, QueryParams: []string{"deal"}, SigningSecret: testSecret})
	e.register(Registration{ID: "upsert", URL: upsert.URL, Next: &store.WebhookNext{
		WebhookID:   "notify",
		When:        "response.status == 201",
		Data:        map[string]any{"text": cel(`"deal " + response.data.deal + " for " + trigger.data.email`)},
		QueryParams: map[string]any{"deal": cel(`response.headers["x-deal"]`)},
	}})
	e.register(Registration{ID: "lookup", URL: lookup.URL, Next: &store.WebhookNext{
		WebhookID: "upsert",
		When:      map[string]any{"$jmespath": "response.data.contact.tier == 'gold'"},
		Data:      map[string]any{"contact": cel("response.data.contact.id"), "source": cel(`trigger.headers["x-source"]`)},
		Headers:   map[string]any{"X-Trace": cel(`trigger.query.trace`), "X-None": nil},
	}, QueryParams: []string{"trace"}})

	res, err := e.s.Trigger(ctx, testWorkspace, Trigger{
		WebhookID: "lookup", Data: map[string]any{"email": "ada@example.com"},
		Headers: map[string]string{"X-Source": "plugin"}, QueryParams: map[string]string{"trace": "t-1"},
	})
	require.NoError(t, err)
	require.False(t, res.Error, res.ErrorMessage)
	require.Equal(t, 202, res.Status)
	require.Equal(t, map[string]any{"queued": true}, res.Data)

	require.Equal(t, `{"contact":42,"source":"plugin"}`, string(upsert.last(t).Body))
	require.Equal(t, "t-1", upsert.last(t).Header.Get("X-Trace"))
	require.NotContains(t, upsert.last(t).Header, "X-None")
	got := notify.last(t)
	require.Equal(t, `{"text":"deal d-7 for ada@example.com"}`, string(got.Body))
	require.Equal(t, "deal=d-7", got.Query)
	require.NotEmpty(t, got.Header.Get("Webhook-Signature"), "each hop keeps its own registration's signing")
	require.NotEqual(t, res.ReferenceID, got.Header.Get("Webhook-Id"), "each hop has its own reference id")

	invs, _, err := e.store.ListInvocations(ctx, testWorkspace, store.InvocationFilter{ChainReferenceID: res.ReferenceID}, store.Page{})
	require.NoError(t, err)
	require.Len(t, invs, 3)
	hops := map[int]*store.Invocation{}
	for _, inv := range invs {
		require.Equal(t, res.ReferenceID, inv.ChainReferenceID)
		hops[inv.Hop] = inv
	}
	require.Equal(t, "lookup", hops[1].WebhookID)
	require.Equal(t, res.ReferenceID, hops[1].ReferenceID)
	require.Equal(t, "upsert", hops[2].WebhookID)
	require.Equal(t, 201, hops[2].Status)
	require.Equal(t, "notify", hops[3].WebhookID)
	require.Equal(t, got.Header.Get("Webhook-Id"), hops[3].ReferenceID)

	// The condition stops the chain: the caller gets the answer that stopped it.
	silver := newRecorder(t, jsonAnswer(200, `{"contact": {"id": 7, "tier": "silver"}}`))
	_, err = e.s.Update(ctx, testWorkspace, Registration{ID: "lookup", URL: silver.URL}, []string{FieldURL})
	require.NoError(t, err)
	calls := len(upsert.requests())
	res = e.trigger(Trigger{WebhookID: "lookup", QueryParams: map[string]string{"trace": "t-2"}})
	require.False(t, res.Error)
	require.Equal(t, map[string]any{"contact": map[string]any{"id": int64(7), "tier": "silver"}}, res.Data)
	require.Len(t, upsert.requests(), calls, "the chain stopped at lookup")
}

// A chain that cannot go on ends with the last answer and error set, saying why.
func TestChainStops(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	trigger := func(id string) *Result {
		t.Helper()
		res, err := e.s.Trigger(t.Context(), testWorkspace, Trigger{WebhookID: id})
		require.NoError(t, err)
		return res
	}
	first := newRecorder(t, jsonAnswer(200, `{"id": 1}`))
	failing := newRecorder(t, jsonAnswer(500, `{}`))
	second := newRecorder(t, jsonAnswer(200, `{}`))
	e.register(Registration{ID: "second", URL: second.URL, Method: "GET"})
	e.register(Registration{ID: "missing-field", URL: first.URL, Next: &store.WebhookNext{WebhookID: "second", When: "response.data.nope == 1"}})
	e.register(Registration{ID: "bad-call", URL: first.URL, Next: &store.WebhookNext{WebhookID: "second", Data: cel("response.data")}})
	e.register(Registration{ID: "failing", URL: failing.URL, Next: &store.WebhookNext{WebhookID: "second"}})

	res := trigger("missing-field")
	require.True(t, res.Error)
	require.Equal(t, 200, res.Status, "the last answer")
	require.Contains(t, res.ErrorMessage, `chain stopped after webhook "missing-field": next.when: no such key: nope`)

	res = trigger("bad-call")
	require.True(t, res.Error)
	require.Contains(t, res.ErrorMessage, `the call of webhook "second" does not fit it: data: webhook "second" uses GET`)

	// Without a condition, an error answer stops the chain.
	res = trigger("failing")
	require.True(t, res.Error)
	require.Equal(t, 500, res.Status)
	require.True(t, strings.HasPrefix(res.ErrorMessage, "endpoint answered 500"), res.ErrorMessage)
	require.Empty(t, second.requests())
}
