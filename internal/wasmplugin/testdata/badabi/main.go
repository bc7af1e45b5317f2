//go:build wasip1

// Command badabi is a test plugin that claims an ABI version Weft does not
// implement.
package main

import "unsafe"

var input []byte

//go:wasmexport weft_abi_version
func abiVersion() int32 { return 999 }

//go:wasmexport weft_alloc
func alloc(size int32) int32 {
	input = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport weft_extract
func extract(ptr, n int32) int64 { return 0 }

func main() {}
