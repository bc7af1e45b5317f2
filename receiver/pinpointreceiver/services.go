package pinpointreceiver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/stat"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/translate"
)

var errEmptyMessage = errors.New("message carries neither a span nor a span chunk")

// header validates the agent headers of a call.
func header(ctx context.Context) (agentHeader, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return parseHeader(md)
}

// recvAll hands every message of a client stream to handle until the agent
// ends the stream (nil), the stream fails, or the receiver shuts down. Agents
// keep their streams open for many minutes, so waiting for them would hold
// up shutdown.
func recvAll[T any](r *pinpointReceiver, recv func() (*T, error), handle func(*T)) error {
	msgs := make(chan *T)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-r.done:
				return
			}
		}
	}()
	for {
		select {
		case m := <-msgs:
			handle(m)
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-r.done:
			return status.Error(codes.Unavailable, "the collector is shutting down")
		}
	}
}

func (r *pinpointReceiver) reject(ctx context.Context, reason string, err error, h agentHeader) {
	r.telemetry.ReceiverPinpointRejectedMessages.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	r.settings.Logger.Debug("Rejected a Pinpoint message", zap.String("reason", reason), zap.Error(err), zap.Stringer("agent", h))
}

// rejectReason names a conversion error for the rejected-messages metric.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, errEmptyMessage), errors.Is(err, translate.ErrEmptyBundle):
		return "empty"
	case errors.Is(err, translate.ErrNoTransaction):
		return "no_transaction"
	case errors.Is(err, translate.ErrImpossibleEvent):
		return "impossible_event"
	default:
		return "unsupported_version"
	}
}

// addSpanMessage hands a message to the assembler. A message that cannot be
// converted is counted and reported (true); a pipeline error is only logged
// here, the receiver's own metrics count the refused spans.
func (r *pinpointReceiver) addSpanMessage(ctx context.Context, h agentHeader, m *v1.PSpanMessage) (rejected, pipeline error) {
	err := r.assembler.add(ctx, h, m)
	if err == nil {
		return nil, nil
	}
	if errors.As(err, new(*conversionError)) {
		r.reject(ctx, rejectReason(err), err, h)
		return err, nil
	}
	r.settings.Logger.Debug("The pipeline refused Pinpoint spans", zap.Error(err), zap.Stringer("agent", h))
	return nil, err
}

// consumeTraces sends converted spans down the traces pipeline.
func (r *pinpointReceiver) consumeTraces(ctx context.Context, td ptrace.Traces, spans int) error {
	if r.traces == nil {
		return nil
	}
	ctx = r.obsTraces.StartTracesOp(ctx)
	err := r.traces.ConsumeTraces(ctx, td)
	r.obsTraces.EndTracesOp(ctx, "pinpoint", spans, err)
	return err
}

func (r *pinpointReceiver) consumeMetrics(ctx context.Context, md pmetric.Metrics, points int) error {
	if r.metrics == nil {
		return nil
	}
	ctx = r.obsMetrics.StartMetricsOp(ctx)
	err := r.metrics.ConsumeMetrics(ctx, md)
	r.obsMetrics.EndMetricsOp(ctx, "pinpoint", points, err)
	return err
}

// spanService receives spans and span chunks.
type spanService struct {
	v1.UnimplementedSpanServer
	r *pinpointReceiver
}

