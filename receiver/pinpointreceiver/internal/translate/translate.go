// Package translate converts Pinpoint spans, span chunks and their events
// into OpenTelemetry spans.
//
// Every Pinpoint span becomes one OTel span, and every span event a child
// span of it, placed in the call stack by depth and sequence. Ids are derived
// from the transaction id and Pinpoint's own numbering (see ids.go), so the
// spans of one distributed transaction share one trace id, and a span
// converted from one message links to spans converted from others: chunks to
// their span, asynchronous continuations to the event that started them
// (asyncEvent), and a callee's span to the caller's event (nextSpanId).
package translate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// Bundle is one Pinpoint span together with the chunks of it that arrived.
// Span is nil when chunks are converted without their span (it never came
// in time); Chunks may be empty.
type Bundle struct {
	Span   *v1.PSpan
	Chunks []*v1.PSpanChunk
}

// API is what an agent told about one of its API ids.
type API struct {
	Info     string // e.g. "com.shop.CartController.get(String id)"
	Line     int32
	Type     int32
	Location string
}

// Names resolves the ids one agent process uses for API, SQL and string
// metadata.
type Names interface {
	API(id int32) (API, bool)
	SQL(id int32) (string, bool)
	SQLUID(uid []byte) (string, bool)
	String(id int32) (string, bool)
}

// Options change what is converted.
type Options struct {
	// SQLBindValues keeps SQL bind values and parsed literals
	// (pinpoint.sql.bind_values, pinpoint.sql.output). They may hold
	// personal data, so they are dropped by default.
	SQLBindValues bool
}

// Result counts what one conversion did.
type Result struct {
	// Spans is the number of OTel spans appended.
	Spans int
	// Unresolved is the number of names that were not in Names and were
	// written as placeholders.
	Unresolved int
	// Duplicates is the number of span events skipped because another event
	// of the same call stack had the same sequence.
	Duplicates int
}

// Errors for messages that cannot be converted at all.
var (
	ErrNoTransaction = errors.New("missing transactionId")
	ErrEmptyBundle   = errors.New("no span and no chunk to convert")
)

// Version is the only span and chunk version Pinpoint agents send.
const Version = 1

// Translator converts bundles. It keeps scratch buffers between calls, so one
// Translator must not be used by two goroutines at once.
type Translator struct {
	opts Options

	main   []event
	async  []event
	stack  []pcommon.SpanID
	starts []asyncStart
}

// event is a span event placed in time and in its call stack.
type event struct {
	ev       *v1.PSpanEvent
	depth    int32
	start    int64 // epoch ms
	asyncID  int32 // 0 for the span's own call stack
	asyncSeq int32
}

// asyncStart remembers, within one bundle, the OTel span of an event that
// started asynchronous work when that span does not have the async id (it
// also called a remote span, and that link wins).
type asyncStart struct {
	asyncID int32
	id      pcommon.SpanID
}

// NewTranslator returns a Translator with the given options.
func NewTranslator(opts Options) *Translator {
	return &Translator{opts: opts}
}

// Check validates what Translate would need of b without converting it, and
// returns the transaction and the Pinpoint span id the bundle belongs to.
// agentID (from the gRPC header) stands in for an empty transaction agent id.
func Check(b Bundle, agentID string) (Transaction, int64, error) {
	var ptx *v1.PTransactionId
	var spanID int64
	switch {
	case b.Span != nil:
		if b.Span.GetVersion() != Version {
			return Transaction{}, 0, fmt.Errorf("span version %d is not supported (want %d)", b.Span.GetVersion(), Version)
		}
		ptx, spanID = b.Span.GetTransactionId(), b.Span.GetSpanId()
	case len(b.Chunks) > 0:
		ptx, spanID = b.Chunks[0].GetTransactionId(), b.Chunks[0].GetSpanId()
	default:
		return Transaction{}, 0, ErrEmptyBundle
	}
	for _, c := range b.Chunks {
		if c.GetVersion() != Version {
			return Transaction{}, 0, fmt.Errorf("span chunk version %d is not supported (want %d)", c.GetVersion(), Version)
		}
		if c.GetTransactionId() == nil {
			return Transaction{}, 0, ErrNoTransaction
		}
	}
	if ptx == nil {
		return Transaction{}, 0, ErrNoTransaction
	}
	if err := checkEvents(b.Span.GetSpanEvent()); err != nil {
		return Transaction{}, 0, err
	}
	for _, c := range b.Chunks {
		if err := checkEvents(c.GetSpanEvent()); err != nil {
			return Transaction{}, 0, err
		}
	}
	tx := Transaction{AgentID: ptx.GetAgentId(), StartTime: ptx.GetAgentStartTime(), Sequence: ptx.GetSequence()}
	if tx.AgentID == "" {
		// Agents leave the agent id out of transactions they started
		// themselves: it is the caller's header.
		tx.AgentID = agentID
	}
	if tx.AgentID == "" {
		return Transaction{}, 0, ErrNoTransaction
	}
	return tx, spanID, nil
}

