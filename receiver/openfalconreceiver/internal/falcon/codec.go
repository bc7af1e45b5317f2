package falcon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/rpc"
	"strconv"
	"sync"
)

// ServerCodec is the server side of the JSON-RPC transfer speaks — the wire
// format of Go's net/rpc/jsonrpc, which falcon-agent's client uses — for
// net/rpc's Server. It replaces net/rpc/jsonrpc's server codec, which goes
// over every request four times with encoding/json (framing it, copying the
// params, validating them, finding the first one's end); here the bytes are
// read once into a buffer, framed by a light scan, and parsed once: the
// envelope by hand, and Transfer.Update's items by the Decoder on the way,
// straight into the call's UpdateArgs.
//
// Everything a client sees is net/rpc/jsonrpc's: the replies byte for byte,
// the connection closed on a request that is not JSON or not a JSON-RPC
// object, a call failing (and the connection kept) on params of the wrong
// shape. Beyond it, a request larger than the size limit ends the
// connection without being held in memory.
//
// net/rpc reads requests on one goroutine and writes replies from the
// calls' goroutines, serialised; the codec is built for that.
type ServerCodec struct {
	conn  io.ReadWriteCloser
	limit int // bytes one request may take, from its '{' to its '}'

	// Reading, on net/rpc's reading goroutine only. buf[start:end] holds
	// the bytes read and not yet taken; the current request ends at next.
	buf        []byte
	start, end int
	next       int
	readErr    error // of the last read, returned once buf is spent
	fr         framer
	req        request
	cur        *buffer // the current request's Decoder and inlined items
	method     string  // the last method name, reused while requests repeat it

	mu      sync.Mutex // guards seq and pending, shared with the writers
	seq     uint64
	pending map[uint64][]byte // each call's id as its reply echoes it

	wmu  sync.Mutex // guards wbuf
	wbuf []byte

	closeOnce sync.Once
	closeErr  error
}

// ErrRequestTooLarge ends a connection whose request is larger than the
// codec's limit.
var ErrRequestTooLarge = errors.New("JSON-RPC request larger than the size limit")

// MalformedRequestError ends a connection whose request is not JSON, or not
// a JSON-RPC object with a string method, as net/rpc/jsonrpc ends it.
type MalformedRequestError struct{ Err error }

func (e *MalformedRequestError) Error() string { return "not a JSON-RPC request: " + e.Err.Error() }

func (e *MalformedRequestError) Unwrap() error { return e.Err }

// errMissingParams is net/rpc/jsonrpc's reply to a call without params.
var errMissingParams = errors.New("jsonrpc: request body missing params")

// updateMethod is the call whose params are decoded during the envelope.
const updateMethod = "Transfer.Update"

const (
	// initialBuffer holds a Ping or a small push; the buffer doubles from
	// there to the largest request the connection sends (at most the limit).
	initialBuffer = 4 << 10
	// maxKeptBuffer: a connection idle after a larger request gives its
	// buffer back, so one big push does not pin memory on every agent's
	// connection for good (net/rpc/jsonrpc's decoder keeps its largest).
	maxKeptBuffer = 1 << 20
	// maxEmptyReads is how many reads returning nothing, and no error, are
	// taken before the connection is deemed broken, as bufio does.
	maxEmptyReads = 100
)

// NewServerCodec returns a codec reading requests of at most maxRequestSize
// bytes from conn and writing replies to it; Close closes conn.
func NewServerCodec(conn io.ReadWriteCloser, maxRequestSize int64) *ServerCodec {
	limit := math.MaxInt
	if maxRequestSize > 0 && maxRequestSize < int64(limit) {
		limit = int(maxRequestSize)
	}
	return &ServerCodec{conn: conn, limit: limit, pending: make(map[uint64][]byte)}
}

// request is the envelope of one JSON-RPC request, {"method":..,
// "params":[..],"id":..}, read with encoding/json's rules for
// net/rpc/jsonrpc's struct: keys matched ignoring case, the last duplicate
// wins, null leaves the method as it was and unsets params and id.
type request struct {
	method []byte // unescaped; nil when missing
	params []byte // raw JSON; nil when missing or null
	id     []byte // raw JSON; nil when missing or null

	// inline says params were Transfer.Update's and decoded on the way:
	// items (in the request's buffer), or itemsErr when the first param
	// is not an array of items.
	inline   bool
	items    []Item
	itemsErr error
}

