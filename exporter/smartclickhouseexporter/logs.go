package smartclickhouseexporter

import (
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// logRows are the logs table's columns.
type logRows struct {
	n               int
	time            []int64
	ts, observed    []uint64
	traceID, spanID []string
	flags           []uint32
	severityText    []string
	severityNumber  []uint8
	eventName, body []string
	common          commonRows
	tags            tagRows
}

func (r *logRows) addLogs(ld plog.Logs, skip skipped) {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		ri := readResource(rl.Resource(), false)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			scope := sl.Scope()
			for k := 0; k < sl.LogRecords().Len(); k++ {
				r.add(&ri, scope.Name(), scope.Version(), sl.LogRecords().At(k), skip)
			}
		}
	}
}

func (r *logRows) add(ri *resourceInfo, scopeName, scopeVersion string, lr plog.LogRecord, skip skipped) {
	if !timeOK(lr.Timestamp()) || !timeOK(lr.ObservedTimestamp()) {
		skip[reasonTimestamp]++
		return
	}
	r.n++
	// A record without a timestamp is placed at the time it was observed
	// (the OTel data model's advice for time-based queries).
	t := lr.Timestamp()
	if t == 0 {
		t = lr.ObservedTimestamp()
	}
	r.time = append(r.time, seconds(t))
	r.ts = append(r.ts, uint64(lr.Timestamp()))
	r.observed = append(r.observed, uint64(lr.ObservedTimestamp()))
	r.traceID = append(r.traceID, traceIDString(lr.TraceID()))
	r.spanID = append(r.spanID, spanIDString(lr.SpanID()))
	r.flags = append(r.flags, uint32(lr.Flags()))
	r.severityText = append(r.severityText, lr.SeverityText())
	sev := lr.SeverityNumber()
	if sev < 0 || sev > 255 {
		sev = 0
	}
	r.severityNumber = append(r.severityNumber, uint8(sev))
	r.eventName = append(r.eventName, lr.EventName())
	r.body = append(r.body, lr.Body().AsString())
	n, v := splitAttrs(lr.Attributes())
	r.common.add(ri, scopeName, scopeVersion, emptyIfNil(n), emptyIfNil(v))
	r.tags.add(&ri.ids, ri.ip)
}

func (r *logRows) columns(f schema.Features) map[string]any {
	out := map[string]any{
		"time":               r.time,
		"timestamp":          time64(f, r.ts),
		"observed_timestamp": time64(f, r.observed),
		"trace_id":           r.traceID,
		"span_id":            r.spanID,
		"flags":              r.flags,
		"severity_text":      r.severityText,
		"severity_number":    r.severityNumber,
		"event_name":         r.eventName,
		"body":               r.body,
	}
	r.common.columns(out)
	r.tags.columns(f, "", out)
	return out
}
