package openfalconreceiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
)

// startRPC listens for transfer's JSON-RPC: Go's net/rpc over raw TCP with
// net/rpc/jsonrpc's wire format, one codec per connection, as transfer
// serves it and falcon-agent's client speaks it.
func (r *falconReceiver) startRPC(ctx context.Context) error {
	cfg := &r.cfg.TransferRPC
	if cfg.Endpoint == "" {
		return nil
	}
	srv, err := falcon.NewRPCServer(func(items []falcon.Item) (int, error) {
		// net/rpc gives methods no context; a push ends with its reply.
		return r.push(context.Background(), transferRPC, items)
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("transfer_rpc: listening on %s: %w", cfg.Endpoint, err)
	}
	if tlsCfg := cfg.TLS.Get(); tlsCfg != nil {
		c, err := tlsCfg.LoadTLSConfig(ctx)
		if err != nil {
			ln.Close()
			return fmt.Errorf("transfer_rpc.tls: %w", err)
		}
		ln = tls.NewListener(ln, c)
	}
	r.rpcServer, r.rpcListener = srv, ln
	r.addrs[transferRPC] = ln.Addr()
	r.settings.Logger.Info("Open-Falcon receiver listening", zap.String("listener", transferRPC.String()),
		zap.String("endpoint", ln.Addr().String()))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.acceptRPC(ln)
	}()
	return nil
}

func (r *falconReceiver) acceptRPC(ln net.Listener) {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, or the like: as net/http does, wait a
			// little and accept again rather than give up the port.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.settings.Logger.Warn("Accepting an Open-Falcon RPC connection failed; retrying",
				zap.Duration("backoff", backoff), zap.Error(err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !r.track(conn) {
			conn.Close()
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(conn)
			// ServeCodec returns when the connection ends or a request cannot
			// be read, after answering the calls in flight; it closes conn.
			r.rpcServer.ServeCodec(r.newRPCCodec(conn, conn.RemoteAddr().String()))
		}()
	}
}

func (r *falconReceiver) track(conn net.Conn) bool {
	r.connsMu.Lock()
	defer r.connsMu.Unlock()
	if r.stopping {
		return false
	}
	r.conns[conn] = struct{}{}
	return true
}

func (r *falconReceiver) untrack(conn net.Conn) {
	r.connsMu.Lock()
	delete(r.conns, conn)
	r.connsMu.Unlock()
}

// closeConns ends every agent connection: agents keep theirs open for good,
// so shutdown cannot wait for them to hang up. A call in flight still
// completes; its reply is lost and the agent sends again elsewhere.
func (r *falconReceiver) closeConns() {
	r.connsMu.Lock()
	defer r.connsMu.Unlock()
	for c := range r.conns {
		c.Close()
	}
}

// newRPCCodec serves one agent connection: Weft's JSON-RPC codec, which
// reads each request once (net/rpc/jsonrpc's goes over it four times with
// encoding/json), bounded by max_request_size, counting the requests it
// refuses.
func (r *falconReceiver) newRPCCodec(conn io.ReadWriteCloser, remote string) rpc.ServerCodec {
	return &serverCodec{
		ServerCodec: falcon.NewServerCodec(conn, r.cfg.TransferRPC.MaxRequestSize),
		remote:      remote, r: r,
	}
}

// serverCodec counts the requests the codec cannot read, and the calls
// whose params it cannot read.
type serverCodec struct {
	*falcon.ServerCodec
	remote string
	r      *falconReceiver
}

func (c *serverCodec) ReadRequestHeader(req *rpc.Request) error {
	err := c.ServerCodec.ReadRequestHeader(req)
	var malformed *falcon.MalformedRequestError
	switch {
	case err == nil:
	case errors.Is(err, falcon.ErrRequestTooLarge):
		c.r.reject(context.Background(), transferRPC, rejectTooLarge, err)
		c.r.settings.Logger.Warn("Closed an Open-Falcon RPC connection: its request is larger than transfer_rpc.max_request_size; raise it if agents send bigger batches",
			zap.Int64("max_request_size", c.r.cfg.TransferRPC.MaxRequestSize), zap.String("remote", c.remote))
	case errors.As(err, &malformed):
		// Not JSON-RPC: net/rpc closes the connection, as transfer does.
		c.r.reject(context.Background(), transferRPC, rejectMalformed, err)
	}
	// Anything else is the connection ending (EOF, reset, shutdown).
	return err
}

func (c *serverCodec) ReadRequestBody(body any) error {
	err := c.ServerCodec.ReadRequestBody(body)
	if err != nil && body != nil {
		// The params are not an array of items: the client gets the error
		// as the call's reply, and the connection stays up.
		c.r.reject(context.Background(), transferRPC, rejectMalformed, err)
	}
	return err
}