// ReadRequestHeader reads the next request and parses it; net/rpc calls it
// on its reading goroutine, ReadRequestBody right after.
func (c *ServerCodec) ReadRequestHeader(r *rpc.Request) error {
	c.cur.releaseIfAny() // net/rpc always reads the body; others may not
	c.cur = nil
	c.consume()
	end, err := c.frame()
	if err != nil {
		return err
	}
	c.next = end
	b := getBuffer()
	c.req = request{}
	if err := b.envelope(c.buf[c.start:end], &c.req); err != nil {
		b.discard()
		return &MalformedRequestError{Err: err}
	}
	if string(c.req.method) != c.method { // no allocation when equal
		c.method = string(c.req.method)
	}
	r.ServiceMethod = c.method
	id := replyID(c.req.id)
	c.mu.Lock()
	c.seq++
	c.pending[c.seq] = id
	r.Seq = c.seq
	c.mu.Unlock()
	if c.req.inline {
		c.cur = b // handed to the call's UpdateArgs, or released, by ReadRequestBody
	} else {
		b.release()
	}
	return nil
}

// ReadRequestBody fills x, the call's argument, from the params; x is nil
// when net/rpc has no method for the request and drops it. Params are an
// array whose first element is the argument, the rest ignored, as
// net/rpc/jsonrpc reads them.
func (c *ServerCodec) ReadRequestBody(x any) error {
	b := c.cur
	c.cur = nil
	args, isUpdate := x.(*UpdateArgs)
	switch {
	case x == nil:
	case c.req.params == nil:
		b.releaseIfAny()
		return errMissingParams
	case isUpdate && b != nil:
		args.Release()
		if c.req.itemsErr != nil {
			b.release()
			return updateParamsError(c.req.itemsErr)
		}
		// The items were decoded with the envelope: no second look.
		args.Items, args.buf = c.req.items, b
		return nil
	default:
		b.releaseIfAny()
		// Ping's params, or params before the method: as net/rpc/jsonrpc
		// reads them, so their errors are its errors. Not the hot path.
		params := [1]any{x}
		return json.Unmarshal(c.req.params, &params)
	}
	b.releaseIfAny()
	return nil
}

// WriteResponse writes a call's reply as net/rpc/jsonrpc's json.Encoder
// writes it: {"id":<id>,"result":<x>,"error":null} or, for a failed call,
// {"id":<id>,"result":null,"error":"<message>"}, and a newline.
func (c *ServerCodec) WriteResponse(r *rpc.Response, x any) error {
	c.mu.Lock()
	id, ok := c.pending[r.Seq]
	delete(c.pending, r.Seq)
	c.mu.Unlock()
	if !ok {
		return errors.New("invalid sequence number in response")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], `{"id":`...)
	if id == nil { // missing or null: a reply has one anyway
		b = append(b, "null"...)
	} else {
		b = append(b, id...)
	}
	b = append(b, `,"result":`...)
	if r.Error == "" {
		var err error
		if b, err = appendResult(b, x); err != nil {
			return err // nothing written, as json.Encoder writes nothing then
		}
		b = append(b, `,"error":null}`+"\n"...)
	} else {
		b = append(b, `null,"error":`...)
		b = appendString(b, r.Error)
		b = append(b, "}\n"...)
	}
	c.wbuf = b
	if cap(c.wbuf) > maxKeptBuffer {
		c.wbuf = nil
	}
	_, err := c.conn.Write(b)
	return err
}

// Close closes the connection, once.
func (c *ServerCodec) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// consume drops the previous request's bytes.
func (c *ServerCodec) consume() {
	c.start = c.next
	if c.start == c.end {
		c.start, c.end, c.next = 0, 0, 0
		if cap(c.buf) > maxKeptBuffer {
			c.buf = nil
		}
	}
}

// frame reads until buf[c.start:end] is one whole JSON object (or a bare
// null), and returns end. Whitespace before it is dropped as it comes.
func (c *ServerCodec) frame() (int, error) {
	c.fr.reset()
	for {
		if !c.fr.started {
			for c.start < c.end && isSpace(c.buf[c.start]) {
				c.start++
			}
		}
		if c.start < c.end {
			n, done, err := c.fr.scan(c.buf[c.start:c.end])
			switch {
			case err != nil:
				return 0, &MalformedRequestError{Err: err}
			case done && n > c.limit, !done && c.end-c.start >= c.limit:
				return 0, ErrRequestTooLarge
			case done:
				return c.start + n, nil
			}
		}
		if err := c.fill(); err != nil {
			return 0, c.cutShort(err)
		}
	}
}