// maxDepth is far beyond any agent's call stack limit (Java's default is
// 64): a deeper event is malformed.
const maxDepth = 1 << 16

// ErrImpossibleEvent marks an event no agent can send.
var ErrImpossibleEvent = errors.New("impossible span event")

func checkEvents(evs []*v1.PSpanEvent) error {
	for _, ev := range evs {
		switch {
		case ev == nil:
		case ev.GetSequence() < 0:
			return fmt.Errorf("%w: sequence %d is negative", ErrImpossibleEvent, ev.GetSequence())
		case ev.GetDepth() < 0 || ev.GetDepth() > maxDepth:
			return fmt.Errorf("%w: depth %d is out of range (0 to %d)", ErrImpossibleEvent, ev.GetDepth(), maxDepth)
		}
	}
	return nil
}

// Translate appends the OTel spans of b to dst. agentID is the sending agent
// (gRPC header); names resolves its metadata. Names that cannot be resolved
// are written as placeholders and counted in the result.
func (t *Translator) Translate(dst ptrace.SpanSlice, agentID string, b Bundle, names Names) (Result, error) {
	tx, pSpanID, err := Check(b, agentID)
	if err != nil {
		return Result{}, err
	}
	x := newIDs(tx)
	var r Result

	// The span's own call stack: its events and those of chunks without an
	// async id, which continue the same numbering.
	t.main = t.main[:0]
	if s := b.Span; s != nil {
		t.main = appendEvents(t.main, s.GetSpanEvent(), s.GetStartTime(), 0, 0)
	}
	for _, c := range b.Chunks {
		if c.GetLocalAsyncId().GetAsyncId() == 0 {
			t.main = appendEvents(t.main, c.GetSpanEvent(), c.GetKeyTime(), 0, 0)
		}
	}
	t.main, r.Duplicates = sortStack(t.main)

	root := x.root(pSpanID)
	if s := b.Span; s != nil {
		t.appendRoot(dst, tx, x, s, names, &r)
	}
	t.starts = t.starts[:0]
	t.appendStack(dst, x, pSpanID, t.main, root, names, &r)

	// Each asynchronous continuation is a call stack of its own, under the
	// event that started it.
	for _, c := range b.Chunks {
		la := c.GetLocalAsyncId()
		if la.GetAsyncId() == 0 {
			continue
		}
		t.async = appendEvents(t.async[:0], c.GetSpanEvent(), c.GetKeyTime(), la.GetAsyncId(), la.GetSequence())
		var dups int
		t.async, dups = sortStack(t.async)
		r.Duplicates += dups
		parent := x.async(pSpanID, la.GetAsyncId())
		for _, s := range t.starts {
			if s.asyncID == la.GetAsyncId() {
				parent = s.id
			}
		}
		t.appendStack(dst, x, pSpanID, t.async, parent, names, &r)
	}
	return r, nil
}

// appendEvents places the events of one message in time and undoes Java's
// depth compression: within a message, an event at the same depth as the one
// before it may be sent with depth 0.
func appendEvents(dst []event, evs []*v1.PSpanEvent, keyTime int64, asyncID, asyncSeq int32) []event {
	first := len(dst)
	for _, ev := range evs {
		if ev != nil {
			dst = append(dst, event{ev: ev, depth: ev.GetDepth(), asyncID: asyncID, asyncSeq: asyncSeq})
		}
	}
	msg := dst[first:]
	slices.SortStableFunc(msg, func(a, b event) int { return int(a.ev.GetSequence()) - int(b.ev.GetSequence()) })
	prevStart, prevDepth := keyTime, int32(1)
	for i := range msg {
		// startElapsed is the distance from the previous event's start (the
		// message's key time for the first event).
		msg[i].start = prevStart + int64(msg[i].ev.GetStartElapsed())
		prevStart = msg[i].start
		if msg[i].depth == 0 && i > 0 {
			msg[i].depth = prevDepth
		}
		if msg[i].depth < 1 {
			// Only a message's first event can still be at depth 0 here:
			// it is put directly under the span.
			msg[i].depth = 1
		}
		prevDepth = msg[i].depth
	}
	return dst
}

