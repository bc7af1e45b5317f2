package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const (
	// maxParams bounds the parameters of one statement: PostgreSQL's
	// protocol allows 65535; fewer keep statements a sensible size.
	maxParams = 16000
	// inChunk is the number of ids or uids in one IN list.
	inChunk = 1000
)

// batcher gathers rows into multi-row INSERTs of at most maxStmtBytes
// bytes. MySQL gets INSERT ... VALUES (...),(...) of at most maxParams
// parameters. PostgreSQL gets one array parameter a column, INSERT ...
// SELECT * FROM unnest($1::bigint[], $2::text[], ...): the statement text is
// the same for any number of rows, and the server parses a handful of
// parameters instead of thousands (about twice as fast for 10k pods).
type batcher struct {
	w       *txn
	what    string
	cols    []column
	head    string // INSERT INTO t (cols) VALUES / SELECT * FROM unnest(...)
	tail    string // ON CONFLICT ... / ON DUPLICATE KEY ...
	maxRows int
	sb      strings.Builder
	args    []any // row after row
	rows    int
	bytes   int
}

func (w *txn) newBatch(table string, cols []column, tail string) *batcher {
	d := w.s.d
	b := &batcher{w: w, what: table, cols: cols, maxRows: maxParams / len(cols), tail: tail}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	b.head = "INSERT INTO " + table + " (" + colList(d, names) + ") "
	if d.numbered {
		b.maxRows = 1 << 30 // one parameter a column: only bytes limit
		b.head += "SELECT * FROM unnest("
		for i, c := range cols {
			if i > 0 {
				b.head += ", "
			}
			b.head += d.ph(i+1) + "::" + pgArrayType(c.typ)
		}
		b.head += ")"
	} else {
		b.head += "VALUES "
	}
	return b
}

// pgArrayType is the array type a column's values are sent as.
func pgArrayType(t colType) string {
	switch t {
	case tID, tBig:
		return "bigint[]"
	case tSmall:
		return "smallint[]"
	case tTime, tTimeNull:
		return "timestamp[]"
	}
	return "text[]"
}

// add appends one row (a value per column), sending the statement first if
// the row would not fit.
func (b *batcher) add(ctx context.Context, vals ...any) error {
	if len(vals) != len(b.cols) {
		return fmt.Errorf("k8s_metadata store: internal error: %d values for %d columns of %s", len(vals), len(b.cols), b.what)
	}
	size := 0
	for _, v := range vals {
		if s, ok := v.(string); ok {
			size += len(s)
		} else {
			size += 8
		}
	}
	if b.rows > 0 && (b.rows >= b.maxRows || b.bytes+size > b.w.s.maxStmtBytes) {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	if !b.w.s.d.numbered {
		if b.rows > 0 {
			b.sb.WriteByte(',')
		}
		b.sb.WriteByte('(')
		for i := range vals {
			if i > 0 {
				b.sb.WriteByte(',')
			}
			b.sb.WriteByte('?')
		}
		b.sb.WriteByte(')')
	}
	b.args = append(b.args, vals...)
	b.rows++
	b.bytes += size
	return nil
}

// flush sends what is gathered.
func (b *batcher) flush(ctx context.Context) error {
	if b.rows == 0 {
		return nil
	}
	args := b.args
	if b.w.s.d.numbered {
		args = b.columns()
	}
	if _, err := b.w.tx.ExecContext(ctx, b.head+b.sb.String()+b.tail, args...); err != nil {
		return fmt.Errorf("k8s_metadata store: write %d rows into %s: %w", b.rows, b.what, err)
	}
	b.sb.Reset()
	b.args = b.args[:0]
	b.rows, b.bytes = 0, 0
	return nil
}

// columns turns the gathered rows into one typed slice a column, the
// unnest parameters.
func (b *batcher) columns() []any {
	n := len(b.cols)
	out := make([]any, n)
	for c, col := range b.cols {
		switch pgArrayType(col.typ) {
		case "bigint[]", "smallint[]":
			v := make([]int64, b.rows)
			for r := range v {
				v[r] = b.args[r*n+c].(int64)
			}
			out[c] = v
		case "timestamp[]":
			v := make([]*time.Time, b.rows)
			for r := range v {
				if t, ok := b.args[r*n+c].(time.Time); ok {
					v[r] = &t
				}
			}
			out[c] = v
		default:
			v := make([]string, b.rows)
			for r := range v {
				v[r] = b.args[r*n+c].(string)
			}
			out[c] = v
		}
	}
	return out
}

// execIn runs prefix + " IN (ids)" in chunks; fixed are the parameters
// prefix itself uses, numbered before the ids.
func (w *txn) execIn(ctx context.Context, prefix string, fixed []any, ids []uint32) (int64, error) {
	var total int64
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		args := make([]any, 0, len(fixed)+len(chunk))
		args = append(args, fixed...)
		for _, id := range chunk {
			args = append(args, int64(id))
		}
		res, err := w.tx.ExecContext(ctx, prefix+" IN ("+w.s.d.phs(len(fixed)+1, len(chunk))+")", args...)
		if err != nil {
			return total, err
		}
		if n, err := res.RowsAffected(); err == nil {
			total += n
		}
	}
	return total, nil
}
