// Command consume prints every event of the durable consumer "printer" as it arrives,
// and picks up where it left off after a restart (of itself or of hookmap).
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/hookmap/hookmap/clients/go/hookmap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := hookmap.Dial(ctx, cmp.Or(os.Getenv("HOOKMAP_ADDR"), "127.0.0.1:7070"),
		hookmap.WithInsecure(),                        // hookmap serve speaks plaintext gRPC
		hookmap.WithToken(os.Getenv("HOOKMAP_TOKEN"))) // an API key; dev mode needs none
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Consume(ctx, "printer", func(ctx context.Context, ev *hookmap.Event) error {
		var record map[string]any // numbers arrive as json.Number: exact
		if err := ev.Decode(&record); err != nil {
			return err
		}
		fmt.Println(ev.Seq, ev.Type, record)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
