// Command subscribe creates a connection to the bundled example-webhook connector and a
// subscription to its "message" event, then prints the URL to POST messages to.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/clients/go/hookmap"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := hookmap.Dial(ctx, cmp.Or(os.Getenv("HOOKMAP_ADDR"), "127.0.0.1:7070"),
		hookmap.WithInsecure(), hookmap.WithToken(os.Getenv("HOOKMAP_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Reuse the connection named "demo" if an earlier run made it.
	var conn *hookmapv1.Connection
	for cn, err := range c.Connections.AllConnections(ctx, nil) {
		if err != nil {
			log.Fatal(err)
		}
		if cn.GetConnectorKey() == "example-webhook" && cn.GetName() == "demo" {
			conn = cn
			break
		}
	}
	if conn == nil {
		conn, err = c.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
			ConnectorKey: "example-webhook", Name: "demo",
		})
		if err != nil {
			log.Fatal(err)
		}
	}

	params, err := structpb.NewStruct(map[string]any{"channel": "general"})
	if err != nil {
		log.Fatal(err)
	}
	// The request id makes the call idempotent: a retry, or a second run, gets the same
	// subscription, and the client may retry it when the server is unavailable.
	sub, err := c.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "message", Parameters: params,
		RequestId: "example-" + conn.GetId(),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("connection %s\nsubscription %s (%s)\n", conn.GetId(), sub.GetId(), sub.GetStatus())
	fmt.Printf("curl -X POST -H 'Content-Type: application/json' -d '{\"id\":\"m1\",\"order_id\":1152921504606846977}' %s\n", sub.GetWebhookUri())
}
