package translate

import (
	"encoding/binary"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/internal/vocab"
)

// Transaction identifies a Pinpoint distributed transaction: every span of
// one request across all agents carries the same one.
type Transaction struct {
	AgentID   string
	StartTime int64
	Sequence  int64
}

// String is Pinpoint's own notation, agentId^agentStartTime^sequence, as the
// Pinpoint web UI shows it.
func (tx Transaction) String() string {
	b := make([]byte, 0, len(tx.AgentID)+42)
	b = append(b, tx.AgentID...)
	b = append(b, '^')
	b = strconv.AppendInt(b, tx.StartTime, 10)
	b = append(b, '^')
	b = strconv.AppendInt(b, tx.Sequence, 10)
	return string(b)
}

// ids derives every OTel id of one transaction. All ids are functions of the
// transaction and of Pinpoint's own numbering only, so that spans converted
// from different messages — a span and its chunks, a caller and its callee on
// another agent — agree without ever seeing each other.
type ids struct {
	trace pcommon.TraceID
	// seed is the transaction's 64-bit hash, mixed into every span id.
	seed uint64
}

func newIDs(tx Transaction) ids {
	// A hash keeps trace ids of different transactions apart however agents
	// choose their ids; it runs once per Pinpoint span, not per event.
	var buf [24 + 2*20]byte
	b := append(buf[:0], tx.AgentID...)
	b = append(b, '^')
	b = strconv.AppendInt(b, tx.StartTime, 10)
	b = append(b, '^')
	b = strconv.AppendInt(b, tx.Sequence, 10)
	var x ids
	x.trace, x.seed = vocab.PinpointTransaction(b)
	return x
}

// Domain tags keep the different kinds of derived ids apart.
const (
	tagRoot  = 0x726f6f74 // "root"
	tagEvent = 0x65766e74 // "evnt"
	tagNext  = 0x6e657874 // "next"
	tagAsync = 0x6173796e // "asyn"
)

// mix is SplitMix64's finalizer: a cheap bijective scrambler.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func spanID(v uint64) pcommon.SpanID {
	if v == 0 { // the all-zero span id is invalid in OTLP
		v = 1
	}
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

// root is the OTel span of Pinpoint span spanID itself.
func (x ids) root(pinpointSpanID int64) pcommon.SpanID {
	return spanID(mix(x.seed^tagRoot) ^ mix(uint64(pinpointSpanID)))
}

// event is the OTel span of one span event, placed by the call stack it is in
// (asyncID 0 for the span's own stack) and its sequence in that stack.
func (x ids) event(pinpointSpanID int64, asyncID, asyncSeq, sequence int32) pcommon.SpanID {
	h := mix(x.seed^tagEvent) ^ mix(uint64(pinpointSpanID))
	h = mix(h ^ (uint64(uint32(asyncID))<<32 | uint64(uint32(asyncSeq))))
	return spanID(mix(h ^ uint64(uint32(sequence))))
}

// caller is the OTel span of the event that called Pinpoint span
// nextSpanID (its nextSpanId). The callee computes the same id from its own
// span id to name its parent, so caller and callee link wherever they were
// converted.
func (x ids) caller(nextSpanID int64) pcommon.SpanID {
	return spanID(mix(x.seed^tagNext) ^ mix(uint64(nextSpanID)))
}

// async is the OTel span of the event that started asynchronous work asyncID
// (its asyncEvent); the continuations' chunks hang under it.
func (x ids) async(pinpointSpanID int64, asyncID int32) pcommon.SpanID {
	return spanID(mix(mix(x.seed^tagAsync)^mix(uint64(pinpointSpanID))) ^ uint64(uint32(asyncID)))
}
