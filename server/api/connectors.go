package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
)

type connectorService struct {
	*Services
	hookmapv1.UnimplementedConnectorServiceServer
}

func connectorProto(c *engine.Connector) *hookmapv1.Connector {
	out := &hookmapv1.Connector{
		Key: c.Key, Name: c.Name, ParametersSchema: schemaProto(c.ParametersSchema),
		ConnectionParametersSchema: schemaProto(c.ConnectionParametersSchema), CredentialsSchema: schemaProto(c.CredentialsSchema),
	}
	for _, k := range value.SortedKeys(c.Events) {
		ev := c.Events[k]
		out.Events = append(out.Events, &hookmapv1.ConnectorEvent{
			Key: ev.Key, Name: ev.Name, ImplementationType: string(ev.Type), Methods: value.SortedKeys(ev.Methods),
			ParametersSchema: schemaProto(ev.ParametersSchema), Schema: schemaProto(ev.Schema),
		})
	}
	for _, k := range value.SortedKeys(c.GlobalWebhooks) {
		out.GlobalWebhooks = append(out.GlobalWebhooks, &hookmapv1.ConnectorGlobalWebhook{Key: k, Name: c.GlobalWebhooks[k].Name})
	}
	return out
}

// schemaProto returns a schema's document (nil when absent or not representable).
func schemaProto(s *engine.Schema) *structpb.Struct {
	if s == nil {
		return nil
	}
	st, err := structFromPlain(s.Raw())
	if err != nil {
		return nil
	}
	return st
}

func diagnosticsProto(ds []engine.Diagnostic) []*hookmapv1.Diagnostic {
	out := make([]*hookmapv1.Diagnostic, 0, len(ds))
	for _, d := range ds {
		out = append(out, &hookmapv1.Diagnostic{File: d.File, Line: int32(d.Line), Column: int32(d.Col), Message: d.Message})
	}
	return out
}

func (s *connectorService) ListConnectors(ctx context.Context, _ *hookmapv1.ListConnectorsRequest) (*hookmapv1.ListConnectorsResponse, error) {
	resp := &hookmapv1.ListConnectorsResponse{}
	for _, c := range s.Core.Registry.Connectors() {
		resp.Connectors = append(resp.Connectors, connectorProto(c))
	}
	at, diags := s.Core.Registry.LastLoad()
	resp.LoadTime = ts(at)
	if principal(ctx).Admin { // they name the server's files
		resp.Diagnostics = diagnosticsProto(diags)
	}
	return resp, nil
}

func (s *connectorService) GetConnector(ctx context.Context, req *hookmapv1.GetConnectorRequest) (*hookmapv1.GetConnectorResponse, error) {
	if req.GetKey() == "" {
		return nil, invalid("key", "required")
	}
	c, ok := s.Core.Registry.Connector(req.GetKey())
	if !ok {
		return nil, notFound("connector", req.GetKey())
	}
	return &hookmapv1.GetConnectorResponse{Connector: connectorProto(c)}, nil
}

func (s *connectorService) ValidateConnectors(ctx context.Context, _ *hookmapv1.ValidateConnectorsRequest) (*hookmapv1.ValidateConnectorsResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	set, diags := s.Core.Registry.Validate()
	resp := &hookmapv1.ValidateConnectorsResponse{Diagnostics: diagnosticsProto(diags)}
	for _, c := range set.Connectors() {
		resp.ValidConnectors = append(resp.ValidConnectors, c.Key)
	}
	return resp, nil
}

func (s *connectorService) ReloadConnectors(ctx context.Context, _ *hookmapv1.ReloadConnectorsRequest) (*hookmapv1.ReloadConnectorsResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	res := s.Core.Registry.Reload()
	s.Logger.Info("connectors reloaded", "loaded", len(res.Loaded), "kept_previous", res.KeptPrevious, "problems", len(res.Diagnostics))
	return &hookmapv1.ReloadConnectorsResponse{
		Diagnostics: diagnosticsProto(res.Diagnostics), Loaded: res.Loaded, KeptPrevious: res.KeptPrevious,
	}, nil
}

func (s *connectorService) EvaluateMethod(ctx context.Context, req *hookmapv1.EvaluateMethodRequest) (*hookmapv1.EvaluateMethodResponse, error) {
	out, err := s.Core.EvaluateMethod(ctx, core.EvaluateInput{
		ConnectorKey: req.GetConnectorKey(), EventKey: req.GetEventKey(), GlobalWebhookKey: req.GetGlobalWebhookKey(),
		Method: req.GetMethod(), Input: plainFromStruct(req.GetInput()), AllowSideEffects: req.GetAllowSideEffects(),
	})
	if err != nil {
		// Like CreateSubscription: the app's answer, the network guard's refusal or an
		// unreachable app is said, with its reason, never hidden behind INTERNAL.
		return nil, toStatus(ctx, s.Logger, core.AppError(ctx, req.GetMethod()+" failed", err))
	}
	v, err := valueFromPlain(out)
	if err != nil {
		return nil, failed(codes.FailedPrecondition, core.ReasonMappingFailed, "result cannot be returned: "+err.Error())
	}
	return &hookmapv1.EvaluateMethodResponse{Output: v}, nil
}

func (s *connectorService) SetConnectorParameters(ctx context.Context, req *hookmapv1.SetConnectorParametersRequest) (*hookmapv1.SetConnectorParametersResponse, error) {
	if req.GetConnectorKey() == "" {
		return nil, invalid("connector_key", "required")
	}
	if err := s.Core.SetConnectorParameters(ctx, workspace(ctx), req.GetConnectorKey(), plainFromStruct(req.GetParameters())); err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	return &hookmapv1.SetConnectorParametersResponse{}, nil
}

func (s *connectorService) ListGlobalWebhooks(ctx context.Context, req *hookmapv1.ListGlobalWebhooksRequest) (*hookmapv1.ListGlobalWebhooksResponse, error) {
	if req.GetConnectorKey() == "" {
		return nil, invalid("connector_key", "required")
	}
	c, err := s.Core.Connector(req.GetConnectorKey())
	if err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	resp := &hookmapv1.ListGlobalWebhooksResponse{}
	for _, k := range value.SortedKeys(c.GlobalWebhooks) {
		g, err := s.Core.EnsureGlobalWebhook(ctx, workspace(ctx), c.Key, k)
		if err != nil {
			return nil, toStatus(ctx, s.Logger, err)
		}
		resp.GlobalWebhooks = append(resp.GlobalWebhooks, &hookmapv1.GlobalWebhook{
			ConnectorKey: c.Key, Key: k, Id: g.ID, Url: s.Core.GlobalWebhookURL(g.ID),
		})
	}
	return resp, nil
}
