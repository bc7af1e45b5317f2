package wasmplugin

import (
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Failure says why a call did not produce keys. Every failure leaves the
// record as it was; the caller passes it on and counts the failure (Stats
// counts them too).
type Failure int

const (
	// FailureTimeout: the call ran past Options.Timeout and was stopped.
	FailureTimeout Failure = iota
	// FailureMemory: the plugin ran out of its memory limit (best effort:
	// an exit or trap while memory is near the limit, or Go's "out of
	// memory" message).
	FailureMemory
	// FailureTrap: the plugin trapped, panicked or exited.
	FailureTrap
	// FailureGarbage: the plugin answered with something that is not a
	// valid answer (ABI.md): pointers out of its memory, bad encoding.
	FailureGarbage
	// FailureInput: the record was too large to send (MaxInputBytes).
	FailureInput
	// FailureUnavailable: no instance could be had: the plugin is closed,
	// a new instance failed to start, or the caller's context ended while
	// waiting for a free instance.
	FailureUnavailable

	numFailures
)

var failureNames = [numFailures]string{"timeout", "memory", "trap", "garbage", "input", "unavailable"}

// String returns the failure's name, suitable as a metric attribute value.
func (f Failure) String() string {
	if f >= 0 && f < numFailures {
		return failureNames[f]
	}
	return fmt.Sprintf("failure(%d)", int(f))
}

// failureOptions are the failure=<name> attributes, made once.
var failureOptions = func() (o [numFailures]metric.MeasurementOption) {
	for f := range numFailures {
		o[f] = metric.WithAttributeSet(attribute.NewSet(attribute.String("failure", f.String())))
	}
	return o
}()

// MeasurementOption returns the attribute failure=<name> of a component's
// plugin failures metric (ChainSettings.Failed).
func (f Failure) MeasurementOption() metric.MeasurementOption {
	if f < 0 || f >= numFailures {
		f = FailureTrap
	}
	return failureOptions[f]
}

// CallError is the error of a failed call.
type CallError struct {
	Plugin  string // the plugin's name (its path, for Load)
	Failure Failure
	Err     error
	// Stderr is the start of what the plugin wrote to stderr during the
	// call (a Go plugin's panic message), if anything.
	Stderr string
}

func (e *CallError) Error() string {
	msg := fmt.Sprintf("wasm plugin %s: %s: %v", e.Plugin, e.Failure, e.Err)
	if e.Stderr != "" {
		msg += "; plugin stderr: " + e.Stderr
	}
	return msg
}

func (e *CallError) Unwrap() error { return e.Err }

// FailureOf returns the Failure of an error returned by Extract.
func FailureOf(err error) (Failure, bool) {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Failure, true
	}
	return 0, false
}

// ErrClosed is returned (inside a CallError) by calls after Close.
var ErrClosed = errors.New("plugin is closed")

// Stats are a plugin's counters since Load.
type Stats struct {
	Calls          uint64
	Failures       [numFailures]uint64 // indexed by Failure
	Instantiations uint64              // instances started, first one included
}

type counters struct {
	calls          atomic.Uint64
	failures       [numFailures]atomic.Uint64
	instantiations atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{Calls: c.calls.Load(), Instantiations: c.instantiations.Load()}
	for i := range c.failures {
		s.Failures[i] = c.failures[i].Load()
	}
	return s
}