// sortStack orders a call stack by sequence and drops events whose sequence
// repeats (a chunk sent twice).
func sortStack(evs []event) ([]event, int) {
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.ev.GetSequence()) - int(b.ev.GetSequence()) })
	out, dups := evs[:0], 0
	for i, e := range evs {
		if i > 0 && e.ev.GetSequence() == evs[i-1].ev.GetSequence() {
			dups++
			continue
		}
		out = append(out, e)
	}
	return out, dups
}

func (t *Translator) appendRoot(dst ptrace.SpanSlice, tx Transaction, x ids, s *v1.PSpan, names Names, r *Result) {
	sp := dst.AppendEmpty()
	r.Spans++
	sp.SetTraceID(x.trace)
	sp.SetSpanID(x.root(s.GetSpanId()))
	if p := s.GetParentSpanId(); p != -1 {
		// The caller's event carries this span's id as its nextSpanId.
		sp.SetParentSpanID(x.caller(s.GetSpanId()))
	}
	start := s.GetStartTime()
	sp.SetStartTimestamp(millis(start))
	sp.SetEndTimestamp(millis(start + int64(max(s.GetElapsed(), 0))))

	attrs := sp.Attributes()
	attrs.EnsureCapacity(8 + len(s.GetAnnotation()) + len(s.GetAttribute()))
	attrs.PutStr("pinpoint.transaction_id", tx.String())
	attrs.PutInt("pinpoint.span_id", s.GetSpanId())
	attrs.PutInt("pinpoint.service_type", int64(s.GetServiceType()))

	st := s.GetServiceType()
	kind := ptrace.SpanKindInternal
	ae := s.GetAcceptEvent()
	switch {
	case ae != nil && (ae.GetRpc() != "" || ae.GetRemoteAddr() != "" || ae.GetEndPoint() != ""):
		kind = ptrace.SpanKindServer
	case isBroker(st):
		kind = ptrace.SpanKindConsumer
	case isServer(st) && st != serviceTypeStandAlone:
		kind = ptrace.SpanKindServer
	}
	sp.SetKind(kind)

	if ae != nil {
		if rpc := ae.GetRpc(); rpc != "" {
			attrs.PutStr("url.path", rpc)
		}
		if host, port, ok := splitHostPort(ae.GetEndPoint()); ok {
			attrs.PutStr("server.address", host)
			if port > 0 {
				attrs.PutInt("server.port", port)
			}
		}
		if ra := ae.GetRemoteAddr(); ra != "" {
			attrs.PutStr("client.address", ra)
		}
		if pi := ae.GetParentInfo(); pi.GetParentApplicationName() != "" {
			attrs.PutStr("pinpoint.parent.application.name", pi.GetParentApplicationName())
			attrs.PutInt("pinpoint.parent.application.type", int64(pi.GetParentApplicationType()))
		}
	}

	ann := t.annotate(attrs, s.GetAnnotation(), st, r, names)
	putAttributes(attrs, s.GetAttribute())

	name := ""
	if ae != nil {
		name = ae.GetRpc()
	}
	if name == "" {
		name = apiName(s.GetApiId(), ann.inlineAPI, st, names, r)
	}
	if kind == ptrace.SpanKindServer && ann.method != "" && name != "" && name[0] == '/' {
		name = ann.method + " " + name
	}
	sp.SetName(name)

	failed := s.GetErr() != 0
	if ei := s.GetExceptionInfo(); ei != nil {
		failed = true
		addException(sp, ei, sp.EndTimestamp(), names, r)
	}
	setStatus(sp, failed, ann.statusCode, kind)
}