// SendSpan is the stream the Node and Go agents use. A bad message is
// counted and skipped: ending the stream would lose whatever else the agent
// has already written to it.
func (s *spanService) SendSpan(stream grpc.ClientStreamingServer[v1.PSpanMessage, emptypb.Empty]) error {
	ctx := stream.Context()
	h, err := header(ctx)
	if err != nil {
		return err
	}
	err = recvAll(s.r, stream.Recv, func(m *v1.PSpanMessage) {
		_, _ = s.r.addSpanMessage(ctx, h, m)
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&emptypb.Empty{})
}

// SendSpanBatch is what the Java agent (3.1 and later) uses. Rejected
// messages are reported in partial_success; a pipeline that refuses data
// for now answers RESOURCE_EXHAUSTED so that the agent retries.
func (s *spanService) SendSpanBatch(ctx context.Context, batch *v1.PSpanMessageBatch) (*v1.PSpanResultBatch, error) {
	h, err := header(ctx)
	if err != nil {
		return nil, err
	}
	var rejected int64
	var firstErr error
	for _, m := range batch.GetSpan() {
		bad, pipeErr := s.r.addSpanMessage(ctx, h, m)
		switch {
		case pipeErr != nil && !consumererror.IsPermanent(pipeErr):
			return nil, status.Errorf(codes.ResourceExhausted, "the pipeline refused spans, retry later: %v", pipeErr)
		case pipeErr != nil:
			bad = pipeErr
		}
		if bad != nil {
			rejected++
			if firstErr == nil {
				firstErr = bad
			}
		}
	}
	res := &v1.PSpanResultBatch{}
	if rejected > 0 {
		res.PartialSuccess = &v1.PPartialSuccess{RejectedSpans: rejected, ErrorMessage: firstErr.Error()}
	}
	return res, nil
}

// agentService receives agent info and keeps the liveness session.
type agentService struct {
	v1.UnimplementedAgentServer
	r *pinpointReceiver
}

func (s *agentService) RequestAgentInfo(ctx context.Context, info *v1.PAgentInfo) (*v1.PResult, error) {
	h, err := header(ctx)
	if err != nil {
		return nil, err
	}
	return s.r.storeMetadata(ctx, h, kindAgentInfo, "", info), nil
}

// PingSession answers each ping, and reports the agent alive while the
// session is open.
func (s *agentService) PingSession(stream grpc.BidiStreamingServer[v1.PPing, v1.PPing]) error {
	ctx := stream.Context()
	h, err := header(ctx)
	if err != nil {
		return err
	}
	err = recvAll(s.r, stream.Recv, func(*v1.PPing) {
		if err := stream.Send(&v1.PPing{}); err != nil {
			s.r.settings.Logger.Debug("Answering a Pinpoint ping failed", zap.Error(err))
		}
		s.r.liveness(ctx, h, true)
	})
	s.r.liveness(context.WithoutCancel(ctx), h, false)
	return err
}

func (r *pinpointReceiver) liveness(ctx context.Context, h agentHeader, alive bool) {
	if r.metrics == nil {
		return
	}
	md := pmetric.NewMetrics()
	stat.Liveness(md, r.resource(h), time.Now(), alive)
	if err := r.consumeMetrics(ctx, md, 1); err != nil {
		r.settings.Logger.Debug("Sending agent liveness failed", zap.Error(err))
	}
}

// metadataService receives the names agents refer to by id.
type metadataService struct {
	v1.UnimplementedMetadataServer
	r *pinpointReceiver
}

func (s *metadataService) RequestApiMetaData(ctx context.Context, m *v1.PApiMetaData) (*v1.PResult, error) {
	return s.r.metadata(ctx, kindAPI, strconv.Itoa(int(m.GetApiId())), m)
}

func (s *metadataService) RequestSqlMetaData(ctx context.Context, m *v1.PSqlMetaData) (*v1.PResult, error) {
	return s.r.metadata(ctx, kindSQL, strconv.Itoa(int(m.GetSqlId())), m)
}

func (s *metadataService) RequestSqlUidMetaData(ctx context.Context, m *v1.PSqlUidMetaData) (*v1.PResult, error) {
	if len(m.GetSqlUid()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "sqlUid is empty")
	}
	return s.r.metadata(ctx, kindSQLUID, hex.EncodeToString(m.GetSqlUid()), m)
}

func (s *metadataService) RequestStringMetaData(ctx context.Context, m *v1.PStringMetaData) (*v1.PResult, error) {
	return s.r.metadata(ctx, kindString, strconv.Itoa(int(m.GetStringId())), m)
}

// RequestExceptionMetaData is accepted and acknowledged; exception chains are
// not converted (the span's exceptionInfo already carries the exception).
func (s *metadataService) RequestExceptionMetaData(ctx context.Context, _ *v1.PExceptionMetaData) (*v1.PResult, error) {
	if _, err := header(ctx); err != nil {
		return nil, err
	}
	return &v1.PResult{Success: true}, nil
}

