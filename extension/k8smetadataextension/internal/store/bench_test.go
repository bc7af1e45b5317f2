package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
	"github.com/weftobs/weft/tests/harness"
)

// benchBatch is how many records one Apply carries: what a watcher's
// initial list would send per transaction.
const benchBatch = 1000

func benchStore(b *testing.B, create func(testing.TB) *harness.Database, driver string) *Store {
	b.Helper()
	ctx := testCtx(b)
	s, err := Open(ctx, driver, create(b).DSN, "bench", zap.NewNop())
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	require.NoError(b, s.Migrate(ctx))
	_, err = s.ClusterID(ctx)
	require.NoError(b, err)
	return s
}

func applyAll(b *testing.B, s *Store, pods []model.Record) {
	ctx := testCtx(b)
	for i := 0; i < len(pods); i += benchBatch {
		if _, err := s.Apply(ctx, pods[i:min(i+benchBatch, len(pods))], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply10kPods records 10,000 new pods (10 labels, 5 annotations,
// 20 env values each, relations to 870 other resources) in batches of
// benchBatch; s/10kpods is the time for all of them.
func BenchmarkApply10kPods(b *testing.B) {
	for _, d := range databases {
		b.Run(d.driver, func(b *testing.B) {
			s := benchStore(b, d.create, d.driver)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				pods := realisticPods(i+1, 10000)
				b.StartTimer()
				start := time.Now()
				applyAll(b, s, pods)
				total += time.Since(start)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/10kpods")
		})
	}
}

// BenchmarkReapply10kPodsUnchanged is a re-list after a restart: the same
// 10,000 pods again, nothing changed, nothing written.
func BenchmarkReapply10kPodsUnchanged(b *testing.B) {
	for _, d := range databases {
		b.Run(d.driver, func(b *testing.B) {
			s := benchStore(b, d.create, d.driver)
			pods := realisticPods(1, 10000)
			applyAll(b, s, pods)
			w, err := s.Watermark(testCtx(b))
			require.NoError(b, err)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				applyAll(b, s, pods)
			}
			b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/10kpods")
			b.StopTimer()
			got, err := s.Watermark(testCtx(b))
			require.NoError(b, err)
			require.Equal(b, w, got, "an unchanged re-list must not move the watermark")
		})
	}
}
