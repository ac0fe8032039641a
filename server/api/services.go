package api

import (
	"log/slog"

	"google.golang.org/grpc"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/destination"
	"github.com/hookmap/hookmap/server/metrics"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/webhookfile"
)

// Services implements every hookmap.v1 service.
type Services struct {
	Core    *core.Core
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Outgoing sends outgoing webhooks.
	Outgoing *outgoing.Sender
	// WebhooksFile applies the server's webhooks file; nil without --webhooks.
	WebhooksFile *webhookfile.Loader
	// Destinations manages event destinations.
	Destinations *destination.Service
}

// Register registers every service on s.
func (sv *Services) Register(s *grpc.Server) {
	hookmapv1.RegisterConnectorServiceServer(s, &connectorService{Services: sv})
	hookmapv1.RegisterConnectionServiceServer(s, &connectionService{Services: sv})
	hookmapv1.RegisterSubscriptionServiceServer(s, &subscriptionService{Services: sv})
	hookmapv1.RegisterEventServiceServer(s, &eventService{Services: sv})
	hookmapv1.RegisterAdminServiceServer(s, &adminService{Services: sv})
	hookmapv1.RegisterWebhookServiceServer(s, &webhookService{Services: sv, sender: sv.Outgoing})
	hookmapv1.RegisterDestinationServiceServer(s, &destinationService{Services: sv})
}

// ServiceNames are the registered services' full names (for health).
var ServiceNames = []string{
	hookmapv1.ConnectorService_ServiceDesc.ServiceName,
	hookmapv1.ConnectionService_ServiceDesc.ServiceName,
	hookmapv1.SubscriptionService_ServiceDesc.ServiceName,
	hookmapv1.EventService_ServiceDesc.ServiceName,
	hookmapv1.AdminService_ServiceDesc.ServiceName,
	hookmapv1.WebhookService_ServiceDesc.ServiceName,
	hookmapv1.DestinationService_ServiceDesc.ServiceName,
}

func pageSize(n int32) (int, error) {
	if n < 0 {
		return 0, invalid("page_size", "must not be negative")
	}
	return int(n), nil
}
