package openfalconreceiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
)

// transferReply is transfer's HTTP reply: {"msg":"success","data":{...}}.
type transferReply struct {
	Msg  string                  `json:"msg"`
	Data falcon.TransferResponse `json:"data"`
}

// handleTransferPush is transfer's /api/push. The bodies of its replies are
// transfer's, byte for byte, so that scripts which check them keep working.
func (r *falconReceiver) handleTransferPush(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength == 0 {
		r.reject(req.Context(), transferHTTP, rejectBlankBody, nil)
		http.Error(w, "blank body", http.StatusBadRequest)
		return
	}
	start := time.Now()
	var args falcon.UpdateArgs
	defer args.Release()
	if !r.decodeBody(w, req, transferHTTP, &args, "decode error") {
		return
	}
	invalid, err := r.push(req.Context(), transferHTTP, args.Items)
	if err != nil {
		pipelineError(w, err)
		return
	}
	body, err := json.Marshal(transferReply{Msg: "success", Data: falcon.NewTransferResponse(len(args.Items), invalid, start)})
	if err != nil { // a struct of a string and numbers always marshals
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(body)
}

// handleAgentPush is falcon-agent's /v1/push, with the agent's replies
// (its "connot" included). The agent forwards what it gets to transfer
// without looking; here the items are checked as transfer checks them, and
// invalid ones are counted in the receiver's metrics only, as the agent's
// reply has no place for them.
func (r *falconReceiver) handleAgentPush(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength == 0 {
		r.reject(req.Context(), agentHTTP, rejectBlankBody, nil)
		http.Error(w, "body is blank", http.StatusBadRequest)
		return
	}
	var args falcon.UpdateArgs
	defer args.Release()
	if !r.decodeBody(w, req, agentHTTP, &args, "connot decode body") {
		return
	}
	if _, err := r.push(req.Context(), agentHTTP, args.Items); err != nil {
		pipelineError(w, err)
		return
	}
	_, _ = w.Write([]byte("success"))
}

// decodeBody decodes the first JSON value of the body, as the originals'
// json.Decoder does (anything after it is ignored). A body that is not JSON
// gets the original's 400 reply; one over max_request_body_size a 413 that
// says which limit to raise.
func (r *falconReceiver) decodeBody(w http.ResponseWriter, req *http.Request, l listener, args *falcon.UpdateArgs, badJSON string) bool {
	body := &bodyReader{r: req.Body}
	err := json.NewDecoder(body).Decode(args)
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(body.err, &tooLarge) {
		r.reject(req.Context(), l, rejectTooLarge, err)
		http.Error(w, fmt.Sprintf("request body larger than %d bytes: send smaller batches or raise %s.max_request_body_size", tooLarge.Limit, l),
			http.StatusRequestEntityTooLarge)
		return false
	}
	r.reject(req.Context(), l, rejectMalformed, err)
	http.Error(w, badJSON, http.StatusBadRequest)
	return false
}

// pipelineError answers a push the pipeline refused: 503 when sending again
// later can work, 400 when it cannot.
func pipelineError(w http.ResponseWriter, err error) {
	if consumererror.IsPermanent(err) {
		http.Error(w, "the pipeline refused the data: "+err.Error(), http.StatusBadRequest)
		return
	}
	http.Error(w, "the pipeline cannot take data now, send again later: "+err.Error(), http.StatusServiceUnavailable)
}

// bodyReader keeps the body's read error: how the JSON decoder reports it
// is its own business, and a body over the limit needs its own reply.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}