// fill reads more of the current request, making room for it first.
func (c *ServerCodec) fill() error {
	if c.readErr != nil {
		return c.readErr
	}
	if c.start > 0 { // the request to the front, the room after it
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	if c.end == len(c.buf) {
		// Full (frame checked the request is under the limit, so the
		// buffer is too): double it, up to the limit.
		size := min(max(initialBuffer, 2*len(c.buf)), c.limit)
		nb := make([]byte, size)
		copy(nb, c.buf[:c.end])
		c.buf = nb
	}
	for range maxEmptyReads {
		// No more than the limit of this request is ever held.
		n, err := c.conn.Read(c.buf[c.end:min(len(c.buf), c.limit)])
		c.end += n
		if err != nil {
			c.readErr = err
			if n > 0 {
				return nil // the bytes first; the error on the next fill
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	c.readErr = io.ErrNoProgress
	return c.readErr
}

// cutShort is the error of a connection whose reading failed: the end of
// the connection, or, in the middle of a request, a request cut short or,
// when its bytes so far are not JSON, a malformed one (net/rpc/jsonrpc
// sees that before the end, as it checks the syntax byte by byte).
func (c *ServerCodec) cutShort(err error) error {
	if !c.fr.started {
		return err
	}
	if !errors.Is(err, io.EOF) {
		return err // reset, timeout, closed at shutdown
	}
	b := getBuffer()
	defer b.discard()
	var req request
	var syntax *SyntaxError
	perr := b.envelope(c.buf[c.start:c.end], &req)
	if perr == nil || (errors.As(perr, &syntax) && syntax.Truncated) {
		return io.ErrUnexpectedEOF
	}
	return &MalformedRequestError{Err: perr}
}

// envelope parses one request, framed: a JSON object (or null). The params of a
// Transfer.Update whose method comes first — as Go's jsonrpc client and
// falcon-agent send it — are decoded here into b's items; any other params
// are checked and kept raw for ReadRequestBody.
func (b *buffer) envelope(data []byte, req *request) error {
	d := &b.dec
	d.reset(data)
	defer func() { d.data = nil }()
	d.ws()
	if d.pos == len(d.data) {
		return d.unexpectedEnd()
	}
	switch d.data[d.pos] {
	case '{':
	case 'n': // an empty request, as for net/rpc/jsonrpc (see framer)
		if err := d.literal("null"); err != nil {
			return err
		}
		return d.endOfRequest()
	default: // frame saw to it; kept for other callers
		return d.errorf("invalid character %q: a JSON-RPC request is an object", d.data[d.pos])
	}
	d.pos++
	if err := d.enter(); err != nil {
		return err
	}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return d.endOfRequest()
	}
	for {
		key, err := d.key()
		if err != nil {
			return err
		}
		switch envelopeField(key) {
		case envMethod:
			err = d.methodField(req)
		case envParams:
			err = b.paramsField(req)
		case envID:
			req.id, err = d.rawField()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
		d.ws()
		if d.pos == len(d.data) {
			return d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return d.endOfRequest()
		default:
			return d.errorf("invalid character %q after an object field", d.data[d.pos])
		}
	}
}

// endOfRequest checks nothing follows the object.
func (d *Decoder) endOfRequest() error {
	d.ws()
	if d.pos != len(d.data) {
		return d.errorf("invalid character %q after the request", d.data[d.pos])
	}
	return nil
}

// The fields of net/rpc/jsonrpc's request.
const (
	envUnknown = iota
	envMethod
	envParams
	envID
)

// envelopeField matches a key as encoding/json does: exactly, else ignoring
// case (bytes.EqualFold folds as encoding/json does, K and ſ included).
func envelopeField(key []byte) int {
	switch string(key) {
	case "method":
		return envMethod
	case "params":
		return envParams
	case "id":
		return envID
	}
	switch {
	case bytes.EqualFold(key, []byte("method")):
		return envMethod
	case bytes.EqualFold(key, []byte("params")):
		return envParams
	case bytes.EqualFold(key, []byte("id")):
		return envID
	}
	return envUnknown
}

// methodField reads the method: a string, or null for no change; anything
// else is not a JSON-RPC request (net/rpc/jsonrpc fails to decode it).
func (d *Decoder) methodField(req *request) error {
	switch c := d.data[d.pos]; c {
	case '"':
		raw, err := d.unquoted()
		if err != nil {
			return err
		}
		req.method = raw
		return nil
	case 'n':
		return d.literal("null")
	default:
		if err := d.skip(); err != nil {
			return err
		}
		return fmt.Errorf("the method is %s, not a string", kindOf(c))
	}
}

// rawField reads any value and returns its bytes, or nil for null.
func (d *Decoder) rawField() ([]byte, error) {
	if d.data[d.pos] == 'n' {
		return nil, d.literal("null")
	}
	start := d.pos
	if err := d.skip(); err != nil {
		return nil, err
	}
	return d.data[start:d.pos], nil
}

// paramsField reads the params: kept raw, and for Transfer.Update decoded
// into b's items as they are read.
func (b *buffer) paramsField(req *request) error {
	d := &b.dec
	req.inline, req.items, req.itemsErr = false, nil, nil // the last params win
	start := d.pos
	var err error
	switch {
	case d.data[d.pos] == 'n':
		req.params = nil
		return d.literal("null")
	case d.data[d.pos] == '[' && string(req.method) == updateMethod:
		err = b.updateParams(req)
	default:
		err = d.skip()
	}
	if err != nil {
		return err
	}
	req.params = d.data[start:d.pos]
	return nil
}

// updateParams decodes Transfer.Update's params, [[item, ...], ...], as
// net/rpc/jsonrpc would hand the first element to UpdateArgs: an array of
// items, or null (or no element) for none; anything else fails the call.
// Further elements are checked and dropped, as Go drops what does not fit
// its one-element array.
func (b *buffer) updateParams(req *request) error {
	d := &b.dec
	d.pos++ // [
	if err := d.enter(); err != nil {
		return err
	}
	d.ws()
	if d.pos == len(d.data) {
		return d.unexpectedEnd()
	}
	if d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		req.inline = true
		return nil
	}
	switch c := d.data[d.pos]; c {
	case '[':
		clear(b.items) // of earlier params, should the key repeat
		items, err := d.array(b.items[:0])
		b.items = items // so that release drops them, even on error
		if err != nil {
			return err
		}
		req.items = items
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
	default:
		if err := d.skip(); err != nil {
			return err
		}
		req.itemsErr = notAPush(c)
	}
	for {
		d.ws()
		if d.pos == len(d.data) {
			return d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			if err := d.skip(); err != nil {
				return err
			}
		case ']':
			d.pos++
			d.depth--
			req.inline = true
			return nil
		default:
			return d.errorf("invalid character %q after an array element", d.data[d.pos])
		}
	}
}

// discard releases a buffer whose items may be partly decoded.
func (b *buffer) discard() {
	clear(b.items[:cap(b.items)])
	b.items = b.items[:0]
	b.release()
}

// releaseIfAny releases b unless it is nil.
func (b *buffer) releaseIfAny() {
	if b != nil {
		b.release()
	}
}

// replyID is a request's id as net/rpc/jsonrpc's reply echoes it: the same
// JSON, which its encoder compacts and escapes as HTML-safe (<, >, &,
// U+2028, U+2029). Copied: the request's bytes are reused.
func replyID(raw []byte) []byte {
	if raw == nil {
		return nil
	}
	plain := true
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			plain = false
		}
	}
	if plain { // numbers, and most strings: as they are
		return bytes.Clone(raw)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return bytes.Clone(raw) // the envelope parser checked it: not expected
	}
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compact.Bytes())
	return escaped.Bytes()
}