// appendStack appends one call stack's events; depth-1 events hang under
// parent.
func (t *Translator) appendStack(dst ptrace.SpanSlice, x ids, pSpanID int64, evs []event, parent pcommon.SpanID, names Names, r *Result) {
	// stack[d-1] is the OTel span of the latest event at depth d.
	t.stack = t.stack[:0]
	for _, e := range evs {
		ev := e.ev
		sp := dst.AppendEmpty()
		r.Spans++
		sp.SetTraceID(x.trace)

		next := ev.GetNextEvent().GetMessageEvent()
		nextSpanID := next.GetNextSpanId()
		linked := nextSpanID != -1 && nextSpanID != 0
		var id pcommon.SpanID
		switch {
		case linked:
			id = x.caller(nextSpanID)
			if ae := ev.GetAsyncEvent(); ae != 0 {
				t.starts = append(t.starts, asyncStart{asyncID: ae, id: id})
			}
		case ev.GetAsyncEvent() != 0:
			id = x.async(pSpanID, ev.GetAsyncEvent())
		default:
			id = x.event(pSpanID, e.asyncID, e.asyncSeq, ev.GetSequence())
		}
		sp.SetSpanID(id)

		d := int(e.depth)
		switch {
		case d == 1:
			sp.SetParentSpanID(parent)
		case d-1 <= len(t.stack):
			sp.SetParentSpanID(t.stack[d-2])
		case len(t.stack) > 0:
			// A gap in depths (an event went missing): the deepest known
			// event is the closest ancestor there is.
			sp.SetParentSpanID(t.stack[len(t.stack)-1])
		default:
			sp.SetParentSpanID(parent)
		}
		if d-1 <= len(t.stack) {
			t.stack = append(t.stack[:d-1], id)
		} else {
			t.stack = append(t.stack, id)
		}

		sp.SetStartTimestamp(millis(e.start))
		sp.SetEndTimestamp(millis(e.start + int64(max(ev.GetEndElapsed(), 0))))

		st := ev.GetServiceType()
		kind := eventKind(st, linked)
		sp.SetKind(kind)
		attrs := sp.Attributes()
		attrs.EnsureCapacity(4 + len(ev.GetAnnotation()) + len(ev.GetAttribute()))
		attrs.PutInt("pinpoint.service_type", int64(st))
		if sys := dbSystem(st); sys != "" {
			attrs.PutStr("db.system", sys)
		}
		if next != nil {
			putRemote(attrs, next, st)
		}
		ann := t.annotate(attrs, ev.GetAnnotation(), st, r, names)
		putAttributes(attrs, ev.GetAttribute())

		name := apiName(ev.GetApiId(), ann.inlineAPI, st, names, r)
		if isHTTPClient(st) && isHTTPMethod(ann.inlineAPI) && ann.method == "" {
			attrs.PutStr("http.request.method", ann.inlineAPI)
		}
		sp.SetName(name)

		failed := false
		if ei := ev.GetExceptionInfo(); ei != nil {
			failed = true
			addException(sp, ei, sp.EndTimestamp(), names, r)
		}
		setStatus(sp, failed, ann.statusCode, kind)
	}
}

// putRemote records where a client event went: server.address/port for
// calls, plus the database name for databases.
func putRemote(attrs pcommon.Map, m *v1.PMessageEvent, serviceType int32) {
	endPoint, dest := m.GetEndPoint(), m.GetDestinationId()
	target := endPoint
	if isRPC(serviceType) {
		// For calls the destination is the callee's host:port; endPoint
		// is not reliably the remote side (the Node agent puts its own
		// address there).
		if _, _, ok := splitHostPort(dest); ok {
			target = dest
		}
	}
	if host, port, ok := splitHostPort(target); ok {
		attrs.PutStr("server.address", host)
		if port > 0 {
			attrs.PutInt("server.port", port)
		}
	}
	if dest != "" && (isDB(serviceType) || isCache(serviceType)) {
		attrs.PutStr("db.namespace", dest)
	}
	if dest != "" {
		attrs.PutStr("pinpoint.destination_id", dest)
	}
}

// apiName is the span name of an API id, or of the inline name agents send
// in annotation 12 when the id is 0.
func apiName(id int32, inline string, serviceType int32, names Names, r *Result) string {
	if id == 0 {
		switch {
		case inline != "":
			return inline
		case serviceType == serviceTypeAsync:
			return "Asynchronous Invocation"
		}
		return "unknown"
	}
	if api, ok := names.API(id); ok && api.Info != "" {
		return api.Info
	}
	r.Unresolved++
	return "unknown api " + strconv.Itoa(int(id))
}

