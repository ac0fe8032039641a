package api

import (
	"context"
	"errors"

	"github.com/hookmap/hookmap/engine"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/store"
)

type connectionService struct {
	*Services
	hookmapv1.UnimplementedConnectionServiceServer
}

var connectionStatuses = map[string]hookmapv1.ConnectionStatus{
	"":                           hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED,
	store.ConnectionConnected:    hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED,
	store.ConnectionPending:      hookmapv1.ConnectionStatus_CONNECTION_STATUS_PENDING,
	store.ConnectionDisconnected: hookmapv1.ConnectionStatus_CONNECTION_STATUS_DISCONNECTED,
}

func connectionProto(c *store.Connection) *hookmapv1.Connection {
	return &hookmapv1.Connection{
		Id: c.ID, ConnectorKey: c.ConnectorKey, Name: c.Name, Parameters: mustStruct(c.Parameters),
		CreateTime: ts(c.CreateTime), UpdateTime: ts(c.UpdateTime), HasCredentials: len(c.Credentials) > 0,
		Status: connectionStatuses[c.Status], LastError: c.LastError, CredentialsExpireTime: ts(c.CredentialsExpireTime),
	}
}

func (s *connectionService) err(ctx context.Context, err error) error {
	return toStatus(ctx, s.Logger, err)
}

func (s *connectionService) CreateConnection(ctx context.Context, req *hookmapv1.CreateConnectionRequest) (*hookmapv1.Connection, error) {
	c, err := s.Core.CreateConnection(ctx, workspace(ctx), core.ConnectionInput{
		ConnectorKey: req.GetConnectorKey(), Name: req.GetName(),
		Parameters: plainFromStruct(req.GetParameters()), Credentials: plainFromStruct(req.GetCredentials()),
	})
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return connectionProto(c), nil
}

func (s *connectionService) get(ctx context.Context, id string) (*store.Connection, error) {
	if id == "" {
		return nil, invalid("id", "required")
	}
	c, err := s.Core.Store.GetConnection(ctx, workspace(ctx), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("connection", id)
	}
	return c, s.err(ctx, err)
}

func (s *connectionService) GetConnection(ctx context.Context, req *hookmapv1.GetConnectionRequest) (*hookmapv1.Connection, error) {
	c, err := s.get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return connectionProto(c), nil
}

func (s *connectionService) ListConnections(ctx context.Context, req *hookmapv1.ListConnectionsRequest) (*hookmapv1.ListConnectionsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	cs, next, err := s.Core.Store.ListConnections(ctx, workspace(ctx), store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, pageTokenError(err))
	}
	resp := &hookmapv1.ListConnectionsResponse{NextPageToken: next}
	for _, c := range cs {
		resp.Connections = append(resp.Connections, connectionProto(c))
	}
	return resp, nil
}

func (s *connectionService) UpdateConnection(ctx context.Context, req *hookmapv1.UpdateConnectionRequest) (*hookmapv1.Connection, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	mask := map[string]bool{}
	if paths := req.GetUpdateMask().GetPaths(); len(paths) > 0 {
		for _, p := range paths {
			switch p {
			case "name", "parameters", "credentials":
				mask[p] = true
			default:
				return nil, invalid("update_mask", "unknown path "+p+" (use name, parameters, credentials)")
			}
		}
	} else {
		mask["name"] = req.GetName() != ""
		mask["parameters"] = req.GetParameters() != nil
		mask["credentials"] = req.GetCredentials() != nil
	}
	c, err := s.Core.UpdateConnection(ctx, workspace(ctx), req.GetId(), core.ConnectionInput{
		Name: req.GetName(), Parameters: plainFromStruct(req.GetParameters()), Credentials: plainFromStruct(req.GetCredentials()),
	}, mask)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("connection", req.GetId())
	}
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return connectionProto(c), nil
}

func (s *connectionService) DeleteConnection(ctx context.Context, req *hookmapv1.DeleteConnectionRequest) (*hookmapv1.DeleteConnectionResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	left, err := s.Core.DeleteConnection(ctx, workspace(ctx), req.GetId(), req.GetForce())
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("connection", req.GetId())
	}
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return &hookmapv1.DeleteConnectionResponse{Leftovers: left}, nil
}

func (s *connectionService) AuthorizeConnection(ctx context.Context, req *hookmapv1.AuthorizeConnectionRequest) (*hookmapv1.AuthorizeConnectionResponse, error) {
	a, err := s.Core.AuthorizeConnection(ctx, workspace(ctx), core.AuthorizeInput{
		ConnectionID: req.GetConnectionId(), ConnectorKey: req.GetConnectorKey(), Name: req.GetName(),
		Parameters: plainFromStruct(req.GetParameters()), ReturnURL: req.GetReturnUrl(),
	})
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return &hookmapv1.AuthorizeConnectionResponse{
		AuthorizationUrl: a.URL, Connection: connectionProto(a.Connection), ExpireTime: ts(a.ExpireTime),
		RedirectUri: s.Core.OAuthCallbackURL(),
	}, nil
}

// pageTokenError turns a store's complaint about a token into INVALID_ARGUMENT.
func pageTokenError(err error) error {
	if errors.Is(err, store.ErrInvalidPageToken) {
		return core.Invalid("page_token: "+err.Error(), []engine.FieldViolation{{Field: "page_token", Description: "not a token this list returned"}})
	}
	return err
}
