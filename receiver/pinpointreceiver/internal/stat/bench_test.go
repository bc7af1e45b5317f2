package stat

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

func BenchmarkTranslate(b *testing.B) {
	stats := make([]*v1.PAgentStat, 6)
	for i := range stats {
		stats[i] = javaStat(sampleMs + int64(i)*10_000)
	}
	for _, bc := range []struct {
		name string
		msg  *v1.PStatMessage
	}{
		{"java_full", single(javaStat(sampleMs))},
		{"java_batch6", batch(stats...)},
		{"node", single(nodeStat(sampleMs, 0.25))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			res := testResource()
			b.ReportAllocs()
			for b.Loop() {
				md := pmetric.NewMetrics()
				if _, err := Translate(md, res, agentStartMs, bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
