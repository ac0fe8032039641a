package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
)

// bundledHandle is one handle of a bundled connector and a typical request for it.
type bundledHandle struct {
	name, connector, event, global string
	headers, parameters            map[string]any
	query                          map[string]any
	body                           string
}

var bundledHandles = []bundledHandle{
	{name: "github", connector: "github", event: "repo-events", body: "bench",
		headers: map[string]any{"x-github-event": "issues", "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "content-type": "application/json"}},
	{name: "stripe", connector: "stripe", event: "events",
		body: `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2023-10-16","created":1686089970,"type":"customer.updated","livemode":false,"pending_webhooks":1,` +
			`"data":{"object":{"id":"cus_9s6XKzkNRiz8i3","object":"customer","email":"jenny@example.com","name":"Jenny Rosen","balance":0,"created":1483565364,"metadata":{"order":"6735"}},"previous_attributes":{"email":"j@example.com"}}}`},
	{name: "slack-global", connector: "slack", global: "events",
		body: `{"token":"x","team_id":"T0001","api_app_id":"A0001","type":"event_callback","event_id":"Ev0001","event_time":1700000000,` +
			`"authorizations":[{"team_id":"T0001","user_id":"U0001","is_bot":true}],` +
			`"event":{"type":"message","channel":"C0001","user":"U0002","text":"hello","ts":"1700000000.000100","event_ts":"1700000000.000100","channel_type":"channel"}}`},
	{name: "slack", connector: "slack", event: "events", parameters: map[string]any{"eventTypes": []any{"message"}, "channel": "C0001"},
		body: `{"team_id":"T0001","type":"event_callback","event_id":"Ev0001","event":{"type":"message","channel":"C0001","user":"U0002","text":"hello","ts":"1700000000.000100"}}`},
	{name: "hubspot-global", connector: "hubspot", global: "webhooks",
		body: `[{"eventId":100,"subscriptionId":1,"portalId":62515,"appId":54321,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeFlag":"CREATED","changeSource":"CRM"},` +
			`{"eventId":101,"subscriptionId":2,"portalId":62515,"appId":54321,"occurredAt":1700000000001,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,"propertyName":"email","propertyValue":"a@b.c","changeSource":"CRM"}]`},
	{name: "microsoft-graph", connector: "microsoft-graph", event: "changes",
		body: `{"value":[{"subscriptionId":"0c2d4a6e-1111-2222-3333-444455556666","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","clientState":"secret","changeType":"created",` +
			`"resource":"Users/u1/Messages/m1","tenantId":"t1","resourceData":{"@odata.type":"#Microsoft.Graph.Message","@odata.id":"Users/u1/Messages/m1","@odata.etag":"W/\"CQAAABYAAAA\"","id":"m1"}}]}`},
	{name: "shopify", connector: "shopify", event: "webhook",
		headers: map[string]any{"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
		body:    `{"id":820982911946154508,"email":"jon@example.com","total_price":"254.98","currency":"USD","line_items":[{"id":866550311766439020,"quantity":1,"price":"199.00"}]}`},
	{name: "example-webhook", connector: "example-webhook", event: "message",
		body: `{"messages":[{"id":"m1","text":"hello"},{"id":"m2","text":"again"}]}`},
}

// BenchmarkBundledHandles runs the handle of each bundled connector on a typical request,
// the way the receiver does: fresh variables per request, one Method.Run, no compiling.
//
//	go test ./engine -run '^$' -bench BenchmarkBundledHandles -benchmem
func BenchmarkBundledHandles(b *testing.B) {
	set, diags := Load(filepath.Join("..", "connectors"))
	require.Empty(b, diags)
	for _, bh := range bundledHandles {
		b.Run(bh.name, func(b *testing.B) {
			c, ok := set.Connector(bh.connector)
			require.True(b, ok)
			var m *Method
			if bh.global != "" {
				m = c.GlobalWebhooks[bh.global].Handle
			} else {
				m = c.Events[bh.event].Methods[MethodHandle]
			}
			require.NotNil(b, m)
			raw := []byte(bh.body)
			if bh.body == "bench" {
				var err error
				raw, err = os.ReadFile(filepath.Join("testdata", "bench", "github", "issues.json"))
				require.NoError(b, err)
			}
			data, err := value.Decode(raw)
			require.NoError(b, err)
			headers := map[string]any{"content-type": "application/json"}
			for k, v := range bh.headers {
				headers[k] = v
			}
			vars := func() map[string]any {
				return map[string]any{
					"data": data, "body": data, "rawBody": string(raw), "method": "POST",
					"headers": headers, "query": bh.query, "parameters": bh.parameters,
					"connection": map[string]any{"id": "c1", "parameters": map[string]any{}},
				}
			}
			ctx := context.Background()
			out, err := m.Run(ctx, vars(), RunOptions{})
			require.NoError(b, err)
			events, _ := out.(map[string]any)["events"].([]any)
			require.NotEmpty(b, events, "the request produces events")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Run(ctx, vars(), RunOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
