package harness

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// RawCodec is a gRPC codec that passes messages through as bytes, for
// tests that record what peers put on the wire or replay encoded messages
// without paying for encoding them again. Unmarshal fills a *[]byte;
// Marshal takes a *[]byte, a BufferMessage or a proto.Message. Its name is
// "proto", so peers see the usual content-subtype. Use it with
// grpc.ForceCodecV2 or grpc.ForceServerCodecV2.
type RawCodec struct{}

// BufferMessage is a message already encoded in buffers (a replay that
// splices new values into recorded bytes).
type BufferMessage interface {
	Buffers() (mem.BufferSlice, error)
}

var _ encoding.CodecV2 = RawCodec{}

func (RawCodec) Name() string { return "proto" }

func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	case BufferMessage:
		return m.Buffers()
	case proto.Message:
		b, err := proto.Marshal(m)
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	return nil, fmt.Errorf("RawCodec cannot marshal %T", v)
}

func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("RawCodec cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}
