package openfalconreceiver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
)

// startRPC listens for transfer's JSON-RPC: Go's net/rpc with the
// net/rpc/jsonrpc codec over raw TCP, one codec per connection, as transfer
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
			lc := &limitedConn{Conn: conn, limit: r.cfg.TransferRPC.MaxRequestSize}
			// ServeCodec returns when the connection ends or a request cannot
			// be framed, after answering the calls in flight; it closes conn.
			r.rpcServer.ServeCodec(&serverCodec{ServerCodec: jsonrpc.NewServerCodec(lc), conn: lc, r: r})
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

// errRequestTooLarge ends a connection whose request passed
// transfer_rpc.max_request_size.
var errRequestTooLarge = errors.New("request larger than transfer_rpc.max_request_size")

// limitedConn bounds the bytes read for one request: jsonrpc's decoder holds
// a whole request in memory, so an endless one must not be read.
type limitedConn struct {
	net.Conn
	read, limit int64
	exceeded    bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.read >= c.limit {
		c.exceeded = true
		return 0, errRequestTooLarge
	}
	if rest := c.limit - c.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	return n, err
}

// serverCodec is net/rpc/jsonrpc's server codec, counting requests it cannot
// read. net/rpc reads requests on one goroutine, so the counter of bytes per
// request needs no lock.
type serverCodec struct {
	rpc.ServerCodec
	conn *limitedConn
	r    *falconReceiver
}

func (c *serverCodec) ReadRequestHeader(req *rpc.Request) error {
	// The budget is per request. The decoder may already hold the start of
	// this request, read with the previous one, so the bound is approximate
	// by at most one read.
	c.conn.read = 0
	err := c.ServerCodec.ReadRequestHeader(req)
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
	case c.conn.exceeded:
		c.r.reject(context.Background(), transferRPC, rejectTooLarge, err)
		c.r.settings.Logger.Warn("Closed an Open-Falcon RPC connection: its request is larger than transfer_rpc.max_request_size; raise it if agents send bigger batches",
			zap.Int64("max_request_size", c.conn.limit), zap.Stringer("remote", c.conn.RemoteAddr()))
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
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
