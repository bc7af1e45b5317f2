package v1

// These tests pin the generated types to Pinpoint's wire format. Each input is
// encoded by hand with protowire from the published field numbers and wire
// types, never with the generated code, then decoded with the generated types
// and compared field by field. proto.Equal also compares unknown fields, so a
// field number that does not match lands in the unknown set and fails the test.

import (
	"math"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// field appends one encoded field to a message being built.
type field func([]byte) []byte

func encode(fields ...field) []byte {
	var b []byte
	for _, f := range fields {
		b = f(b)
	}
	return b
}

// u64 is a varint field holding v unchanged (uint64, bool, enum).
func u64(n protowire.Number, v uint64) field {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, n, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
}

// i64 is an int32 or int64 field: a varint of the two's complement, so a
// negative int32 takes ten bytes.
func i64(n protowire.Number, v int64) field { return u64(n, uint64(v)) }

// sint is a sint32/sint64 field: a zigzag varint.
func sint(n protowire.Number, v int64) field { return u64(n, protowire.EncodeZigZag(v)) }

// sfix64 is an sfixed64 field: eight little-endian bytes.
func sfix64(n protowire.Number, v int64) field {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, n, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, uint64(v))
	}
}

// dbl is a double field: the IEEE 754 bits as fixed64.
func dbl(n protowire.Number, v float64) field {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, n, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v))
	}
}

func raw(n protowire.Number, v []byte) field {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, n, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
}

func str(n protowire.Number, s string) field { return raw(n, []byte(s)) }

// sub is an embedded message field.
func sub(n protowire.Number, fields ...field) field { return raw(n, encode(fields...)) }

// strValue is a google.protobuf.StringValue field: a message whose field 1
// is the string.
func strValue(n protowire.Number, s string) field { return sub(n, str(1, s)) }

// packed is a packed repeated int32/int64 field (proto3's default).
func packed(n protowire.Number, vs ...int64) field {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	return raw(n, p)
}

