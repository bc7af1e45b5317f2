package vocab

import (
	"crypto/sha256"
	"encoding/binary"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// PinpointTransaction derives ids from a Pinpoint transaction id in
// Pinpoint's notation, agentId^agentStartTime^sequence (the
// Pinpoint-TraceID header). The trace id is the first 16 bytes of its
// SHA-256 and seed the next 8: the pinpoint receiver gives every span of
// the transaction that trace id (and mixes seed into their span ids), and
// trace_completion gives it to network and eBPF spans that parsed the
// header, so both land in one trace. Changing it splits traces between
// collectors of different versions.
func PinpointTransaction(tx []byte) (trace pcommon.TraceID, seed uint64) {
	sum := sha256.Sum256(tx)
	copy(trace[:], sum[:16])
	return trace, binary.BigEndian.Uint64(sum[16:24])
}
