package pinpointreceiver

import (
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// agentHeader is who sent a request: Pinpoint agents identify themselves in
// gRPC metadata on every call, not in the messages.
type agentHeader struct {
	AgentID         string
	AgentName       string
	ApplicationName string
	ServiceName     string
	// StartTime is the agent process's start (epoch ms). With AgentID it
	// keys the metadata the agent sends: ids restart with every process.
	StartTime   int64
	ServiceType int32 // -1 when absent or invalid
	SocketID    int64 // -1 when absent or invalid
}

// Limits the Pinpoint collector enforces on identifiers.
const (
	maxAgentIDLen         = 24
	maxApplicationNameLen = 24
	maxAgentNameLen       = 255
	maxServiceNameLen     = 255
)

// parseHeader reads and validates the agent headers of an incoming call. A
// bad header is an InvalidArgument status naming the header and why.
func parseHeader(md metadata.MD) (agentHeader, error) {
	h := agentHeader{ServiceType: -1, SocketID: -1}
	var err error
	if h.AgentID, err = identifier(md, "agentid", maxAgentIDLen, true); err != nil {
		return h, err
	}
	if h.ApplicationName, err = identifier(md, "applicationname", maxApplicationNameLen, false); err != nil {
		return h, err
	}
	if h.AgentName, err = identifier(md, "agentname", maxAgentNameLen, false); err != nil {
		return h, err
	}
	if h.ServiceName, err = identifier(md, "servicename", maxServiceNameLen, false); err != nil {
		return h, err
	}
	start := first(md, "starttime")
	if start == "" {
		return h, status.Error(codes.InvalidArgument, "missing header starttime: the agent's start time in epoch milliseconds")
	}
	if h.StartTime, err = strconv.ParseInt(start, 10, 64); err != nil || h.StartTime < 0 {
		return h, status.Errorf(codes.InvalidArgument, "header starttime %q is not a non-negative integer", truncate(start))
	}
	if v, err := strconv.ParseInt(first(md, "servicetype"), 10, 32); err == nil {
		h.ServiceType = int32(v)
	}
	if v, err := strconv.ParseInt(first(md, "socketid"), 10, 64); err == nil {
		h.SocketID = v
	}
	return h, nil
}

// identifier reads header key and checks it against Pinpoint's identifier
// rule: [a-zA-Z0-9._-]+ of at most maxLen bytes.
func identifier(md metadata.MD, key string, maxLen int, required bool) (string, error) {
	v := first(md, key)
	if v == "" {
		if required {
			return "", status.Errorf(codes.InvalidArgument, "missing header %s", key)
		}
		return "", nil
	}
	if len(v) > maxLen {
		return "", status.Errorf(codes.InvalidArgument, "header %s is %d bytes long, at most %d are allowed", key, len(v), maxLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", status.Errorf(codes.InvalidArgument, "header %s %q has the character %q: only [a-zA-Z0-9._-] are allowed", key, truncate(v), string(rune(c)))
		}
	}
	return v, nil
}

func first(md metadata.MD, key string) string {
	if vs := md.Get(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// truncate keeps error messages short whatever a client sends.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (h agentHeader) String() string {
	return fmt.Sprintf("%s/%s (started %d)", h.ApplicationName, h.AgentID, h.StartTime)
}