func (r *pinpointReceiver) metadata(ctx context.Context, kind, id string, m proto.Message) (*v1.PResult, error) {
	h, err := header(ctx)
	if err != nil {
		return nil, err
	}
	return r.storeMetadata(ctx, h, kind, id, m), nil
}

// storeMetadata keeps a metadata entry and wakes bundles waiting for names.
// The agent is told success even when the storage write failed: the entry is
// held in memory, and an error would make the agent retry, not fix storage.
func (r *pinpointReceiver) storeMetadata(ctx context.Context, h agentHeader, kind, id string, m proto.Message) *v1.PResult {
	agent := agentKey{agentID: h.AgentID, start: h.StartTime}
	if err := r.store.put(ctx, metaKey{agent: agent, kind: kind, id: id}, m); err != nil {
		r.settings.Logger.Warn("Keeping Pinpoint metadata in memory only", zap.String("kind", kind), zap.Stringer("agent", h), zap.Error(err))
	}
	r.store.forget(agent)
	r.telemetry.ReceiverPinpointMetadataReceived.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
	r.assembler.metadataArrived()
	return &v1.PResult{Success: true}
}

// statService receives agent statistics.
type statService struct {
	v1.UnimplementedStatServer
	r *pinpointReceiver
}

func (s *statService) SendAgentStat(stream grpc.ClientStreamingServer[v1.PStatMessage, emptypb.Empty]) error {
	ctx := stream.Context()
	h, err := header(ctx)
	if err != nil {
		return err
	}
	err = recvAll(s.r, stream.Recv, func(m *v1.PStatMessage) {
		if s.r.metrics == nil {
			return
		}
		md := pmetric.NewMetrics()
		n, err := stat.Translate(md, s.r.resource(h), h.StartTime, m)
		if err != nil {
			s.r.reject(ctx, "stat", err, h)
			return
		}
		if err := s.r.consumeMetrics(ctx, md, n); err != nil {
			s.r.settings.Logger.Debug("Sending agent stats failed", zap.Error(err))
		}
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&emptypb.Empty{})
}

// commandService completes the agents' command handshake. Weft sends no
// commands (thread dumps, echo) to agents.
type commandService struct {
	v1.UnimplementedProfilerCommandServiceServer
	r *pinpointReceiver
}

func (s *commandService) HandleCommand(stream grpc.BidiStreamingServer[v1.PCmdMessage, v1.PCmdRequest]) error {
	return s.hold(stream)
}

func (s *commandService) HandleCommandV2(stream grpc.BidiStreamingServer[v1.PCmdMessage, v1.PCmdRequest]) error {
	return s.hold(stream)
}

// hold reads the agent's handshake and keeps the stream open until the agent
// or the collector ends it.
func (s *commandService) hold(stream grpc.BidiStreamingServer[v1.PCmdMessage, v1.PCmdRequest]) error {
	if _, err := header(stream.Context()); err != nil {
		return err
	}
	return recvAll(s.r, stream.Recv, func(*v1.PCmdMessage) {})
}

func (s *commandService) CommandEcho(context.Context, *v1.PCmdEchoResponse) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *commandService) CommandActiveThreadDump(context.Context, *v1.PCmdActiveThreadDumpRes) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *commandService) CommandActiveThreadLightDump(context.Context, *v1.PCmdActiveThreadLightDumpRes) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *commandService) CommandStreamActiveThreadCount(stream grpc.ClientStreamingServer[v1.PCmdActiveThreadCountRes, emptypb.Empty]) error {
	if err := recvAll(s.r, stream.Recv, func(*v1.PCmdActiveThreadCountRes) {}); err != nil {
		return err
	}
	return stream.SendAndClose(&emptypb.Empty{})
}

// conversionError marks a message that cannot be converted.
type conversionError struct{ err error }

func (e *conversionError) Error() string { return fmt.Sprintf("invalid message: %v", e.err) }
func (e *conversionError) Unwrap() error { return e.err }
