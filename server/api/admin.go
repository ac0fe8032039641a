package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

type adminService struct {
	*Services
	hookmapv1.UnimplementedAdminServiceServer
}

var workspaceID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func workspaceProto(w *store.Workspace) *hookmapv1.Workspace {
	return &hookmapv1.Workspace{Id: w.ID, Name: w.Name, CreateTime: timestamppb.New(w.CreateTime)}
}

func (s *adminService) CreateWorkspace(ctx context.Context, req *hookmapv1.CreateWorkspaceRequest) (*hookmapv1.Workspace, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if !workspaceID.MatchString(req.GetId()) {
		return nil, invalid("id", "must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit")
	}
	w := &store.Workspace{ID: req.GetId(), Name: req.GetName(), CreateTime: time.Now().UTC()}
	if err := s.Core.Store.CreateWorkspace(ctx, w); err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	return workspaceProto(w), nil
}

func (s *adminService) ListWorkspaces(ctx context.Context, req *hookmapv1.ListWorkspacesRequest) (*hookmapv1.ListWorkspacesResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ws, next, err := s.Core.Store.ListWorkspaces(ctx, store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(ctx, s.Logger, pageTokenError(err))
	}
	resp := &hookmapv1.ListWorkspacesResponse{NextPageToken: next}
	for _, w := range ws {
		resp.Workspaces = append(resp.Workspaces, workspaceProto(w))
	}
	return resp, nil
}

func (s *adminService) CreateApiKey(ctx context.Context, req *hookmapv1.CreateApiKeyRequest) (*hookmapv1.CreateApiKeyResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if req.GetWorkspaceId() == "" {
		return nil, invalid("workspace_id", "required")
	}
	if _, err := s.Core.Store.GetWorkspace(ctx, req.GetWorkspaceId()); errors.Is(err, store.ErrNotFound) {
		return nil, notFound("workspace", req.GetWorkspaceId())
	} else if err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	secret := "hmk_" + secrets.RandomToken(32)
	sum := sha256.Sum256([]byte(secret))
	k := &store.APIKey{
		ID: "key_" + secrets.RandomToken(10), WorkspaceID: req.GetWorkspaceId(), Name: req.GetName(),
		Hash: sum[:], CreateTime: time.Now().UTC(),
	}
	if err := s.Core.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	return &hookmapv1.CreateApiKeyResponse{
		ApiKey: &hookmapv1.ApiKey{Id: k.ID, WorkspaceId: k.WorkspaceID, Name: k.Name, CreateTime: timestamppb.New(k.CreateTime)},
		Secret: secret,
	}, nil
}

func (s *adminService) RevokeApiKey(ctx context.Context, req *hookmapv1.RevokeApiKeyRequest) (*hookmapv1.RevokeApiKeyResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	err := s.Core.Store.RevokeAPIKey(ctx, req.GetId(), time.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("API key", req.GetId())
	}
	if err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	return &hookmapv1.RevokeApiKeyResponse{}, nil
}
