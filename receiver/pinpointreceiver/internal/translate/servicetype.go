package translate

import "go.opentelemetry.io/collector/pdata/ptrace"

// Pinpoint service types Weft treats specially. Codes are grouped in ranges
// by what they are (servers, databases, caches, brokers, RPC clients).
const (
	serviceTypeStandAlone              = 1000
	serviceTypeAsync                   = 100
	serviceTypeAsyncHTTPClientInternal = 9057
)

func isServer(t int32) bool { return t >= 1000 && t <= 1899 }
func isDB(t int32) bool     { return t >= 2000 && t <= 2899 }
func isCache(t int32) bool  { return t >= 8000 && t <= 8299 }
func isBroker(t int32) bool { return t >= 8300 && t <= 8799 }
func isRPC(t int32) bool    { return t >= 9000 && t <= 9899 }

// isHTTPClient covers the HTTP client libraries whose inline API name
// (annotation 12) is the request method.
func isHTTPClient(t int32) bool {
	switch t {
	case 9050, 9052, 9055, 9056, 9058, 9140, 9401:
		return true
	}
	return false
}

// dbSystem is the OTel db.system value of a database or cache service type.
func dbSystem(t int32) string {
	switch {
	case t == 2100 || t == 2101:
		return "mysql"
	case t == 2300 || t == 2301:
		return "oracle"
	case t == 2500 || t == 2501:
		return "postgresql"
	case t == 2650 || t == 2651:
		return "mongodb"
	case t >= 8200 && t <= 8209:
		return "redis"
	case isDB(t):
		return "other_sql"
	}
	return ""
}

// Language is the OTel telemetry.sdk.language of an agent of service type t.
func Language(t int32) string {
	switch {
	case t >= 1000 && t <= 1399:
		return "java"
	case t >= 1400 && t <= 1499:
		return "nodejs"
	case t >= 1500 && t <= 1599:
		return "php"
	case t >= 1700 && t <= 1799:
		return "python"
	case t >= 1800 && t <= 1899:
		return "go"
	}
	return ""
}

func eventKind(serviceType int32, linked bool) ptrace.SpanKind {
	switch {
	case serviceType == serviceTypeAsyncHTTPClientInternal:
		// The Node agent's wrapper around an asynchronous HTTP call; the call
		// itself is the 9056 event in the continuation.
		return ptrace.SpanKindInternal
	case isBroker(serviceType):
		return ptrace.SpanKindProducer
	case linked, isRPC(serviceType), isDB(serviceType), isCache(serviceType):
		return ptrace.SpanKindClient
	}
	return ptrace.SpanKindInternal
}
