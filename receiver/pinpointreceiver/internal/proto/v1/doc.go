// Package v1 holds the Go code generated from Weft's own description of the
// Pinpoint agent gRPC protocol (proto package v1, so methods are named
// /v1.Span/SendSpan and so on). Edit the .proto files in the parent directory
// and run go generate here (or ../generate.sh); never edit the *.pb.go files.
package v1

//go:generate ../generate.sh
