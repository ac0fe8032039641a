package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

// Core holds what the services and the receiver share.
type Core struct {
	Store      store.Store
	Box        *secrets.Box
	Registry   *registry.Registry
	Hub        *hub.Hub
	HTTP       engine.HTTPDoer // outbound client (SSRF-guarded) for rest-api-mapping
	PublicURL  string          // base of every URL given to external apps, no trailing slash
	Logger     *slog.Logger
	Now        func() time.Time
	MaxRespLen int64
	// Instance names this process among those sharing the store (the owner of its
	// leases); "" picks a random one.
	Instance string
	// AuthMetrics counts credential renewals; nil for none.
	AuthMetrics AuthMetrics
	// EvalTimeout bounds a method of type mapping's run, and all the formulas of one
	// delivery together (verify, handle, the handles it routes to); 0 means
	// engine.DefaultTimeout.
	EvalTimeout time.Duration
	// FetchMetrics, when set, counts fetch runs by outcome.
	FetchMetrics FetchMetrics
	// ExactBackoff turns off the jitter of fetch retries (hookmap test: reports are the
	// same on every run).
	ExactBackoff bool

	running      inflight
	opened       openedCache        // what the receiver's handles opened, per subscription
	renewals     singleflight.Group // credential renewals, one per connection at a time
	instanceOnce sync.Once
	fetcher      fetcher
}

// InstanceID is the name of this process among those sharing the store.
func (c *Core) InstanceID() string {
	c.instanceOnce.Do(func() {
		if c.Instance == "" {
			host, _ := os.Hostname()
			c.Instance = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), secrets.RandomToken(6))
		}
	})
	return c.Instance
}

func (c *Core) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// WebhookURI is the URL of a subscription.
func (c *Core) WebhookURI(subscriptionID string) string {
	return strings.TrimRight(c.PublicURL, "/") + "/hooks/" + subscriptionID
}

// GlobalWebhookURL is the URL of a global webhook.
func (c *Core) GlobalWebhookURL(id string) string {
	return strings.TrimRight(c.PublicURL, "/") + "/hooks/g/" + id
}

// RunOptions are the options every method run gets: the SSRF-guarded client, the
// response size limit, the server's clock (when it has its own: the engine's default is
// time.Now, as c.now's) and the evaluation time limit. c.Now is given as it is, not as the
// method value c.now, which would be made anew for every run.
func (c *Core) RunOptions() engine.RunOptions {
	return engine.RunOptions{HTTP: c.HTTP, MaxResponseBytes: c.MaxRespLen, Now: c.Now, Timeout: c.EvalTimeout}
}

// Connector returns a loaded connector or FAILED_PRECONDITION.
func (c *Core) Connector(key string) (*engine.Connector, error) {
	conn, ok := c.Registry.Connector(key)
	if !ok {
		return nil, Errorf(codes.FailedPrecondition, "connector %s is not loaded", Q(key)).WithReason(ReasonConnectorNotLoaded)
	}
	return conn, nil
}

// Event returns a connector's event or FAILED_PRECONDITION.
func (c *Core) Event(connectorKey, eventKey string) (*engine.Connector, *engine.Event, error) {
	conn, err := c.Connector(connectorKey)
	if err != nil {
		return nil, nil, err
	}
	ev, ok := conn.Events[eventKey]
	if !ok {
		return nil, nil, Errorf(codes.FailedPrecondition, "connector %s has no event %s", Q(connectorKey), Q(eventKey)).WithReason(ReasonEventNotFound)
	}
	return conn, ev, nil
}

func credentialsAAD(workspaceID, connectionID string) string {
	return "connection-credentials:" + workspaceID + ":" + connectionID
}

func connectorParamsAAD(workspaceID, connectorKey string) string {
	return "connector-parameters:" + workspaceID + ":" + connectorKey
}

func webhookSecretAAD(subscriptionID string) string {
	return "webhook-secret:" + subscriptionID
}

// ConnectorParameters returns the workspace's parameters for a connector ({} when unset).
func (c *Core) ConnectorParameters(ctx context.Context, workspaceID, connectorKey string) (map[string]any, error) {
	sealed, err := c.Store.GetConnectorParameters(ctx, workspaceID, connectorKey)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, err
	}
	return c.Box.OpenValue(sealed, connectorParamsAAD(workspaceID, connectorKey))
}