// appendResult appends a call's reply value as encoding/json does; the
// Transfer service's two replies without reflection.
func appendResult(b []byte, x any) ([]byte, error) {
	switch v := x.(type) {
	case *TransferResponse:
		b = append(b, `{"Message":`...)
		b = appendString(b, v.Message)
		b = append(b, `,"Total":`...)
		b = strconv.AppendInt(b, int64(v.Total), 10)
		b = append(b, `,"Invalid":`...)
		b = strconv.AppendInt(b, int64(v.Invalid), 10)
		b = append(b, `,"Latency":`...)
		b = strconv.AppendInt(b, v.Latency, 10)
		return append(b, '}'), nil
	case *SimpleRPCResponse:
		b = append(b, `{"code":`...)
		b = strconv.AppendInt(b, int64(v.Code), 10)
		return append(b, '}'), nil
	}
	j, err := json.Marshal(x)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendString appends s as a JSON string the way encoding/json's encoder
// writes it (HTML-safe); strings that need escaping go to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// framer finds where a JSON object ends in a stream, scanning each byte
// once as it arrives (its state carries over reads). It follows strings
// and nesting only, and refuses at once what cannot be JSON — a first byte
// other than '{', bytes that occur in no JSON token, mismatched or too deep
// brackets, control characters in strings — so that garbage ends the
// connection as soon as it comes. The rest of the grammar is the envelope
// parser's, once the object is whole.
type framer struct {
	off        int // bytes scanned so far, from the object's '{'
	started    bool
	null       bool // the request is a bare null
	inStr, esc bool
	stack      []byte // open brackets
}

func (f *framer) reset() {
	f.off, f.started, f.null, f.inStr, f.esc = 0, false, false, false, false
	f.stack = f.stack[:0]
}

// Classes of bytes outside strings.
const (
	fcInvalid = iota
	fcToken   // in numbers, literals, or between values
	fcQuote
	fcOpen
	fcClose
)

var (
	frameClass [256]uint8
	// strPlain are the bytes that neither end a string, nor escape, nor
	// are refused in one.
	strPlain [256]bool
)

func init() {
	for _, c := range []byte(" \t\r\n,:-+.0123456789eEtrufalsn") {
		frameClass[c] = fcToken
	}
	frameClass['"'] = fcQuote
	frameClass['{'], frameClass['['] = fcOpen, fcOpen
	frameClass['}'], frameClass[']'] = fcClose, fcClose
	for c := ' '; c < 256; c++ {
		strPlain[c] = c != '"' && c != '\\'
	}
}

// scan goes on over b, the request's bytes so far, from where it stopped.
// done says the object ends at b[:end].
func (f *framer) scan(b []byte) (end int, done bool, err error) {
	i := f.off
	if !f.started {
		switch b[0] {
		case '{':
		case 'n':
			// A bare null decodes into net/rpc/jsonrpc's request struct as
			// an empty request, which net/rpc answers (no method); any
			// other JSON that is not an object fails it.
			f.null = true
		default:
			return 0, false, frameError(0, "invalid character %q: a JSON-RPC request is an object", b[0])
		}
		f.started = true
	}
	if f.null {
		const null = "null"
		if n := min(len(b), len(null)); string(b[:n]) != null[:n] {
			return 0, false, frameError(0, "invalid literal, expected null")
		}
		if len(b) < len(null) {
			f.off = len(b)
			return 0, false, nil
		}
		return len(null), true, nil
	}
	for i < len(b) {
		if f.inStr {
			if f.esc { // the byte after a backslash; the parser checks it
				f.esc = false
				i++
				continue
			}
			for i < len(b) && strPlain[b[i]] {
				i++
			}
			if i == len(b) {
				break
			}
			switch b[i] {
			case '"':
				f.inStr = false
			case '\\':
				f.esc = true
			default:
				return 0, false, frameError(i, "control character %#x in a string: escape it", b[i])
			}
			i++
			continue
		}
		c := b[i]
		switch frameClass[c] {
		case fcToken:
		case fcQuote:
			f.inStr = true
		case fcOpen:
			if len(f.stack) >= maxDepth {
				return 0, false, frameError(i, "nesting deeper than %d", maxDepth)
			}
			f.stack = append(f.stack, c)
		case fcClose:
			if n := len(f.stack); n == 0 || closer(f.stack[n-1]) != c {
				return 0, false, frameError(i, "invalid character %q: no bracket to close", c)
			}
			f.stack = f.stack[:len(f.stack)-1]
			if len(f.stack) == 0 {
				f.off = i + 1
				return i + 1, true, nil
			}
		default:
			return 0, false, frameError(i, "invalid character %q looking for a JSON value", c)
		}
		i++
	}
	f.off = i
	return 0, false, nil
}

func frameError(pos int, format string, args ...any) error {
	return &SyntaxError{msg: fmt.Sprintf("invalid JSON at byte %d: %s", pos, fmt.Sprintf(format, args...))}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