func addException(sp ptrace.Span, ei *v1.PIntStringValue, ts pcommon.Timestamp, names Names, r *Result) {
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(ts)
	typ, ok := names.String(ei.GetIntValue())
	if !ok {
		r.Unresolved++
		typ = "unknown string " + strconv.Itoa(int(ei.GetIntValue()))
	}
	ev.Attributes().PutStr("exception.type", typ)
	if msg := ei.GetStringValue(); msg != nil {
		ev.Attributes().PutStr("exception.message", msg.GetValue())
	}
}

// setStatus marks failures: the agent's error flag or an exception, else
// the HTTP status as OTel's HTTP conventions read it (5xx for servers, 4xx
// and 5xx for clients).
func setStatus(sp ptrace.Span, failed bool, httpStatus int64, kind ptrace.SpanKind) {
	switch {
	case failed:
		sp.Status().SetCode(ptrace.StatusCodeError)
	case httpStatus >= 500, httpStatus >= 400 && kind == ptrace.SpanKindClient:
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
}

func millis(ms int64) pcommon.Timestamp {
	if ms < 0 {
		return 0
	}
	return pcommon.Timestamp(uint64(ms) * 1e6)
}

func isHTTPMethod(s string) bool {
	switch s {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE":
		return true
	}
	return false
}

// splitHostPort splits "host:port", "host" or "[v6]:port"; a bare IPv6
// address is a host without port.
func splitHostPort(s string) (host string, port int64, ok bool) {
	if s == "" {
		return "", 0, false
	}
	if s[0] == '[' {
		end := indexByte(s, ']')
		if end < 0 {
			return "", 0, false
		}
		host = s[1:end]
		if rest := s[end+1:]; len(rest) > 1 && rest[0] == ':' {
			p, err := strconv.ParseInt(rest[1:], 10, 32)
			if err != nil || p < 0 || p > 65535 {
				return "", 0, false
			}
			port = p
		}
		return host, port, host != ""
	}
	colon := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			if colon >= 0 { // bare IPv6
				return s, 0, true
			}
			colon = i
		case c == '/' || c == ' ' || c == '?':
			return "", 0, false
		}
	}
	if colon < 0 {
		return s, 0, true
	}
	p, err := strconv.ParseInt(s[colon+1:], 10, 32)
	if err != nil || p < 0 || p > 65535 || colon == 0 {
		return "", 0, false
	}
	return s[:colon], p, true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Unresolved counts the names of b that names cannot resolve yet: what
// Translate would write as placeholders. The receiver holds a bundle back
// while this is not zero, for a while, because agents send metadata on their
// own schedule.
func Unresolved(b Bundle, names Names) int {
	n := 0
	api := func(id int32) {
		if id != 0 {
			if a, ok := names.API(id); !ok || a.Info == "" {
				n++
			}
		}
	}
	str := func(ei *v1.PIntStringValue) {
		if ei != nil {
			if _, ok := names.String(ei.GetIntValue()); !ok {
				n++
			}
		}
	}
	anns := func(list []*v1.PAnnotation) {
		for _, a := range list {
			switch a.GetKey() {
			case annSQLID:
				if _, ok := names.SQL(a.GetValue().GetIntStringStringValue().GetIntValue()); !ok {
					n++
				}
			case annSQLUID:
				if _, ok := names.SQLUID(a.GetValue().GetBytesStringStringValue().GetBytesValue()); !ok {
					n++
				}
			}
		}
	}
	events := func(evs []*v1.PSpanEvent) {
		for _, ev := range evs {
			api(ev.GetApiId())
			str(ev.GetExceptionInfo())
			anns(ev.GetAnnotation())
		}
	}
	if s := b.Span; s != nil {
		if s.GetAcceptEvent().GetRpc() == "" {
			api(s.GetApiId())
		}
		str(s.GetExceptionInfo())
		anns(s.GetAnnotation())
		events(s.GetSpanEvent())
	}
	for _, c := range b.Chunks {
		events(c.GetSpanEvent())
	}
	return n
}
