package translate

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// Pinpoint annotation keys that map onto OTel semantic conventions or that
// name the span.
const (
	annAPI          = 12
	annSQLID        = 20
	annSQL          = 21
	annSQLBindValue = 24
	annSQLUID       = 25
	annHTTPURL      = 40
	annHTTPParam    = 41
	annHTTPStatus   = 46
	annHTTPMethod   = 50
)

// annotated is what annotations tell beyond attributes.
type annotated struct {
	inlineAPI  string // annotation 12: the API name when apiId is 0
	method     string // HTTP method (annotation 50)
	statusCode int64  // HTTP status (annotation 46)
}

// annotationNames are the attribute names of annotations Weft keeps as they
// are; other keys become pinpoint.annotation.<key>.
var annotationNames = map[int32]string{
	13: "pinpoint.api.metadata", 14: "pinpoint.return_data", 22: "pinpoint.sql.metadata",
	23: "pinpoint.sql.param", 30: "pinpoint.string_id", 42: "http.request.body",
	45: "http.request.header.cookie", 47: "pinpoint.http.request.header", 48: "pinpoint.http.internal.display",
	49: "pinpoint.http.io", 55: "pinpoint.http.response.header", 100: "pinpoint.message_queue.url",
	300: "pinpoint.proxy.http.header", 310: "pinpoint.redis.io", 10015: "pinpoint.api.tag",
	-11: "pinpoint.args.n", -50: "pinpoint.exception", -51: "pinpoint.exception.class",
	-52: "pinpoint.exception.chain_id", -100: "pinpoint.async.invocation",
}

func annotationName(key int32) string {
	if n, ok := annotationNames[key]; ok {
		return n
	}
	switch {
	case key <= -1 && key >= -10:
		return "pinpoint.args." + strconv.Itoa(int(-key-1))
	case key <= -30 && key >= -40:
		return "pinpoint.cached_args." + strconv.Itoa(int(-key-30))
	}
	return "pinpoint.annotation." + strconv.Itoa(int(key))
}

func (t *Translator) annotate(attrs pcommon.Map, anns []*v1.PAnnotation, serviceType int32, r *Result, names Names) annotated {
	var a annotated
	for _, ann := range anns {
		v := ann.GetValue()
		if v == nil {
			continue
		}
		switch key := ann.GetKey(); key {
		case annAPI:
			a.inlineAPI = v.GetStringValue()
		case annHTTPURL:
			putURL(attrs, v.GetStringValue())
		case annHTTPParam:
			attrs.PutStr("url.query", v.GetStringValue())
		case annHTTPStatus:
			a.statusCode = annotationInt(v)
			attrs.PutInt("http.response.status_code", a.statusCode)
		case annHTTPMethod:
			a.method = v.GetStringValue()
			attrs.PutStr("http.request.method", a.method)
		case annSQLID:
			iss := v.GetIntStringStringValue()
			sql, ok := names.SQL(iss.GetIntValue())
			if !ok {
				r.Unresolved++
				sql = "unknown sql " + strconv.Itoa(int(iss.GetIntValue()))
			}
			attrs.PutStr("db.query.text", sql)
			t.putSQLValues(attrs, iss.GetStringValue1().GetValue(), iss.GetStringValue2().GetValue())
		case annSQLUID:
			bss := v.GetBytesStringStringValue()
			sql, ok := names.SQLUID(bss.GetBytesValue())
			if !ok {
				r.Unresolved++
				sql = "unknown sql uid"
			}
			attrs.PutStr("db.query.text", sql)
			t.putSQLValues(attrs, bss.GetStringValue1().GetValue(), bss.GetStringValue2().GetValue())
		case annSQL:
			attrs.PutStr("db.query.text", v.GetStringValue())
		case annSQLBindValue:
			if t.opts.SQLBindValues {
				attrs.PutStr("pinpoint.sql.bind_values", v.GetStringValue())
			}
		default:
			putAnnotationValue(attrs.PutEmpty(annotationName(key)), v)
		}
	}
	return a
}

func (t *Translator) putSQLValues(attrs pcommon.Map, output, bind string) {
	if !t.opts.SQLBindValues {
		return
	}
	if output != "" {
		attrs.PutStr("pinpoint.sql.output", output)
	}
	if bind != "" {
		attrs.PutStr("pinpoint.sql.bind_values", bind)
	}
}

// putURL maps http.url: a full URL is url.full; agents that leave the scheme
// out (the Node agent sends host:port/path) get server.address, server.port
// and url.path instead of a guessed scheme.
func putURL(attrs pcommon.Map, u string) {
	if u == "" {
		return
	}
	if strings.Contains(u, "://") {
		attrs.PutStr("url.full", u)
		return
	}
	if u[0] == '/' {
		attrs.PutStr("url.path", u)
		return
	}
	hostPort, path, _ := strings.Cut(u, "/")
	if host, port, ok := splitHostPort(hostPort); ok {
		if _, exists := attrs.Get("server.address"); !exists {
			attrs.PutStr("server.address", host)
			if port > 0 {
				attrs.PutInt("server.port", port)
			}
		}
		path, query, hasQuery := strings.Cut(path, "?")
		attrs.PutStr("url.path", "/"+path)
		if hasQuery {
			attrs.PutStr("url.query", query)
		}
		return
	}
	attrs.PutStr("pinpoint.http.url", u)
}

func annotationInt(v *v1.PAnnotationValue) int64 {
	switch f := v.GetField().(type) {
	case *v1.PAnnotationValue_IntValue:
		return int64(f.IntValue)
	case *v1.PAnnotationValue_LongValue:
		return f.LongValue
	case *v1.PAnnotationValue_ShortValue:
		return int64(f.ShortValue)
	case *v1.PAnnotationValue_StringValue:
		n, _ := strconv.ParseInt(f.StringValue, 10, 64)
		return n
	}
	return 0
}

