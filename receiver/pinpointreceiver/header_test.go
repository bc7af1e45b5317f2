package pinpointreceiver

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestParseHeader(t *testing.T) {
	_, err := parseHeader(metadata.Pairs(
		"agentid", "front-1", "applicationname", "front", "agentname", "front pod",
		"starttime", "1763700000000", "servicetype", "1400", "socketid", "7"))
	// agentname allows no space.
	require.Error(t, err)
	assert.Contains(t, status.Convert(err).Message(), `header agentname "front pod" has the character " "`)

	h, err := parseHeader(metadata.Pairs(
		"agentid", "front-1", "applicationname", "front", "agentname", "front_pod.1",
		"starttime", "1763700000000", "servicetype", "1400", "socketid", "7"))
	require.NoError(t, err)
	assert.Equal(t, agentHeader{
		AgentID: "front-1", AgentName: "front_pod.1", ApplicationName: "front",
		StartTime: 1763700000000, ServiceType: 1400, SocketID: 7,
	}, h)

	// What the Node agent sends: no servicetype, no socketid on most calls.
	h, err = parseHeader(metadata.Pairs("agentid", "a", "applicationname", "app", "starttime", "1"))
	require.NoError(t, err)
	assert.Equal(t, int32(-1), h.ServiceType)
	assert.Equal(t, int64(-1), h.SocketID)
}

func TestParseHeaderRejects(t *testing.T) {
	valid := map[string]string{"agentid": "agent-1", "applicationname": "app", "starttime": "1763700000000"}
	tests := []struct {
		name   string
		change map[string]string
		want   string
	}{
		{"missing agentid", map[string]string{"agentid": ""}, "missing header agentid"},
		{"long agentid", map[string]string{"agentid": strings.Repeat("a", 25)}, "header agentid is 25 bytes long, at most 24"},
		{"bad agentid", map[string]string{"agentid": "a/b"}, `header agentid "a/b" has the character "/"`},
		{"long applicationname", map[string]string{"applicationname": strings.Repeat("x", 25)}, "header applicationname is 25 bytes long"},
		{"missing starttime", map[string]string{"starttime": ""}, "missing header starttime"},
		{"bad starttime", map[string]string{"starttime": "yesterday"}, `header starttime "yesterday" is not a non-negative integer`},
		{"negative starttime", map[string]string{"starttime": "-5"}, "is not a non-negative integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := metadata.MD{}
			for k, v := range valid {
				md.Set(k, v)
			}
			for k, v := range tt.change {
				if v == "" {
					delete(md, k)
				} else {
					md.Set(k, v)
				}
			}
			_, err := parseHeader(md)
			require.Error(t, err)
			assert.Equal(t, codes.InvalidArgument, status.Code(err))
			assert.Contains(t, status.Convert(err).Message(), tt.want)
		})
	}
}

// An invalid servicetype or socketid is not an error: the collector reads it
// as unknown (-1).
func TestParseHeaderLenientNumbers(t *testing.T) {
	h, err := parseHeader(metadata.Pairs("agentid", "a", "starttime", "1", "servicetype", "node", "socketid", "x"))
	require.NoError(t, err)
	assert.Equal(t, int32(-1), h.ServiceType)
	assert.Equal(t, int64(-1), h.SocketID)
}

func FuzzParseHeader(f *testing.F) {
	f.Add("agent-1", "app", "", "1763700000000", "1400", "1")
	f.Add("", "", "", "", "", "")
	f.Add(strings.Repeat("a", 24), "a.b_c-d", "x", "0", "-1", "-1")
	f.Add("a\x00b", "\xff", "名前", "99999999999999999999", "1e3", "0x10")
	f.Fuzz(func(t *testing.T, agentID, app, agentName, start, serviceType, socketID string) {
		md := metadata.MD{}
		for k, v := range map[string]string{"agentid": agentID, "applicationname": app, "agentname": agentName,
			"starttime": start, "servicetype": serviceType, "socketid": socketID} {
			if v != "" {
				md.Set(k, v)
			}
		}
		h, err := parseHeader(md)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
			if !utf8.ValidString(status.Convert(err).Message()) && utf8.ValidString(agentID+app+agentName+start) {
				t.Fatalf("invalid UTF-8 in message for valid input")
			}
			return
		}
		if h.AgentID == "" || len(h.AgentID) > maxAgentIDLen || h.StartTime < 0 {
			t.Fatalf("accepted invalid header %+v", h)
		}
	})
}
