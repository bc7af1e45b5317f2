package stitch

import (
	"strings"
	"testing"
)

// TestLowerIsMatchesToLower: the allocation-free comparison the decoder
// uses for signal sources, message types and placeholder request ids
// answers as strings.ToLower would, non-ASCII input included.
func TestLowerIsMatchesToLower(t *testing.T) {
	words := []string{"app", "otel", "ebpf", "packet", "xflow", "session", "request", "response", "null", "none", "undefined", "unknown"}
	inputs := []string{
		"", "x", "eBPF", "EBPF", "ebpf", "ebpF ", "OTel", "Packet", "XFlow", "Session", "REQUEST", "responsE",
		"NULL", "Null", "nULL", "None", "UNDEFINED", "unknowN",
		"ſession", "\u212Aey", "İnull", "null\u0130", "nu\u212All", "ＮＵＬＬ",
	}
	for _, s := range inputs {
		for _, w := range words {
			if got, want := lowerIs(s, w), strings.ToLower(s) == w; got != want {
				t.Errorf("lowerIs(%q, %q) = %v, strings.ToLower says %v", s, w, got, want)
			}
		}
	}
}
