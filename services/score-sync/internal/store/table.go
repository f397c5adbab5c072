// Package store keeps score-sync's durable state in JetStream:
//
//   - Table: a per-portal, log-structured sorted table. Its rows live in immutable "parts" in a
//     JetStream object store; the list of a portal's parts (its manifest) is one key of the KV
//     bucket score-state, changed only by compare-and-set. Two tables exist: the latest score of
//     every account (ScoreRow, key = domain) and what HubSpot last confirmed per company
//     (SentRow, key = company id).
//   - Runs: SyncRun records and per-portal scheduling state in the KV bucket sync-state.
//   - Lock: the per-portal run lock (Redis, with a TTL, renewed while the run lasts).
package store

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// partMagic starts every part object (format version 1).
var partMagic = []byte("SBT1")

// maxKeyLen and maxValLen bound one row, so that a corrupt part cannot make a reader
// allocate without limit.
const (
	maxKeyLen = 1024
	maxValLen = 64 << 10
)

// ErrCorrupt is wrapped by errors reading a part that does not decode.
var ErrCorrupt = errors.New("store: corrupt part")

// Row is one row of a table. A table holds at most one row per key: the one with the highest
// Ver (on a tie, the one written last).
type Row struct {
	Key []byte
	Ver uint64
	Val []byte
}

// Part is one immutable sorted run of rows.
type Part struct {
	// Object is the object name in the object store.
	Object string `json:"object"`
	// Rows is the number of rows in the part.
	Rows int64 `json:"rows"`
	// Created is when the part was written.
	Created time.Time `json:"created"`
}

// Manifest lists a portal's parts, oldest first.
type Manifest struct {
	Parts []Part `json:"parts"`
}

// Rows is the total number of rows over all parts (keys repeated across parts count once
// per part).
func (m Manifest) Rows() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Rows
	}
	return n
}

// Table is a named log-structured table with one manifest per portal.
//
// Append is safe at any time from any replica. Compact (which deletes parts) must only run
// while holding the portal's Lock, and Scan only under that lock too when a Compact could run
// concurrently (readers of a part being deleted fail rather than return wrong data).
type Table struct {
	name string
	kv   jetstream.KeyValue
	obj  jetstream.ObjectStore
	now  func() time.Time
}

// NewTable returns the table name over the manifest bucket kv and the object store obj.
// name must be a valid KV key token ("scores", "sent").
func NewTable(name string, kv jetstream.KeyValue, obj jetstream.ObjectStore, now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	return &Table{name: name, kv: kv, obj: obj, now: now}
}

func (t *Table) manifestKey(portal string) string { return t.name + "." + portal }

// Manifest reads a portal's manifest and its KV revision (0 when the portal has none).
func (t *Table) Manifest(ctx context.Context, portal string) (Manifest, uint64, error) {
	e, err := t.kv.Get(ctx, t.manifestKey(portal))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Manifest{}, 0, nil
	}
	if err != nil {
		return Manifest{}, 0, fmt.Errorf("store: read %s manifest of portal %s: %w", t.name, portal, err)
	}
	var m Manifest
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return Manifest{}, 0, fmt.Errorf("store: %s manifest of portal %s (revision %d): %w", t.name, portal, e.Revision(), err)
	}
	return m, e.Revision(), nil
}