// putAnnotationValue writes a Pinpoint annotation value as the closest OTel
// value; the composite values become a slice of their parts.
func putAnnotationValue(dst pcommon.Value, v *v1.PAnnotationValue) {
	switch f := v.GetField().(type) {
	case *v1.PAnnotationValue_StringValue:
		dst.SetStr(f.StringValue)
	case *v1.PAnnotationValue_BoolValue:
		dst.SetBool(f.BoolValue)
	case *v1.PAnnotationValue_IntValue:
		dst.SetInt(int64(f.IntValue))
	case *v1.PAnnotationValue_LongValue:
		dst.SetInt(f.LongValue)
	case *v1.PAnnotationValue_ShortValue:
		dst.SetInt(int64(f.ShortValue))
	case *v1.PAnnotationValue_DoubleValue:
		dst.SetDouble(f.DoubleValue)
	case *v1.PAnnotationValue_BinaryValue:
		dst.SetEmptyBytes().FromRaw(f.BinaryValue)
	case *v1.PAnnotationValue_ByteValue:
		dst.SetInt(int64(f.ByteValue))
	case *v1.PAnnotationValue_IntStringValue:
		s := dst.SetEmptySlice()
		s.AppendEmpty().SetInt(int64(f.IntStringValue.GetIntValue()))
		s.AppendEmpty().SetStr(f.IntStringValue.GetStringValue().GetValue())
	case *v1.PAnnotationValue_StringStringValue:
		s := dst.SetEmptySlice()
		s.AppendEmpty().SetStr(f.StringStringValue.GetStringValue1().GetValue())
		s.AppendEmpty().SetStr(f.StringStringValue.GetStringValue2().GetValue())
	case *v1.PAnnotationValue_IntStringStringValue:
		s := dst.SetEmptySlice()
		s.AppendEmpty().SetInt(int64(f.IntStringStringValue.GetIntValue()))
		s.AppendEmpty().SetStr(f.IntStringStringValue.GetStringValue1().GetValue())
		s.AppendEmpty().SetStr(f.IntStringStringValue.GetStringValue2().GetValue())
	case *v1.PAnnotationValue_LongIntIntByteByteStringValue:
		l := f.LongIntIntByteByteStringValue
		s := dst.SetEmptySlice()
		s.AppendEmpty().SetInt(l.GetLongValue())
		s.AppendEmpty().SetInt(int64(l.GetIntValue1()))
		s.AppendEmpty().SetInt(int64(l.GetIntValue2()))
		s.AppendEmpty().SetInt(int64(l.GetByteValue1()))
		s.AppendEmpty().SetInt(int64(l.GetByteValue2()))
		s.AppendEmpty().SetStr(l.GetStringValue().GetValue())
	case *v1.PAnnotationValue_IntBooleanIntBooleanValue:
		b := f.IntBooleanIntBooleanValue
		s := dst.SetEmptySlice()
		s.AppendEmpty().SetInt(int64(b.GetIntValue1()))
		s.AppendEmpty().SetBool(b.GetBoolValue1())
		s.AppendEmpty().SetInt(int64(b.GetIntValue2()))
		s.AppendEmpty().SetBool(b.GetBoolValue2())
	case *v1.PAnnotationValue_BytesStringStringValue:
		b := f.BytesStringStringValue
		s := dst.SetEmptySlice()
		s.AppendEmpty().SetEmptyBytes().FromRaw(b.GetBytesValue())
		s.AppendEmpty().SetStr(b.GetStringValue1().GetValue())
		s.AppendEmpty().SetStr(b.GetStringValue2().GetValue())
	}
}

// putAttributes copies the typed attributes newer agents send.
func putAttributes(attrs pcommon.Map, list []*v1.PAttribute) {
	for _, a := range list {
		if a.GetKey() == "" || a.GetValue() == nil {
			continue
		}
		putAttributeValue(attrs.PutEmpty(a.GetKey()), a.GetValue(), 0)
	}
}

// maxAttributeDepth bounds nested arrays and key/value lists, so that a
// hostile message cannot make the conversion recurse without end.
const maxAttributeDepth = 8

func putAttributeValue(dst pcommon.Value, v *v1.PAttributeValue, depth int) {
	switch f := v.GetField().(type) {
	case *v1.PAttributeValue_StringValue:
		dst.SetStr(f.StringValue)
	case *v1.PAttributeValue_BoolValue:
		dst.SetBool(f.BoolValue)
	case *v1.PAttributeValue_LongValue:
		dst.SetInt(f.LongValue)
	case *v1.PAttributeValue_DoubleValue:
		dst.SetDouble(f.DoubleValue)
	case *v1.PAttributeValue_BinaryValue:
		dst.SetEmptyBytes().FromRaw(f.BinaryValue)
	case *v1.PAttributeValue_ArrayValue:
		if depth >= maxAttributeDepth {
			return
		}
		s := dst.SetEmptySlice()
		for _, e := range f.ArrayValue.GetValues() {
			putAttributeValue(s.AppendEmpty(), e, depth+1)
		}
	case *v1.PAttributeValue_KvlistValue:
		if depth >= maxAttributeDepth {
			return
		}
		m := dst.SetEmptyMap()
		for _, kv := range f.KvlistValue.GetValues() {
			if kv.GetKey() != "" && kv.GetValue() != nil {
				putAttributeValue(m.PutEmpty(kv.GetKey()), kv.GetValue(), depth+1)
			}
		}
	}
}
