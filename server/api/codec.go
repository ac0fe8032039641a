package api

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	gproto "google.golang.org/protobuf/proto"

	"github.com/hookmap/hookmap/server/core"
)

// Codec is the server's codec: protobuf, except that a request that cannot be decoded
// (malformed, truncated, nested past protobuf's recursion limit) is answered
// INVALID_ARGUMENT by the interceptors, where grpc-go alone answers INTERNAL. Unmarshal
// leaves such a message empty, notes the error, and returns nil; the interceptors, which
// see every request after it is decoded, take the note. Install it with
// grpc.ForceServerCodecV2.
type Codec struct{}

var (
	base      = encoding.GetCodecV2(proto.Name)
	malformed sync.Map // proto.Message (pointer) → error
)

// Name is the name of the codec it replaces.
func (Codec) Name() string { return proto.Name }

// Marshal marshals a response.
func (Codec) Marshal(v any) (mem.BufferSlice, error) { return base.Marshal(v) }

// Unmarshal decodes a request; see Codec.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(gproto.Message)
	if !ok {
		return err
	}
	gproto.Reset(m)
	malformed.Store(m, err)
	return nil
}

// takeMalformed returns INVALID_ARGUMENT when Codec could not decode req (forgetting it),
// nil otherwise.
func takeMalformed(req any) error {
	if _, ok := req.(gproto.Message); !ok {
		return nil
	}
	err, ok := malformed.LoadAndDelete(req)
	if !ok {
		return nil
	}
	return failed(codes.InvalidArgument, core.ReasonMalformedRequest, fmt.Sprintf("the request message cannot be decoded: %v", err))
}
