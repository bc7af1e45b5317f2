package wasmplugin

// impossibleCounts says whether a vector count in wasm is larger than the
// bytes that could hold its elements, or a function declares over a million
// locals. wazero 1.12 allocates a slice of the count before it reads the
// elements, so a 42-byte module whose function type has 2^32-1 results makes
// CompileModule allocate 32 GiB and the process die of it, unrecoverably:
// such a module is refused before wazero sees it. Best effort: a module this
// cannot read is left to wazero's own validation.
func impossibleCounts(wasm []byte) (huge bool) {
	defer func() {
		if recover() != nil {
			huge = false
		}
	}()
	r := &reader{b: wasm, o: 8}
	for r.o < len(r.b) {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if id == secCustom || id == 8 || id == 12 { // custom, start, data count: no vector
			continue
		}
		sr := &reader{b: body}
		if n := sr.u32(); int(n) > len(body) {
			return true
		} else if id == 1 { // types: params and results too
			for range n {
				sr.byte()
				for range 2 {
					k := sr.u32()
					if int(k) > len(body)-sr.o {
						return true
					}
					sr.bytes(int(k))
				}
			}
		} else if id == secCode { // the sum of each function's locals
			for range n {
				code := &reader{b: sr.bytes(int(sr.u32()))}
				sum := 0
				for range code.u32() {
					sum += int(code.u32())
					code.byte()
				}
				if sum > 1<<20 {
					return true
				}
			}
		}
	}
	return false
}