// SetConnectorParameters stores the workspace's parameters for a connector, sealed.
func (c *Core) SetConnectorParameters(ctx context.Context, workspaceID, connectorKey string, params map[string]any) error {
	conn, err := c.Connector(connectorKey)
	if err != nil {
		return err
	}
	if params == nil {
		params = map[string]any{}
	}
	if conn.ParametersSchema != nil {
		if v := conn.ParametersSchema.Validate("parameters", params); len(v) > 0 {
			return Invalid("parameters do not match the connector's parametersSchema", v)
		}
	}
	sealed, err := c.Box.SealValue(params, connectorParamsAAD(workspaceID, connectorKey))
	if err != nil {
		return err
	}
	return c.Store.SetConnectorParameters(ctx, workspaceID, connectorKey, sealed)
}

// ConnectionVars returns the variables every method of a connection sees: connection,
// connectorParameters and credentials.
func (c *Core) ConnectionVars(ctx context.Context, conn *store.Connection) (map[string]any, error) {
	creds, err := c.openCredentials(conn)
	if err != nil {
		return nil, err
	}
	cp, err := c.ConnectorParameters(ctx, conn.WorkspaceID, conn.ConnectorKey)
	if err != nil {
		return nil, fmt.Errorf("connector parameters: %w", err)
	}
	params := conn.Parameters
	if params == nil {
		params = map[string]any{}
	}
	return map[string]any{
		"connection":          map[string]any{"id": conn.ID, "parameters": params},
		"connectorParameters": cp,
		"credentials":         creds,
	}, nil
}

// openCredentials opens a connection's credentials ({} when it has none).
func (c *Core) openCredentials(conn *store.Connection) (map[string]any, error) {
	if len(conn.Credentials) == 0 {
		return map[string]any{}, nil
	}
	creds, err := c.Box.OpenValue(conn.Credentials, credentialsAAD(conn.WorkspaceID, conn.ID))
	if err != nil {
		return nil, fmt.Errorf("open credentials of connection %s: %w", conn.ID, err)
	}
	return creds, nil
}

// connectionEvent loads a connection of the workspace (NOT_FOUND when absent) and one
// event of its connector (FAILED_PRECONDITION when not loaded).
func (c *Core) connectionEvent(ctx context.Context, workspaceID, connectionID, eventKey string) (*store.Connection, *engine.Event, error) {
	conn, err := c.Store.GetConnection(ctx, workspaceID, connectionID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, Errorf(codes.NotFound, "connection %s not found", Q(connectionID)).WithReason(ReasonResourceNotFound)
		}
		return nil, nil, err
	}
	_, ev, err := c.Event(conn.ConnectorKey, eventKey)
	if err != nil {
		return nil, nil, err
	}
	return conn, ev, nil
}

// SealWebhookSecret seals a subscription's webhook secret as the store keeps it, for
// callers that write a subscription record themselves (the subscriptions a connector test
// starts from).
func (c *Core) SealWebhookSecret(subscriptionID, secret string) ([]byte, error) {
	return c.Box.Seal([]byte(secret), webhookSecretAAD(subscriptionID))
}

// WebhookSecret opens a subscription's webhook secret.
func (c *Core) WebhookSecret(s *store.Subscription) (string, error) {
	if len(s.WebhookSecret) == 0 {
		return "", nil
	}
	b, err := c.Box.Open(s.WebhookSecret, webhookSecretAAD(s.ID))
	if err != nil {
		return "", fmt.Errorf("open webhook secret of subscription %s: %w", s.ID, err)
	}
	return string(b), nil
}

// OpenStream registers a new stream of a consumer with the hub, replacing the consumer's
// older stream: in this process, and in every process sharing the store when it is shared
// (the store numbers the stream and tells the others).
func (c *Core) OpenStream(ctx context.Context, workspaceID, consumer string) (*hub.Stream, error) {
	var gen int64
	if sh, ok := c.Store.(store.Shared); ok {
		var err error
		if gen, err = sh.OpenStream(ctx, workspaceID, consumer); err != nil {
			return nil, err
		}
	}
	return c.Hub.Open(workspaceID, consumer, gen), nil
}
