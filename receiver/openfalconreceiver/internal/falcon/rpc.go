package falcon

import (
	"fmt"
	"net/rpc"
	"sync"
	"time"
)

// TransferResponse is transfer's reply to Transfer.Update, and the data of
// its POST /api/push reply. Transfer declares it without JSON tags, so the
// keys go out capitalised; clients that parse them need that.
type TransferResponse struct {
	Message string
	Total   int
	Invalid int
	Latency int64 // milliseconds spent on the push
}

// NewTransferResponse is the reply to a push of total items, invalid of
// them dropped, handled since start.
func NewTransferResponse(total, invalid int, start time.Time) TransferResponse {
	return TransferResponse{Message: "ok", Total: total, Invalid: invalid, Latency: time.Since(start).Milliseconds()}
}

// NullRPCRequest is Transfer.Ping's argument.
type NullRPCRequest struct{}

// SimpleRPCResponse is Transfer.Ping's reply; transfer tags its field "code".
type SimpleRPCResponse struct {
	Code int `json:"code"`
}

// Handler takes the items of one push and returns how many were invalid, or
// an error when the push as a whole could not be taken (the pipeline refused
// it).
type Handler func(items []Item) (invalid int, err error)

// Transfer is the "Transfer" service of transfer's RPC port. net/rpc finds
// its methods by reflection: it must have no other exported methods.
type Transfer struct {
	handle Handler
}

// Update is Transfer.Update: params [[item, ...]], reply TransferResponse.
func (t *Transfer) Update(args *UpdateArgs, reply *TransferResponse) error {
	start := time.Now()
	defer args.Release()
	invalid, err := t.handle(args.Items)
	if err != nil {
		return err
	}
	*reply = NewTransferResponse(len(args.Items), invalid, start)
	return nil
}

// Ping is Transfer.Ping: agents' liveness check, answered {"code":0}.
func (t *Transfer) Ping(_ NullRPCRequest, _ *SimpleRPCResponse) error {
	return nil
}

// NewRPCServer returns a net/rpc server offering the Transfer service, for
// connections served with ServerCodec (or net/rpc/jsonrpc's codec: the
// wire format is the same).
func NewRPCServer(h Handler) (*rpc.Server, error) {
	s := rpc.NewServer()
	if err := s.RegisterName("Transfer", &Transfer{handle: h}); err != nil {
		return nil, fmt.Errorf("registering the Transfer service: %w", err)
	}
	return s, nil
}

// UpdateArgs are Transfer.Update's params: the items, in a pooled buffer
// given back when Update returns. ServerCodec fills them as it reads the
// request; encoding/json (the HTTP listeners, net/rpc/jsonrpc's codec)
// through UnmarshalJSON, which decodes with a pooled Decoder.
type UpdateArgs struct {
	Items []Item
	buf   *buffer
}

// UnmarshalJSON decodes the items.
func (a *UpdateArgs) UnmarshalJSON(b []byte) error {
	a.Release()
	buf := getBuffer()
	items, err := buf.decode(b)
	if err != nil {
		buf.release()
		return updateParamsError(err)
	}
	a.Items, a.buf = items, buf
	return nil
}

// updateParamsError is the call's error for params that are not items.
func updateParamsError(err error) error {
	return fmt.Errorf("Transfer.Update params: %w", err)
}

// Release gives the buffer of the items back; they must not be used after.
func (a *UpdateArgs) Release() {
	if a.buf != nil {
		a.buf.release()
		a.buf, a.Items = nil, nil
	}
}

// buffer is a Decoder with room for the items of a push, reused between
// pushes.
type buffer struct {
	dec   Decoder
	items []Item
}

// maxPooledItems keeps one huge push from pinning its buffer forever.
const maxPooledItems = 1 << 16

var buffers = sync.Pool{New: func() any { return new(buffer) }}

// getBuffer takes a buffer from the pool; release gives it back.
func getBuffer() *buffer { return buffers.Get().(*buffer) }

// decode decodes a push into the buffer and returns its items, valid until
// release.
func (b *buffer) decode(data []byte) ([]Item, error) {
	items, err := b.dec.Decode(data, b.items[:0])
	if err != nil {
		clear(b.items[:cap(b.items)]) // items decoded before the error
		return nil, err
	}
	b.items = items
	return items, nil
}

// release gives the buffer back for another push.
func (b *buffer) release() {
	if cap(b.items) > maxPooledItems {
		b.items = nil
	}
	clear(b.items) // drop the strings
	b.items = b.items[:0]
	buffers.Put(b)
}