// decodeInto unmarshals wire into got and fails unless it equals want. It
// then checks that the generated code encodes want to the very same bytes:
// the hand encodings write fields in number order, as protobuf-go does.
func decodeInto(t *testing.T, wire []byte, got, want proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(wire, got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if unknown := got.ProtoReflect().GetUnknown(); len(unknown) > 0 {
		t.Errorf("top-level unknown fields (field number mismatch?): %x", unknown)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded message differs\n got: %s\nwant: %s", prototext.Format(got), prototext.Format(want))
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if string(out) != string(wire) {
		t.Errorf("re-encoded bytes differ\n got: %x\nwant: %x", out, wire)
	}
}

func TestPSpanWire(t *testing.T) {
	const (
		agentStart = int64(1_732_000_000_123)
		spanID     = int64(0x1FFFFFFFFFFFFF) // below 2^53, as the Node agent makes them
		nextSpanID = int64(-7_654_321_987_654_321)
		startTime  = int64(1_732_000_100_456)
	)
	wire := encode(sub(1, // PSpanMessage.span
		i64(1, 1), // version
		sub(2, str(1, "front"), i64(2, agentStart), i64(3, 42)), // transactionId
		sfix64(3, spanID),
		sfix64(4, -1), // parentSpanId: root
		i64(5, startTime),
		i64(6, 37),   // elapsed
		i64(7, 1),    // apiId (int32 on PSpan)
		i64(8, 1400), // serviceType NODE
		sub(9, // acceptEvent
			str(1, "/call"),
			str(2, "front:3000"),
			str(3, "127.0.0.1"),
			sub(4, str(1, "caller"), i64(2, 1400), str(3, "front:3000"), str(4, "svc")),
		),
		sub(10, i64(1, 46), sub(2, i64(3, 200))), // annotation http.status.code = 200
		i64(11, 1),                               // flag
		sint(12, 1),                              // err (sint32)
		sub(13, // spanEvent
			// sequence 0 is absent on the wire
			i64(2, 1),     // depth
			i64(3, 2),     // startElapsed
			i64(4, 30),    // endElapsed
			sint(5, 9057), // serviceType ASYNC_HTTP_CLIENT_INTERNAL, zigzag
			sub(6, i64(1, 12), sub(2, str(1, "http.request"))),
			sint(10, -3), // apiId, zigzag
			sub(11, i64(1, 99), strValue(2, "boom")),
			sub(12, sub(1, sfix64(1, nextSpanID), str(2, "front:3000"), str(3, "back:4000"))),
			i64(13, 5), // asyncEvent
			sub(14, str(1, "k"), sub(2, i64(3, -9))),
		),
		sub(14, i64(1, 77), strValue(2, "span failed")), // exceptionInfo
		i64(15, 1400), // applicationServiceType
		i64(16, 1),    // loggingTransactionInfo
		sub(17, str(1, "peer"), sub(2, str(1, "back"))),
	))

	want := &PSpanMessage{Field: &PSpanMessage_Span{Span: &PSpan{
		Version:       1,
		TransactionId: &PTransactionId{AgentId: "front", AgentStartTime: agentStart, Sequence: 42},
		SpanId:        spanID,
		ParentSpanId:  -1,
		StartTime:     startTime,
		Elapsed:       37,
		ApiId:         1,
		ServiceType:   1400,
		AcceptEvent: &PAcceptEvent{
			Rpc:        "/call",
			EndPoint:   "front:3000",
			RemoteAddr: "127.0.0.1",
			ParentInfo: &PParentInfo{
				ParentApplicationName: "caller",
				ParentApplicationType: 1400,
				AcceptorHost:          "front:3000",
				ParentServiceName:     "svc",
			},
		},
		Annotation: []*PAnnotation{{Key: 46, Value: &PAnnotationValue{Field: &PAnnotationValue_IntValue{IntValue: 200}}}},
		Flag:       1,
		Err:        1,
		SpanEvent: []*PSpanEvent{{
			Depth:        1,
			StartElapsed: 2,
			EndElapsed:   30,
			ServiceType:  9057,
			Annotation: []*PAnnotation{{
				Key:   12,
				Value: &PAnnotationValue{Field: &PAnnotationValue_StringValue{StringValue: "http.request"}},
			}},
			ApiId:         -3,
			ExceptionInfo: &PIntStringValue{IntValue: 99, StringValue: wrapperspb.String("boom")},
			NextEvent: &PNextEvent{Field: &PNextEvent_MessageEvent{MessageEvent: &PMessageEvent{
				NextSpanId:    nextSpanID,
				EndPoint:      "front:3000",
				DestinationId: "back:4000",
			}}},
			AsyncEvent: 5,
			Attribute: []*PAttribute{{
				Key:   "k",
				Value: &PAttributeValue{Field: &PAttributeValue_LongValue{LongValue: -9}},
			}},
		}},
		ExceptionInfo:          &PIntStringValue{IntValue: 77, StringValue: wrapperspb.String("span failed")},
		ApplicationServiceType: 1400,
		LoggingTransactionInfo: 1,
		Attribute: []*PAttribute{{
			Key:   "peer",
			Value: &PAttributeValue{Field: &PAttributeValue_StringValue{StringValue: "back"}},
		}},
	}}}

	got := &PSpanMessage{}
	decodeInto(t, wire, got, want)

	// A few getters spelled out, for readers who skip the struct above.
	span := got.GetSpan()
	if span.GetParentSpanId() != -1 || span.GetSpanId() != spanID {
		t.Errorf("span ids: %d / %d", span.GetSpanId(), span.GetParentSpanId())
	}
	ev := span.GetSpanEvent()[0]
	if ev.GetSequence() != 0 || ev.GetServiceType() != 9057 || ev.GetApiId() != -3 {
		t.Errorf("event: sequence %d serviceType %d apiId %d", ev.GetSequence(), ev.GetServiceType(), ev.GetApiId())
	}
	if id := ev.GetNextEvent().GetMessageEvent().GetNextSpanId(); id != nextSpanID {
		t.Errorf("nextSpanId = %d", id)
	}
	if s := span.GetExceptionInfo().GetStringValue().GetValue(); s != "span failed" {
		t.Errorf("exceptionInfo.stringValue = %q", s)
	}
}

// The event's serviceType is zigzag: a plain varint 9057 (what an int32
// declaration would send) decodes to another number. This is what makes the
// sint32 declaration observable.
func TestPSpanEventServiceTypeIsZigZag(t *testing.T) {
	ev := &PSpanEvent{}
	if err := proto.Unmarshal(encode(u64(5, 9057)), ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetServiceType() != -4529 {
		t.Errorf("plain varint 9057 decoded as %d, want the zigzag reading -4529", ev.GetServiceType())
	}
}

func TestPSpanChunkWire(t *testing.T) {
	wire := encode(sub(2, // PSpanMessage.spanChunk
		i64(1, 1),
		sub(2, i64(2, 1_732_000_000_123)), // transactionId with agentId and sequence absent
		sfix64(3, 4_503_599_627_370_497),
		str(4, "front:3000"),
		sub(5, // sequence 0, depth 1, ASYNC, apiId 2
			i64(2, 1), i64(4, 3), sint(5, 100), sint(10, 2)),
		sub(5, // sequence 1, depth 2, ASYNC_HTTP_CLIENT with the link
			i64(1, 1), i64(2, 2), i64(3, 1), i64(4, 2), sint(5, 9056),
			sub(6, i64(1, 12), sub(2, str(1, "GET"))),
			sub(6, i64(1, 40), sub(2, str(1, "127.0.0.1:4000/hello"))),
			sub(6, i64(1, 46), sub(2, i64(3, 200))),
			sub(12, sub(1, sfix64(1, 123456789), str(2, "front:3000"), str(3, "127.0.0.1:4000"))),
		),
		i64(6, 1400),
		i64(7, 1_732_000_100_500), // keyTime
		sub(8, i64(1, 3)),         // localAsyncId: asyncId 3, sequence 0 absent
	))
	ann := func(key int32, v isPAnnotationValue_Field) *PAnnotation {
		return &PAnnotation{Key: key, Value: &PAnnotationValue{Field: v}}
	}
	want := &PSpanMessage{Field: &PSpanMessage_SpanChunk{SpanChunk: &PSpanChunk{
		Version:       1,
		TransactionId: &PTransactionId{AgentStartTime: 1_732_000_000_123},
		SpanId:        4_503_599_627_370_497,
		EndPoint:      "front:3000",
		SpanEvent: []*PSpanEvent{
			{Depth: 1, EndElapsed: 3, ServiceType: 100, ApiId: 2},
			{
				Sequence: 1, Depth: 2, StartElapsed: 1, EndElapsed: 2, ServiceType: 9056,
				Annotation: []*PAnnotation{
					ann(12, &PAnnotationValue_StringValue{StringValue: "GET"}),
					ann(40, &PAnnotationValue_StringValue{StringValue: "127.0.0.1:4000/hello"}),
					ann(46, &PAnnotationValue_IntValue{IntValue: 200}),
				},
				NextEvent: &PNextEvent{Field: &PNextEvent_MessageEvent{MessageEvent: &PMessageEvent{
					NextSpanId: 123456789, EndPoint: "front:3000", DestinationId: "127.0.0.1:4000",
				}}},
			},
		},
		ApplicationServiceType: 1400,
		KeyTime:                1_732_000_100_500,
		LocalAsyncId:           &PLocalAsyncId{AsyncId: 3},
	}}}
	got := &PSpanMessage{}
	decodeInto(t, wire, got, want)
	if got.GetSpan() != nil || got.GetSpanChunk().GetLocalAsyncId().GetAsyncId() != 3 {
		t.Errorf("oneof: span %v, chunk asyncId %d", got.GetSpan(), got.GetSpanChunk().GetLocalAsyncId().GetAsyncId())
	}
}

func TestPAnnotationValuesWire(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want *PAnnotation
	}{
		{
			name: "intStringStringValue (SQL, key 20)",
			wire: encode(i64(1, 20), sub(2, sub(11, i64(1, 5), strValue(2, "SELECT * FROM t WHERE id = ?"), strValue(3, "42")))),
			want: &PAnnotation{Key: 20, Value: &PAnnotationValue{Field: &PAnnotationValue_IntStringStringValue{
				IntStringStringValue: &PIntStringStringValue{
					IntValue:     5,
					StringValue1: wrapperspb.String("SELECT * FROM t WHERE id = ?"),
					StringValue2: wrapperspb.String("42"),
				},
			}}},
		},
		{
			// An empty but present wrapper is distinct from an absent one.
			name: "intStringValue with empty string",
			wire: encode(i64(1, -50), sub(2, sub(9, i64(1, 8), sub(2)))),
			want: &PAnnotation{Key: -50, Value: &PAnnotationValue{Field: &PAnnotationValue_IntStringValue{
				IntStringValue: &PIntStringValue{IntValue: 8, StringValue: wrapperspb.String("")},
			}}},
		},
		{
			name: "bytesStringStringValue (SQL-UID, key 25)",
			wire: encode(i64(1, 25), sub(2, sub(14, raw(1, []byte{0xde, 0xad}), strValue(2, "q"), strValue(3, "b")))),
			want: &PAnnotation{Key: 25, Value: &PAnnotationValue{Field: &PAnnotationValue_BytesStringStringValue{
				BytesStringStringValue: &PBytesStringStringValue{
					BytesValue: []byte{0xde, 0xad}, StringValue1: wrapperspb.String("q"), StringValue2: wrapperspb.String("b"),
				},
			}}},
		},
		{
			name: "longIntIntByteByteStringValue",
			wire: encode(i64(1, 30), sub(2, sub(12, i64(1, 1<<40), i64(2, 7), i64(3, -1), sint(4, -2), sint(5, 3), strValue(6, "s")))),
			want: &PAnnotation{Key: 30, Value: &PAnnotationValue{Field: &PAnnotationValue_LongIntIntByteByteStringValue{
				LongIntIntByteByteStringValue: &PLongIntIntByteByteStringValue{
					LongValue: 1 << 40, IntValue1: 7, IntValue2: -1, ByteValue1: -2, ByteValue2: 3, StringValue: wrapperspb.String("s"),
				},
			}}},
		},
		{
			name: "stringStringValue",
			wire: encode(i64(1, 31), sub(2, sub(10, strValue(1, "a"), strValue(2, "b")))),
			want: &PAnnotation{Key: 31, Value: &PAnnotationValue{Field: &PAnnotationValue_StringStringValue{
				StringStringValue: &PStringStringValue{StringValue1: wrapperspb.String("a"), StringValue2: wrapperspb.String("b")},
			}}},
		},
		{
			name: "intBooleanIntBooleanValue",
			wire: encode(i64(1, 32), sub(2, sub(13, i64(1, 1), u64(2, 1), i64(3, 2), u64(4, 1)))),
			want: &PAnnotation{Key: 32, Value: &PAnnotationValue{Field: &PAnnotationValue_IntBooleanIntBooleanValue{
				IntBooleanIntBooleanValue: &PIntBooleanIntBooleanValue{IntValue1: 1, BoolValue1: true, IntValue2: 2, BoolValue2: true},
			}}},
		},
		{
			name: "shortValue is zigzag",
			wire: encode(i64(1, -1), sub(2, sint(5, -300))),
			want: &PAnnotation{Key: -1, Value: &PAnnotationValue{Field: &PAnnotationValue_ShortValue{ShortValue: -300}}},
		},
		{
			name: "byteValue is zigzag",
			wire: encode(i64(1, -2), sub(2, sint(8, -7))),
			want: &PAnnotation{Key: -2, Value: &PAnnotationValue{Field: &PAnnotationValue_ByteValue{ByteValue: -7}}},
		},
		{
			name: "longValue",
			wire: encode(i64(1, -3), sub(2, i64(4, -1<<50))),
			want: &PAnnotation{Key: -3, Value: &PAnnotationValue{Field: &PAnnotationValue_LongValue{LongValue: -1 << 50}}},
		},
		{
			name: "doubleValue",
			wire: encode(i64(1, -4), sub(2, dbl(6, 2.5))),
			want: &PAnnotation{Key: -4, Value: &PAnnotationValue{Field: &PAnnotationValue_DoubleValue{DoubleValue: 2.5}}},
		},
		{
			name: "boolValue",
			wire: encode(i64(1, -5), sub(2, u64(2, 1))),
			want: &PAnnotation{Key: -5, Value: &PAnnotationValue{Field: &PAnnotationValue_BoolValue{BoolValue: true}}},
		},
		{
			name: "binaryValue",
			wire: encode(i64(1, -6), sub(2, raw(7, []byte{1, 2, 3}))),
			want: &PAnnotation{Key: -6, Value: &PAnnotationValue{Field: &PAnnotationValue_BinaryValue{BinaryValue: []byte{1, 2, 3}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decodeInto(t, tt.wire, &PAnnotation{}, tt.want)
		})
	}
}

func TestPAttributeNestedWire(t *testing.T) {
	wire := encode(str(1, "a"), sub(2, sub(6, // arrayValue
		sub(1, u64(2, 1)),   // boolValue
		sub(1, dbl(4, 0.5)), // doubleValue
		sub(1, sub(7, sub(1, str(1, "inner"), sub(2, raw(5, []byte{9}))))), // kvlistValue
	)))
	want := &PAttribute{Key: "a", Value: &PAttributeValue{Field: &PAttributeValue_ArrayValue{ArrayValue: &PAttributeArrayValue{
		Values: []*PAttributeValue{
			{Field: &PAttributeValue_BoolValue{BoolValue: true}},
			{Field: &PAttributeValue_DoubleValue{DoubleValue: 0.5}},
			{Field: &PAttributeValue_KvlistValue{KvlistValue: &PAttributeKeyValueList{Values: []*PAttribute{{
				Key: "inner", Value: &PAttributeValue{Field: &PAttributeValue_BinaryValue{BinaryValue: []byte{9}}},
			}}}}},
		},
	}}}}
	decodeInto(t, wire, &PAttribute{}, want)
}

func TestPAgentStatWire(t *testing.T) {
	wire := encode(sub(1, // PStatMessage.agentStat
		i64(1, 1_732_000_200_000), // timestamp
		i64(2, 1000),              // collectInterval
		sub(3, // gc
			u64(1, uint64(PJvmGcType_JVM_GC_TYPE_G1)),
			i64(2, 48_000_000), // jvmMemoryHeapUsed
			i64(3, 64_000_000), // jvmMemoryHeapMax
			i64(4, 1_000), i64(5, 2_000), i64(6, 3), i64(7, 40),
			sub(8, i64(1, 11), i64(2, 120), dbl(3, 0.1), dbl(4, 0.2), dbl(5, 0.3), dbl(6, 0.4), dbl(7, 0.5), dbl(8, 0.6)),
		),
		sub(4, dbl(1, 0.25), dbl(2, 0.125)),                                            // cpuLoad
		sub(5, i64(2, 10), i64(3, 11), i64(4, 12), i64(5, 13), i64(6, 14), i64(7, 15)), // transaction
		sub(6, sub(1, i64(1, 1), i64(2, 2), packed(3, 4, 3, 2, 1))),                    // activeTrace
		sub(7, sub(1, i64(1, 1), i64(2, 2100), str(3, "db"), str(4, "jdbc:mysql://h/db"), i64(5, 3), i64(6, 10))),
		sub(8, i64(1, 12), i64(2, 250)), // responseTime avg, max
		sub(9, i64(1, 1), sub(2, str(1, "main"), i64(2, 1), u64(12, uint64(PThreadState_THREAD_STATE_BLOCKED)), str(13, "at x"))),
		sub(10, i64(1, 123)), // fileDescriptor
		sub(11, i64(1, 1), i64(2, 2), i64(3, 3), i64(4, 4)), // directBuffer
		str(12, "meta"),
		sub(13, i64(1, 33)),             // totalThread
		sub(14, i64(1, 900), i64(2, 5)), // loadedClass
	))
	want := &PStatMessage{Field: &PStatMessage_AgentStat{AgentStat: &PAgentStat{
		Timestamp:       1_732_000_200_000,
		CollectInterval: 1000,
		Gc: &PJvmGc{
			Type:                 PJvmGcType_JVM_GC_TYPE_G1,
			JvmMemoryHeapUsed:    48_000_000,
			JvmMemoryHeapMax:     64_000_000,
			JvmMemoryNonHeapUsed: 1_000,
			JvmMemoryNonHeapMax:  2_000,
			JvmGcOldCount:        3,
			JvmGcOldTime:         40,
			JvmGcDetailed: &PJvmGcDetailed{
				JvmGcNewCount: 11, JvmGcNewTime: 120,
				JvmPoolCodeCacheUsed: 0.1, JvmPoolNewGenUsed: 0.2, JvmPoolOldGenUsed: 0.3,
				JvmPoolSurvivorSpaceUsed: 0.4, JvmPoolPermGenUsed: 0.5, JvmPoolMetaspaceUsed: 0.6,
			},
		},
		CpuLoad: &PCpuLoad{JvmCpuLoad: 0.25, SystemCpuLoad: 0.125},
		Transaction: &PTransaction{
			SampledNewCount: 10, SampledContinuationCount: 11,
			UnsampledNewCount: 12, UnsampledContinuationCount: 13,
			SkippedNewCount: 14, SkippedContinuationCount: 15,
		},
		ActiveTrace: &PActiveTrace{Histogram: &PActiveTraceHistogram{
			Version: 1, HistogramSchemaType: 2, ActiveTraceCount: []int32{4, 3, 2, 1},
		}},
		DataSourceList: &PDataSourceList{DataSource: []*PDataSource{{
			Id: 1, ServiceTypeCode: 2100, DatabaseName: "db", Url: "jdbc:mysql://h/db",
			ActiveConnectionSize: 3, MaxConnectionSize: 10,
		}}},
		ResponseTime: &PResponseTime{Avg: 12, Max: 250},
		Deadlock: &PDeadlock{Count: 1, ThreadDump: []*PThreadDump{{
			ThreadName: "main", ThreadId: 1, ThreadState: PThreadState_THREAD_STATE_BLOCKED, StackTrace: []string{"at x"},
		}}},
		FileDescriptor: &PFileDescriptor{OpenFileDescriptorCount: 123},
		DirectBuffer:   &PDirectBuffer{DirectCount: 1, DirectMemoryUsed: 2, MappedCount: 3, MappedMemoryUsed: 4},
		Metadata:       "meta",
		TotalThread:    &PTotalThread{TotalThreadCount: 33},
		LoadedClass:    &PLoadedClass{LoadedClassCount: 900, UnloadedClassCount: 5},
	}}}
	decodeInto(t, wire, &PStatMessage{}, want)
}

// What the Node agent sends: only heap used/max and cpu load.
func TestPAgentStatNodeShapeWire(t *testing.T) {
	stat := encode(i64(1, 1_732_000_205_000), i64(2, 1000),
		sub(3, i64(2, 9_000_000), i64(3, 12_000_000)),
		sub(4, dbl(1, 0.0625)))
	wire := encode(sub(2, raw(1, stat), raw(1, stat))) // agentStatBatch with two
	one := &PAgentStat{
		Timestamp: 1_732_000_205_000, CollectInterval: 1000,
		Gc:      &PJvmGc{JvmMemoryHeapUsed: 9_000_000, JvmMemoryHeapMax: 12_000_000},
		CpuLoad: &PCpuLoad{JvmCpuLoad: 0.0625},
	}
	want := &PStatMessage{Field: &PStatMessage_AgentStatBatch{AgentStatBatch: &PAgentStatBatch{
		AgentStat: []*PAgentStat{one, proto.Clone(one).(*PAgentStat)},
	}}}
	decodeInto(t, wire, &PStatMessage{}, want)
}

func TestPAgentInfoAndMetadataWire(t *testing.T) {
	t.Run("PAgentInfo", func(t *testing.T) {
		wire := encode(str(1, "host"), str(2, "10.0.0.5"), str(3, "8080"), i64(4, 1400), i64(5, 4321),
			str(6, "0.8.7"), str(7, "v20"), i64(8, 1_732_000_000_999), i64(9, 1),
			sub(10, str(1, "node"), str(2, "--a"), str(2, "--b"), sub(3, str(1, "svc"), str(2, "lib1"), str(2, "lib2"))),
			sub(11, i64(1, 21), str(2, "21.0.1"), u64(3, uint64(PJvmGcType_JVM_GC_TYPE_ZGC))),
			u64(12, 1))
		want := &PAgentInfo{
			Hostname: "host", Ip: "10.0.0.5", Ports: "8080", ServiceType: 1400, Pid: 4321,
			AgentVersion: "0.8.7", VmVersion: "v20", EndTimestamp: 1_732_000_000_999, EndStatus: 1,
			ServerMetaData: &PServerMetaData{
				ServerInfo: "node", VmArg: []string{"--a", "--b"},
				ServiceInfo: []*PServiceInfo{{ServiceName: "svc", ServiceLib: []string{"lib1", "lib2"}}},
			},
			JvmInfo:   &PJvmInfo{Version: 21, VmVersion: "21.0.1", GcType: PJvmGcType_JVM_GC_TYPE_ZGC},
			Container: true,
		}
		decodeInto(t, wire, &PAgentInfo{}, want)
	})
	t.Run("PApiMetaData", func(t *testing.T) {
		// line -1 is a negative int32: ten varint bytes.
		wire := encode(i64(1, 1), str(2, "Node Server Process"), i64(3, -1), i64(4, 100), str(5, "x.js"))
		want := &PApiMetaData{ApiId: 1, ApiInfo: "Node Server Process", Line: -1, Type: 100, Location: "x.js"}
		decodeInto(t, wire, &PApiMetaData{}, want)
	})
	t.Run("PSqlUidMetaData", func(t *testing.T) {
		wire := encode(raw(1, []byte{1, 2, 3, 4}), str(2, "select 1"))
		decodeInto(t, wire, &PSqlUidMetaData{}, &PSqlUidMetaData{SqlUid: []byte{1, 2, 3, 4}, Sql: "select 1"})
	})
	t.Run("PExceptionMetaData", func(t *testing.T) {
		wire := encode(
			sub(1, str(1, "Error"), str(2, "bad"), i64(3, 5), i64(4, 6), i64(5, 1),
				sub(6, str(1, "C"), str(2, "c.js"), i64(3, 10), str(4, "m"))),
			sub(2, str(1, "a"), i64(2, 2), i64(3, 3)),
			sfix64(3, -99),
			str(4, "/users/{id}"))
		want := &PExceptionMetaData{
			Exceptions: []*PException{{
				ExceptionClassName: "Error", ExceptionMessage: "bad", StartTime: 5, ExceptionId: 6, ExceptionDepth: 1,
				StackTraceElement: []*PStackTraceElement{{ClassName: "C", FileName: "c.js", LineNumber: 10, MethodName: "m"}},
			}},
			TransactionId: &PTransactionId{AgentId: "a", AgentStartTime: 2, Sequence: 3},
			SpanId:        -99,
			UriTemplate:   "/users/{id}",
		}
		decodeInto(t, wire, &PExceptionMetaData{}, want)
	})
	t.Run("PSpanResultBatch", func(t *testing.T) {
		wire := encode(sub(1, i64(1, 2), i64(2, 7), str(3, "version 2 rejected")))
		want := &PSpanResultBatch{PartialSuccess: &PPartialSuccess{RejectedSpans: 2, ErrorId: 7, ErrorMessage: "version 2 rejected"}}
		decodeInto(t, wire, &PSpanResultBatch{}, want)
	})
	t.Run("PSpanMessageBatch", func(t *testing.T) {
		wire := encode(sub(1, sub(1, i64(1, 1))), sub(1, sub(2, i64(1, 1))))
		want := &PSpanMessageBatch{Span: []*PSpanMessage{
			{Field: &PSpanMessage_Span{Span: &PSpan{Version: 1}}},
			{Field: &PSpanMessage_SpanChunk{SpanChunk: &PSpanChunk{Version: 1}}},
		}}
		decodeInto(t, wire, &PSpanMessageBatch{}, want)
	})
}

func TestCommandWire(t *testing.T) {
	t.Run("handshake", func(t *testing.T) {
		wire := encode(sub(1, packed(1, 710, 730, 740, 750)))
		want := &PCmdMessage{Message: &PCmdMessage_HandshakeMessage{HandshakeMessage: &PCmdServiceHandshake{
			SupportCommandServiceKey: []int32{710, 730, 740, 750},
		}}}
		decodeInto(t, wire, &PCmdMessage{}, want)
	})
	t.Run("failMessage", func(t *testing.T) {
		wire := encode(sub(2, i64(1, 3), i64(2, -1), strValue(3, "unsupported")))
		want := &PCmdMessage{Message: &PCmdMessage_FailMessage{FailMessage: &PCmdResponse{
			ResponseId: 3, Status: -1, Message: wrapperspb.String("unsupported"),
		}}}
		decodeInto(t, wire, &PCmdMessage{}, want)
	})
	// The command oneof's field numbers are the command codes.
	for _, tt := range []struct {
		name string
		wire []byte
		want *PCmdRequest
	}{
		{"echo", encode(i64(1, 1), sub(710, str(1, "hi"))),
			&PCmdRequest{RequestId: 1, Command: &PCmdRequest_CommandEcho{CommandEcho: &PCmdEcho{Message: "hi"}}}},
		{"activeThreadCount", encode(i64(1, 2), sub(730)),
			&PCmdRequest{RequestId: 2, Command: &PCmdRequest_CommandActiveThreadCount{CommandActiveThreadCount: &PCmdActiveThreadCount{}}}},
		{"dump", encode(i64(1, 3), sub(740, i64(1, 5), str(2, "t1"), packed(3, 77))),
			&PCmdRequest{RequestId: 3, Command: &PCmdRequest_CommandActiveThreadDump{CommandActiveThreadDump: &PCmdActiveThreadDump{
				Limit: 5, ThreadName: []string{"t1"}, LocalTraceId: []int64{77},
			}}}},
		{"lightDump", encode(i64(1, 4), sub(750, i64(1, 6))),
			&PCmdRequest{RequestId: 4, Command: &PCmdRequest_CommandActiveThreadLightDump{CommandActiveThreadLightDump: &PCmdActiveThreadLightDump{Limit: 6}}}},
	} {
		t.Run(tt.name, func(t *testing.T) { decodeInto(t, tt.wire, &PCmdRequest{}, tt.want) })
	}
	t.Run("activeThreadCountRes", func(t *testing.T) {
		wire := encode(sub(1, i64(1, 2), i64(2, 9), sub(3)), i64(2, 1), packed(3, 0, 1, 2, 3), i64(4, 1_732_000_000_000))
		want := &PCmdActiveThreadCountRes{
			CommonStreamResponse: &PCmdStreamResponse{ResponseId: 2, SequenceId: 9, Message: wrapperspb.String("")},
			HistogramSchemaType:  1, ActiveThreadCount: []int32{0, 1, 2, 3}, TimeStamp: 1_732_000_000_000,
		}
		decodeInto(t, wire, &PCmdActiveThreadCountRes{}, want)
	})
	t.Run("lightDumpRes", func(t *testing.T) {
		wire := encode(sub(1, i64(1, 4)),
			sub(2, i64(1, 10), i64(2, 11), sub(3, str(1, "w"), i64(2, 8), u64(3, uint64(PThreadState_THREAD_STATE_WAITING))),
				u64(4, 1), str(5, "a^1^2"), str(6, "/x")),
			str(3, "JAVA"), str(4, "ORACLE"), str(5, "21"))
		want := &PCmdActiveThreadLightDumpRes{
			CommonResponse: &PCmdResponse{ResponseId: 4},
			ThreadDump: []*PActiveThreadLightDump{{
				StartTime: 10, LocalTraceId: 11,
				ThreadDump: &PThreadLightDump{ThreadName: "w", ThreadId: 8, ThreadState: PThreadState_THREAD_STATE_WAITING},
				Sampled:    true, TransactionId: "a^1^2", EntryPoint: "/x",
			}},
			Type: "JAVA", SubType: "ORACLE", Version: "21",
		}
		decodeInto(t, wire, &PCmdActiveThreadLightDumpRes{}, want)
	})
}

func TestServiceDescriptors(t *testing.T) {
	type kind int
	const (
		unary kind = iota
		clientStream
		serverStream
		bidi
	)
	tests := []struct {
		fullMethod string
		kind       kind
		in, out    protoreflect.FullName
	}{
		{Span_SendSpan_FullMethodName, clientStream, "v1.PSpanMessage", "google.protobuf.Empty"},
		{Span_SendSpanBatch_FullMethodName, unary, "v1.PSpanMessageBatch", "v1.PSpanResultBatch"},
		{Agent_RequestAgentInfo_FullMethodName, unary, "v1.PAgentInfo", "v1.PResult"},
		{Agent_PingSession_FullMethodName, bidi, "v1.PPing", "v1.PPing"},
		{Metadata_RequestSqlMetaData_FullMethodName, unary, "v1.PSqlMetaData", "v1.PResult"},
		{Metadata_RequestSqlUidMetaData_FullMethodName, unary, "v1.PSqlUidMetaData", "v1.PResult"},
		{Metadata_RequestApiMetaData_FullMethodName, unary, "v1.PApiMetaData", "v1.PResult"},
		{Metadata_RequestStringMetaData_FullMethodName, unary, "v1.PStringMetaData", "v1.PResult"},
		{Metadata_RequestExceptionMetaData_FullMethodName, unary, "v1.PExceptionMetaData", "v1.PResult"},
		{Stat_SendAgentStat_FullMethodName, clientStream, "v1.PStatMessage", "google.protobuf.Empty"},
		{ProfilerCommandService_HandleCommand_FullMethodName, bidi, "v1.PCmdMessage", "v1.PCmdRequest"},
		{ProfilerCommandService_HandleCommandV2_FullMethodName, bidi, "v1.PCmdMessage", "v1.PCmdRequest"},
		{ProfilerCommandService_CommandEcho_FullMethodName, unary, "v1.PCmdEchoResponse", "google.protobuf.Empty"},
		{ProfilerCommandService_CommandStreamActiveThreadCount_FullMethodName, clientStream, "v1.PCmdActiveThreadCountRes", "google.protobuf.Empty"},
		{ProfilerCommandService_CommandActiveThreadDump_FullMethodName, unary, "v1.PCmdActiveThreadDumpRes", "google.protobuf.Empty"},
		{ProfilerCommandService_CommandActiveThreadLightDump_FullMethodName, unary, "v1.PCmdActiveThreadLightDumpRes", "google.protobuf.Empty"},
	}

	// Every method of the proto file, keyed by its gRPC path.
	methods := map[string]protoreflect.MethodDescriptor{}
	services := File_pinpoint_service_proto.Services()
	for i := 0; i < services.Len(); i++ {
		s := services.Get(i)
		for j := 0; j < s.Methods().Len(); j++ {
			m := s.Methods().Get(j)
			methods["/"+string(s.FullName())+"/"+string(m.Name())] = m
		}
	}
	// And every method of the grpc-go service descriptions.
	descs := map[string]bool{} // path -> is a stream
	for _, sd := range []grpc.ServiceDesc{Span_ServiceDesc, Agent_ServiceDesc, Metadata_ServiceDesc, Stat_ServiceDesc, ProfilerCommandService_ServiceDesc} {
		for _, m := range sd.Methods {
			descs["/"+sd.ServiceName+"/"+m.MethodName] = false
		}
		for _, s := range sd.Streams {
			path := "/" + sd.ServiceName + "/" + s.StreamName
			descs[path] = true
			for _, tt := range tests {
				if tt.fullMethod == path && (s.ClientStreams != (tt.kind == clientStream || tt.kind == bidi) ||
					s.ServerStreams != (tt.kind == serverStream || tt.kind == bidi)) {
					t.Errorf("%s: grpc StreamDesc client %v server %v, want kind %d", path, s.ClientStreams, s.ServerStreams, tt.kind)
				}
			}
		}
	}
	if len(methods) != len(tests) || len(descs) != len(tests) {
		t.Errorf("%d methods in the proto, %d in the grpc descriptions, %d expected", len(methods), len(descs), len(tests))
	}

	spelled := map[string]bool{
		"/v1.Span/SendSpan": true, "/v1.Span/SendSpanBatch": true,
		"/v1.Agent/RequestAgentInfo": true, "/v1.Agent/PingSession": true,
		"/v1.Metadata/RequestSqlMetaData": true, "/v1.Metadata/RequestSqlUidMetaData": true,
		"/v1.Metadata/RequestApiMetaData": true, "/v1.Metadata/RequestStringMetaData": true,
		"/v1.Metadata/RequestExceptionMetaData": true, "/v1.Stat/SendAgentStat": true,
		"/v1.ProfilerCommandService/HandleCommand": true, "/v1.ProfilerCommandService/HandleCommandV2": true,
		"/v1.ProfilerCommandService/CommandEcho": true, "/v1.ProfilerCommandService/CommandStreamActiveThreadCount": true,
		"/v1.ProfilerCommandService/CommandActiveThreadDump": true, "/v1.ProfilerCommandService/CommandActiveThreadLightDump": true,
	}
	for _, tt := range tests {
		if !spelled[tt.fullMethod] {
			t.Errorf("unexpected method path %q", tt.fullMethod)
		}
		m, ok := methods[tt.fullMethod]
		if !ok {
			t.Errorf("%s: not in the proto descriptors", tt.fullMethod)
			continue
		}
		wantClient := tt.kind == clientStream || tt.kind == bidi
		wantServer := tt.kind == serverStream || tt.kind == bidi
		if m.IsStreamingClient() != wantClient || m.IsStreamingServer() != wantServer {
			t.Errorf("%s: streaming client %v server %v, want %v %v", tt.fullMethod, m.IsStreamingClient(), m.IsStreamingServer(), wantClient, wantServer)
		}
		if m.Input().FullName() != tt.in || m.Output().FullName() != tt.out {
			t.Errorf("%s: %s -> %s, want %s -> %s", tt.fullMethod, m.Input().FullName(), m.Output().FullName(), tt.in, tt.out)
		}
		if isStream, ok := descs[tt.fullMethod]; !ok || isStream != (tt.kind != unary) {
			t.Errorf("%s: grpc description present %v stream %v", tt.fullMethod, ok, isStream)
		}
	}
}