// swap replaces the manifest by change(current) with compare-and-set, retrying on conflicts.
func (t *Table) swap(ctx context.Context, portal string, change func(Manifest) Manifest) error {
	key := t.manifestKey(portal)
	for attempt := 0; ; attempt++ {
		m, rev, err := t.Manifest(ctx, portal)
		if err != nil {
			return err
		}
		data, err := json.Marshal(change(m))
		if err != nil {
			return fmt.Errorf("store: encode %s manifest: %w", t.name, err)
		}
		if rev == 0 {
			_, err = t.kv.Create(ctx, key, data)
		} else {
			_, err = t.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return nil
		}
		conflict := errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
		if !conflict || attempt >= 50 {
			return fmt.Errorf("store: update %s manifest of portal %s: %w", t.name, portal, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Append writes rows as a new part and adds it to the portal's manifest. Rows may be in any
// order and may repeat keys (the highest Ver wins, then the later row). It returns the number
// of parts the manifest holds afterwards, so that callers can decide to Compact.
func (t *Table) Append(ctx context.Context, portal string, rows []Row) (int, error) {
	if len(rows) == 0 {
		m, _, err := t.Manifest(ctx, portal)
		return len(m.Parts), err
	}
	sorted := sortRows(rows)
	var buf bytes.Buffer
	buf.Grow(len(sorted) * 48)
	w := newPartWriter(&buf)
	for _, r := range sorted {
		if err := w.write(r); err != nil {
			return 0, fmt.Errorf("store: append to %s of portal %s: %w", t.name, portal, err)
		}
	}
	part := Part{Object: t.objectName(portal), Rows: int64(len(sorted)), Created: t.now().UTC()}
	if _, err := t.obj.PutBytes(ctx, part.Object, buf.Bytes()); err != nil {
		return 0, fmt.Errorf("store: write part %s: %w", part.Object, err)
	}
	var parts int
	err := t.swap(ctx, portal, func(m Manifest) Manifest {
		m.Parts = append(m.Parts, part)
		parts = len(m.Parts)
		return m
	})
	if err != nil {
		// The part is not referenced; remove it (best effort).
		_ = t.obj.Delete(context.WithoutCancel(ctx), part.Object)
		return 0, err
	}
	return parts, nil
}

func (t *Table) objectName(portal string) string {
	return t.name + "/" + portal + "/" + nuid.Next()
}

// sortRows sorts rows by key and keeps one row per key (highest Ver, then the later row).
func sortRows(rows []Row) []Row {
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return bytes.Compare(rows[a].Key, rows[b].Key) })
	out := make([]Row, 0, len(rows))
	for _, i := range idx {
		r := rows[i]
		if n := len(out); n > 0 && bytes.Equal(out[n-1].Key, r.Key) {
			if r.Ver >= out[n-1].Ver {
				out[n-1] = r
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Scan calls fn for every row of the portal's table in key order, after merging all parts.
// The Row's slices are only valid during the call. fn's error stops the scan and is returned.
func (t *Table) Scan(ctx context.Context, portal string, fn func(Row) error) error {
	m, _, err := t.Manifest(ctx, portal)
	if err != nil {
		return err
	}
	return t.scanParts(ctx, m.Parts, fn)
}

func (t *Table) scanParts(ctx context.Context, parts []Part, fn func(Row) error) error {
	if len(parts) == 0 {
		return nil
	}
	readers := make([]*partReader, 0, len(parts))
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	for i, p := range parts {
		res, err := t.obj.Get(ctx, p.Object)
		if err != nil {
			return fmt.Errorf("store: open part %s of %s: %w", p.Object, t.name, err)
		}
		r := newPartReader(res, p.Object, i)
		readers = append(readers, r)
		if err := r.start(); err != nil {
			return err
		}
	}
	h := &mergeHeap{}
	for _, r := range readers {
		ok, err := r.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Push(h, r)
		}
	}
	var (
		best    Row
		bestSrc int
		have    bool
		keyBuf  []byte
		valBuf  []byte
	)
	emit := func() error {
		if !have {
			return nil
		}
		have = false
		return fn(best)
	}
	for h.Len() > 0 {
		r := (*h)[0]
		cur := r.row
		switch {
		case have && bytes.Equal(cur.Key, best.Key):
			if cur.Ver > best.Ver || (cur.Ver == best.Ver && r.src > bestSrc) {
				valBuf = append(valBuf[:0], cur.Val...)
				best.Ver, best.Val, bestSrc = cur.Ver, valBuf, r.src
			}
		default:
			if err := emit(); err != nil {
				return err
			}
			keyBuf = append(keyBuf[:0], cur.Key...)
			valBuf = append(valBuf[:0], cur.Val...)
			best, bestSrc, have = Row{Key: keyBuf, Ver: cur.Ver, Val: valBuf}, r.src, true
		}
		ok, err := r.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return emit()
}

// Compact merges all of the portal's parts into one and deletes the old parts. Parts appended
// meanwhile are kept, after the merged one. It must run under the portal's Lock. It returns the
// number of rows in the merged part.
func (t *Table) Compact(ctx context.Context, portal string) (int64, error) {
	m, _, err := t.Manifest(ctx, portal)
	if err != nil {
		return 0, err
	}
	if len(m.Parts) <= 1 {
		return m.Rows(), nil
	}
	return t.rewrite(ctx, portal, m.Parts, nil)
}

// Rewrite merges the portal's parts into one, dropping the rows for which keep returns false,
// and deletes the old parts. It must run under the portal's Lock.
func (t *Table) Rewrite(ctx context.Context, portal string, keep func(Row) bool) (int64, error) {
	m, _, err := t.Manifest(ctx, portal)
	if err != nil {
		return 0, err
	}
	if len(m.Parts) == 0 {
		return 0, nil
	}
	return t.rewrite(ctx, portal, m.Parts, keep)
}

func (t *Table) rewrite(ctx context.Context, portal string, parts []Part, keep func(Row) bool) (int64, error) {
	merged := Part{Object: t.objectName(portal), Created: t.now().UTC()}
	pr, pw := io.Pipe()
	scanErr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		w := newPartWriter(bw)
		err := t.scanParts(ctx, parts, func(r Row) error {
			if keep != nil && !keep(r) {
				return nil
			}
			merged.Rows++
			return w.write(r)
		})
		if err == nil {
			err = w.err
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		scanErr <- err
	}()
	_, putErr := t.obj.Put(ctx, jetstream.ObjectMeta{Name: merged.Object}, pr)
	pr.CloseWithError(errors.New("store: put ended")) // unblocks the writer if Put gave up early
	if err := <-scanErr; err != nil {
		_ = t.obj.Delete(context.WithoutCancel(ctx), merged.Object)
		return 0, fmt.Errorf("store: compact %s of portal %s: %w", t.name, portal, err)
	}
	if putErr != nil {
		_ = t.obj.Delete(context.WithoutCancel(ctx), merged.Object)
		return 0, fmt.Errorf("store: compact %s of portal %s: write %s: %w", t.name, portal, merged.Object, putErr)
	}
	old := make(map[string]bool, len(parts))
	for _, p := range parts {
		old[p.Object] = true
	}
	err := t.swap(ctx, portal, func(m Manifest) Manifest {
		out := Manifest{Parts: []Part{merged}}
		for _, p := range m.Parts {
			if !old[p.Object] {
				out.Parts = append(out.Parts, p)
			}
		}
		return out
	})
	if err != nil {
		_ = t.obj.Delete(context.WithoutCancel(ctx), merged.Object)
		return 0, err
	}
	for _, p := range parts {
		if err := t.obj.Delete(ctx, p.Object); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			continue // unreferenced now; Sweep removes it later

		}
	}
	return merged.Rows, nil
}

// Sweep deletes the table's part objects that no manifest references and that are older than
// minAge (left behind by a crash between writing a part and recording it, or between
// compacting and deleting). It returns how many it deleted.
func (t *Table) Sweep(ctx context.Context, minAge time.Duration) (int, error) {
	lister, err := t.kv.ListKeysFiltered(ctx, t.name+".>")
	if err != nil {
		return 0, fmt.Errorf("store: sweep %s: list manifests: %w", t.name, err)
	}
	var portals []string
	for k := range lister.Keys() {
		portals = append(portals, k[len(t.name)+1:])
	}
	referenced := map[string]bool{}
	for _, p := range portals {
		m, _, err := t.Manifest(ctx, p)
		if err != nil {
			return 0, err
		}
		for _, part := range m.Parts {
			referenced[part.Object] = true
		}
	}
	infos, err := t.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: sweep %s: list objects: %w", t.name, err)
	}
	deleted := 0
	// Object modification times come from the server's wall clock, not from t.now.
	cutoff := time.Now().Add(-minAge)
	for _, info := range infos {
		if !strings.HasPrefix(info.Name, t.name+"/") || referenced[info.Name] || info.ModTime.After(cutoff) {
			continue
		}
		if err := t.obj.Delete(ctx, info.Name); err == nil {
			deleted++
		}
	}
	return deleted, nil
}

// Drop deletes the portal's table: its manifest and every part. It must run under the portal's
// Lock.
func (t *Table) Drop(ctx context.Context, portal string) error {
	m, _, err := t.Manifest(ctx, portal)
	if err != nil {
		return err
	}
	if err := t.kv.Delete(ctx, t.manifestKey(portal)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("store: drop %s of portal %s: %w", t.name, portal, err)
	}
	for _, p := range m.Parts {
		_ = t.obj.Delete(ctx, p.Object)
	}
	return nil
}

// ---- part encoding ----

// partWriter writes the part format: the magic, then per row uvarint key length, key, uvarint
// Ver, uvarint value length, value. Rows must come in strictly increasing key order.
type partWriter struct {
	w       io.Writer
	started bool
	last    []byte
	scratch [3 * binary.MaxVarintLen64]byte
	err     error
}

func newPartWriter(w io.Writer) *partWriter { return &partWriter{w: w} }

func (p *partWriter) write(r Row) error {
	if p.err != nil {
		return p.err
	}
	switch {
	case len(r.Key) == 0 || len(r.Key) > maxKeyLen:
		p.err = fmt.Errorf("store: row key of %d bytes (want 1..%d)", len(r.Key), maxKeyLen)
	case len(r.Val) > maxValLen:
		p.err = fmt.Errorf("store: row %q: value of %d bytes (at most %d)", r.Key, len(r.Val), maxValLen)
	case p.started && bytes.Compare(r.Key, p.last) <= 0:
		p.err = fmt.Errorf("store: row %q out of order after %q", r.Key, p.last)
	}
	if p.err != nil {
		return p.err
	}
	if !p.started {
		if _, p.err = p.w.Write(partMagic); p.err != nil {
			return p.err
		}
		p.started = true
	}
	p.last = append(p.last[:0], r.Key...)
	n := binary.PutUvarint(p.scratch[:], uint64(len(r.Key)))
	if _, p.err = p.w.Write(p.scratch[:n]); p.err != nil {
		return p.err
	}
	if _, p.err = p.w.Write(r.Key); p.err != nil {
		return p.err
	}
	n = binary.PutUvarint(p.scratch[:], r.Ver)
	n += binary.PutUvarint(p.scratch[n:], uint64(len(r.Val)))
	if _, p.err = p.w.Write(p.scratch[:n]); p.err != nil {
		return p.err
	}
	_, p.err = p.w.Write(r.Val)
	return p.err
}

// partReader streams the rows of one part.
type partReader struct {
	res  io.ReadCloser
	br   *bufio.Reader
	name string
	src  int // position in the manifest: later parts win ties
	row  Row
	key  []byte
	val  []byte
}

func newPartReader(res io.ReadCloser, name string, src int) *partReader {
	return &partReader{res: res, br: bufio.NewReaderSize(res, 128<<10), name: name, src: src}
}

func (p *partReader) close() { _ = p.res.Close() }

func (p *partReader) start() error {
	var magic [4]byte
	if _, err := io.ReadFull(p.br, magic[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty part
		}
		return fmt.Errorf("%w %s: %w", ErrCorrupt, p.name, err)
	}
	if !bytes.Equal(magic[:], partMagic) {
		return fmt.Errorf("%w %s: bad magic %q", ErrCorrupt, p.name, magic[:])
	}
	return nil
}

// next reads the next row into p.row; false at the end.
func (p *partReader) next() (bool, error) {
	klen, err := binary.ReadUvarint(p.br)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, p.corrupt(err)
	}
	if klen == 0 || klen > maxKeyLen {
		return false, p.corrupt(fmt.Errorf("key length %d", klen))
	}
	p.key = slices.Grow(p.key[:0], int(klen))[:klen]
	if _, err := io.ReadFull(p.br, p.key); err != nil {
		return false, p.corrupt(err)
	}
	ver, err := binary.ReadUvarint(p.br)
	if err != nil {
		return false, p.corrupt(err)
	}
	vlen, err := binary.ReadUvarint(p.br)
	if err != nil {
		return false, p.corrupt(err)
	}
	if vlen > maxValLen {
		return false, p.corrupt(fmt.Errorf("value length %d", vlen))
	}
	p.val = slices.Grow(p.val[:0], int(vlen))[:vlen]
	if _, err := io.ReadFull(p.br, p.val); err != nil {
		return false, p.corrupt(err)
	}
	p.row = Row{Key: p.key, Ver: ver, Val: p.val}
	return true, nil
}

func (p *partReader) corrupt(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w %s: %w", ErrCorrupt, p.name, err)
}

// mergeHeap orders part readers by their current key, then by position.
type mergeHeap []*partReader

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].row.Key, h[j].row.Key); c != 0 {
		return c < 0
	}
	return cmp.Less(h[i].src, h[j].src)
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*partReader)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
