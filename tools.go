//go:build tools

// Package hookmap pins the dependencies the packages under construction use, so that
// `go mod tidy` keeps them while the code that imports them is written.
package hookmap

import (
	_ "cel.dev/cel-go/cel"
	_ "github.com/google/uuid"
	_ "github.com/jmespath/go-jmespath"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
	_ "google.golang.org/grpc"
	_ "modernc.org/sqlite"
)
