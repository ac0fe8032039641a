package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/metrics"
	"github.com/hookmap/hookmap/server/store"
)

// DefaultWorkspace is the workspace of dev mode and of admin calls that name none.
const DefaultWorkspace = "default"

// WorkspaceHeader lets the admin token act on a workspace other than default.
const WorkspaceHeader = "x-hookmap-workspace"

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyPrincipal
)

// Principal is who is calling.
type Principal struct {
	WorkspaceID string
	Admin       bool
}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

func principal(ctx context.Context) Principal {
	p, _ := ctx.Value(keyPrincipal).(Principal)
	return p
}

// workspace returns the caller's workspace id.
func workspace(ctx context.Context) string { return principal(ctx).WorkspaceID }

// Auth authenticates calls. With DevMode every call is the admin of workspace default.
type Auth struct {
	DevMode    bool
	AdminToken string
	Store      store.Store
	// Skip lists full method names that need no auth (health).
	Skip map[string]bool
}

// ErrUnauthenticated is returned for a missing or wrong token.
var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or invalid token: send `authorization: Bearer <token>` (the admin token or a workspace API key)")

func (a *Auth) authenticate(ctx context.Context, method string) (context.Context, error) {
	if a.DevMode || a.Skip[method] {
		return context.WithValue(ctx, keyPrincipal, Principal{WorkspaceID: DefaultWorkspace, Admin: true}), nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	if v := md.Get("authorization"); len(v) > 0 {
		token, _ = strings.CutPrefix(v[0], "Bearer ")
		token = strings.TrimSpace(token)
	}
	if token == "" {
		return nil, errUnauthenticated
	}
	if a.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.AdminToken)) == 1 {
		ws := DefaultWorkspace
		if v := md.Get(WorkspaceHeader); len(v) > 0 && v[0] != "" {
			ws = v[0]
		}
		return context.WithValue(ctx, keyPrincipal, Principal{WorkspaceID: ws, Admin: true}), nil
	}
	sum := sha256.Sum256([]byte(token))
	k, err := a.Store.GetAPIKeyByHash(ctx, sum[:])
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnauthenticated
		}
		return nil, status.Error(codes.Unavailable, "cannot check the token now")
	}
	if !k.RevokeTime.IsZero() {
		return nil, status.Error(codes.Unauthenticated, "API key revoked")
	}
	return context.WithValue(ctx, keyPrincipal, Principal{WorkspaceID: k.WorkspaceID}), nil
}

// checkWorkspace refuses a call of the admin token on a workspace that does not exist
// (x-hookmap-workspace naming an unknown one) with NOT_FOUND, reason WORKSPACE_NOT_FOUND,
// rather than with whatever the first read or write in it would say. API keys belong to
// existing workspaces and dev mode acts on default, which always exists; AdminService
// calls act on no workspace.
func (a *Auth) checkWorkspace(ctx context.Context, method string) error {
	p := principal(ctx)
	if !p.Admin || p.WorkspaceID == DefaultWorkspace || !strings.HasPrefix(method, "/hookmap.v1.") ||
		strings.HasPrefix(method, "/"+hookmapv1.AdminService_ServiceDesc.ServiceName+"/") {
		return nil
	}
	_, err := a.Store.GetWorkspace(ctx, p.WorkspaceID)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return failed(codes.NotFound, core.ReasonWorkspaceNotFound, "workspace "+core.Q(p.WorkspaceID)+" not found (named by "+WorkspaceHeader+"; AdminService.CreateWorkspace creates it)")
	default:
		return failed(codes.Unavailable, "", "cannot check the workspace now")
	}
}

// requireAdmin fails unless the caller holds the admin token.
func requireAdmin(ctx context.Context) error {
	if !principal(ctx).Admin {
		return failed(codes.PermissionDenied, core.ReasonAdminRequired, "this call needs the admin token")
	}
	return nil
}

// Chain is the interceptor chain: recovery, request id, logging, metrics, auth.
type Chain struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Auth    *Auth
}

func (c *Chain) recovered(ctx context.Context, method string, p any) error {
	c.Logger.Error("panic in gRPC handler", "method", method, "request_id", requestID(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error (request %s)", requestID(ctx))
}

func (c *Chain) observe(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	if c.Metrics != nil {
		c.Metrics.GRPCRequests.WithLabelValues(method, code.String()).Inc()
		c.Metrics.GRPCLatency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	}
	lvl := slog.LevelDebug
	if code == codes.Internal || code == codes.Unknown {
		lvl = slog.LevelError
	}
	c.Logger.Log(ctx, lvl, "grpc", "method", method, "code", code.String(), "duration", time.Since(start), "request_id", requestID(ctx))
}

func newRequestID(ctx context.Context) context.Context {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-request-id"); len(v) > 0 && len(v[0]) <= 128 {
			id = v[0]
		}
	}
	if id == "" {
		id = uuid.NewString()
	}
	return context.WithValue(ctx, keyRequestID, id)
}

// Unary is the unary interceptor.
func (c *Chain) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	ctx = newRequestID(ctx)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = c.recovered(ctx, info.FullMethod, p)
		}
		c.observe(ctx, info.FullMethod, start, err)
	}()
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", requestID(ctx)))
	undecodable := takeMalformed(req)
	// authed is a new variable: the deferred observe must keep reading the request's own
	// context (with its request id) when authentication fails and returns none.
	authed, err := c.Auth.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if err := c.Auth.checkWorkspace(authed, info.FullMethod); err != nil {
		return nil, err
	}
	if undecodable != nil {
		return nil, undecodable
	}
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	return handler(authed, req)
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// RecvMsg receives a request and holds it to what Unary holds unary requests to: decoded,
// and within the request limits.
func (w *wrappedStream) RecvMsg(m any) error {
	if err := w.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := takeMalformed(m); err != nil {
		return err
	}
	return checkRequest(m)
}

// Stream is the stream interceptor.
func (c *Chain) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	ctx := newRequestID(ss.Context())
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = c.recovered(ctx, info.FullMethod, p)
		}
		c.observe(ctx, info.FullMethod, start, err)
	}()
	_ = ss.SetHeader(metadata.Pairs("x-request-id", requestID(ctx)))
	authed, err := c.Auth.authenticate(ctx, info.FullMethod)
	if err != nil {
		return err
	}
	if err := c.Auth.checkWorkspace(authed, info.FullMethod); err != nil {
		return err
	}
	return handler(srv, &wrappedStream{ServerStream: ss, ctx: authed})
}
