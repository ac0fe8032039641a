// Package core is hookmap's business logic shared by the gRPC services and the HTTP
// receiver: connections and their variables, the subscription lifecycle, running handle
// on a delivery and committing what it produced. It knows nothing of gRPC or HTTP framing.
package core
