package engine

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// errPaused ends sending when the portal's daily HubSpot quota is exhausted.
var errPaused = errors.New("daily HubSpot quota exhausted")

// pausedError carries when the quota resets.
type pausedError struct {
	until time.Time
	cause error
}

func (e *pausedError) Error() string {
	return fmt.Sprintf("HubSpot daily API limit reached; paused until %s: %v", e.until.UTC().Format(time.RFC3339), e.cause)
}
func (e *pausedError) Unwrap() []error { return []error{errPaused, e.cause} }

// asPaused turns a daily-limit error into a pausedError; other errors are returned as they are.
func asPaused(err error, now time.Time) error {
	if !errors.Is(err, hubspot.ErrDailyLimit) {
		return err
	}
	until := now.Add(time.Hour)
	var dl *quota.DailyLimitError
	var he *hubspot.Error
	switch {
	case errors.As(err, &dl):
		until = dl.Until
	case errors.As(err, &he) && he.RetryAfter > 0:
		until = now.Add(he.RetryAfter)
	}
	return &pausedError{until: until, cause: err}
}

// sender writes changes to HubSpot and reports each company's outcome.
type sender struct {
	hs      *hubspot.Client
	mapping Mapping
	changes []Change
	calls   *atomic.Int64
	now     func() time.Time
	// confirm and fail record outcomes; they are safe for concurrent use.
	confirm func(c Change)
	fail    func(c Change, reason string)
	// imported records an import id as soon as HubSpot gave it.
	imported func(id string)
}

// ---- batch path ----

// batchOptions tune sendBatches.
type batchOptions struct {
	Workers int
	// MaxConsecutiveFailures stops the run after this many batch calls in a row failed as a
	// whole (HubSpot down); 0 means 8.
	MaxConsecutiveFailures int
}

// sendBatches writes the changes with batch update calls of 100 at bulk priority. It returns
// a pausedError on the daily limit, or an error when HubSpot kept failing; the outcome of every
// change that was attempted is reported through confirm and fail.
func (s *sender) sendBatches(ctx context.Context, o batchOptions) error {
	o.Workers = max(o.Workers, 1)
	if o.MaxConsecutiveFailures <= 0 {
		o.MaxConsecutiveFailures = 8
	}
	ctx = hubspot.WithClass(ctx, quota.Bulk)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var consecutive atomic.Int64
	next := make(chan int)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Go(func() {
			for start := range next {
				if ctx.Err() != nil {
					continue
				}
				chunk := s.changes[start:min(start+hubspot.MaxBatchSize, len(s.changes))]
				err := s.batch(ctx, chunk)
				switch {
				case err == nil:
					consecutive.Store(0)
				case errors.Is(err, errPaused):
					cancel(err)
				case ctx.Err() != nil:
				default:
					if consecutive.Add(1) >= int64(o.MaxConsecutiveFailures) {
						cancel(fmt.Errorf("%d batch calls in a row failed, last: %w", o.MaxConsecutiveFailures, err))
					}
				}
			}
		})
	}
feed:
	for start := 0; start < len(s.changes); start += hubspot.MaxBatchSize {
		select {
		case next <- start:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// batch sends one batch update and reports its outcomes. A call that failed as a whole fails
// every change in it (they are retried by the next run) unless the failure is the daily limit
// or the run ending, which leave them unreported.
func (s *sender) batch(ctx context.Context, chunk []Change) error {
	inputs := make([]hubspot.BatchInput, len(chunk))
	for i, c := range chunk {
		inputs[i] = hubspot.BatchInput{ID: strconv.FormatUint(c.Company, 10), Properties: s.mapping.Properties(store.UnpackValues(c.Packed))}
	}
	s.calls.Add(1)
	res, err := s.hs.BatchUpdate(ctx, hubspot.Companies, inputs)
	if err != nil {
		if errors.Is(err, hubspot.ErrDailyLimit) {
			return asPaused(err, s.now())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, c := range chunk {
			s.fail(c, "batch update failed: "+err.Error())
		}
		return err
	}
	var general []string // errors HubSpot did not tie to an input
	for _, e := range res.Errors {
		if e.Index < 0 {
			general = append(general, e.Category+": "+e.Message)
		}
	}
	for i, c := range chunk {
		if _, ok := res.Result(i); ok {
			s.confirm(c)
			continue
		}
		reason := "HubSpot did not confirm the update"
		if errs := res.Failed(i); len(errs) > 0 {
			reason = errs[0].Category + ": " + errs[0].Message
		} else if len(general) > 0 {
			reason = general[0]
		}
		s.fail(c, reason)
	}
	return nil
}

// ---- import path ----

// importOptions tune sendImports.
type importOptions struct {
	// ChunkRows is the most rows per import (HubSpot takes about a million per file; we use
	// 100,000 so that a failed import costs little).
	ChunkRows int
	// Concurrency is the number of imports in flight.
	Concurrency int
	// PollInterval is the first wait before polling an import; it grows by half per poll up
	// to PollMax.
	PollInterval, PollMax time.Duration
	// Timeout bounds one import, upload to finish.
	Timeout time.Duration
	// Name prefixes the import names.
	Name string
}

// sendImports writes the changes with CRM imports (UPDATE by record id) of at most ChunkRows
// rows, polls each until it finishes and maps its per-row errors back to companies.
func (s *sender) sendImports(ctx context.Context, o importOptions) error {
	o.ChunkRows = max(o.ChunkRows, 1)
	o.Concurrency = max(o.Concurrency, 1)
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	o.PollMax = max(o.PollMax, o.PollInterval)
	if o.Timeout <= 0 {
		o.Timeout = 6 * time.Hour
	}
	ctx = hubspot.WithClass(ctx, quota.Bulk)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct{ n, start, end int }
	next := make(chan job)
	var wg sync.WaitGroup
	var failedImports atomic.Int64
	for range o.Concurrency {
		wg.Go(func() {
			for j := range next {
				if ctx.Err() != nil {
					continue
				}
				err := s.importChunk(ctx, o, j.n, s.changes[j.start:j.end])
				switch {
				case errors.Is(err, errPaused):
					cancel(err)
				case err != nil && ctx.Err() == nil:
					failedImports.Add(1)
				}
			}
		})
	}
	n := 0
feed:
	for start := 0; start < len(s.changes); start += o.ChunkRows {
		n++
		select {
		case next <- job{n: n, start: start, end: min(start+o.ChunkRows, len(s.changes))}:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// importChunk runs one import. Its changes are confirmed when the import is DONE and has no
// error for them; everything else fails them (the next run sends them again).
func (s *sender) importChunk(ctx context.Context, o importOptions, n int, chunk []Change) error {
	data, err := s.csv(chunk)
	if err != nil {
		s.failAll(chunk, err.Error())
		return err
	}
	cols := []hubspot.ColumnMapping{{ColumnObjectTypeID: hubspot.Companies.TypeID(), ColumnName: "Record ID",
		PropertyName: "hs_object_id", IDColumnType: hubspot.IDObjectID}}
	for _, c := range s.mapping.Columns {
		cols = append(cols, hubspot.ColumnMapping{ColumnObjectTypeID: hubspot.Companies.TypeID(), ColumnName: c.Property, PropertyName: c.Property})
	}
	name := fmt.Sprintf("%s-%d", o.Name, n)
	ictx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	s.calls.Add(1)
	imp, err := s.hs.StartImport(ictx, hubspot.ImportRequest{
		Name:       name,
		Operations: map[string]string{hubspot.Companies.TypeID(): hubspot.ImportUpdate},
		Files: []hubspot.ImportFile{{FileName: name + ".csv", FileFormat: "CSV",
			Page: hubspot.ImportPage{HasHeader: true, ColumnMappings: cols}, Data: bytes.NewReader(data)}},
	})
	if err != nil {
		if errors.Is(err, hubspot.ErrDailyLimit) {
			return asPaused(err, s.now())
		}
		if ctx.Err() == nil {
			s.failAll(chunk, fmt.Sprintf("import %s could not start: %v", name, err))
		}
		return err
	}
	s.imported(imp.ID)
	wait := o.PollInterval
	pollErrors := 0
	for !imp.Finished() {
		if err := sleepCtx(ictx, wait); err != nil {
			if ctx.Err() == nil {
				s.failAll(chunk, fmt.Sprintf("import %s did not finish within %s (state %s)", imp.ID, o.Timeout, imp.State))
			}
			return err
		}
		wait = min(wait+wait/2, o.PollMax)
		s.calls.Add(1)
		st, err := s.hs.ImportStatus(ictx, imp.ID)
		switch {
		case err == nil:
			imp, pollErrors = st, 0
		case errors.Is(err, hubspot.ErrDailyLimit):
			// Leave the import running; its rows are not confirmed and go out again next time.
			return asPaused(err, s.now())
		default:
			if pollErrors++; pollErrors >= 5 || ictx.Err() != nil {
				s.failAll(chunk, fmt.Sprintf("import %s: status unknown: %v", imp.ID, err))
				return err
			}
		}
	}
	if imp.State != hubspot.ImportDone {
		s.failAll(chunk, fmt.Sprintf("import %s ended %s", imp.ID, imp.State))
		return fmt.Errorf("import %s ended %s", imp.ID, imp.State)
	}
	if total, ok := imp.Metadata.Counters["TOTAL_ROWS"]; ok && total != len(chunk) {
		s.failAll(chunk, fmt.Sprintf("import %s processed %d of %d rows", imp.ID, total, len(chunk)))
		return fmt.Errorf("import %s processed %d of %d rows", imp.ID, total, len(chunk))
	}
	byCompany := make(map[uint64]int, len(chunk))
	for i, c := range chunk {
		byCompany[c.Company] = i
	}
	failed := make(map[int]string)
	after := ""
	for {
		s.calls.Add(1)
		page, err := s.hs.ImportErrors(ictx, imp.ID, after, 500)
		if err != nil {
			if errors.Is(err, hubspot.ErrDailyLimit) {
				return asPaused(err, s.now())
			}
			// Without the error list no row can be called confirmed.
			s.failAll(chunk, fmt.Sprintf("import %s: reading its errors failed: %v", imp.ID, err))
			return err
		}
		for _, e := range page.Results {
			i, ok := -1, false
			if len(e.SourceData.RowData) > 0 {
				if id, err := strconv.ParseUint(e.SourceData.RowData[0], 10, 64); err == nil {
					i, ok = byCompany[id]
				}
			}
			if !ok && e.SourceData.LineNumber >= 2 && e.SourceData.LineNumber-2 < len(chunk) {
				i, ok = e.SourceData.LineNumber-2, true // line 1 is the header
			}
			if !ok {
				continue
			}
			reason := e.ErrorType
			if e.ErrorMessage != "" {
				reason += ": " + e.ErrorMessage
			}
			if _, seen := failed[i]; !seen {
				failed[i] = fmt.Sprintf("import %s row %d: %s", imp.ID, i+2, reason)
			}
		}
		if after = page.Paging.NextAfter(); after == "" {
			break
		}
	}
	for i, c := range chunk {
		if reason, bad := failed[i]; bad {
			s.fail(c, reason)
			continue
		}
		s.confirm(c)
	}
	return nil
}

func (s *sender) failAll(chunk []Change, reason string) {
	for _, c := range chunk {
		s.fail(c, reason)
	}
}

// csv renders the chunk: "Record ID" and one column per mapped property.
func (s *sender) csv(chunk []Change) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(chunk) * (12 + 8*len(s.mapping.Columns)))
	w := csv.NewWriter(&buf)
	row := make([]string, 1+len(s.mapping.Columns))
	row[0] = "Record ID"
	for i, c := range s.mapping.Columns {
		row[i+1] = c.Property
	}
	if err := w.Write(row); err != nil {
		return nil, err
	}
	for _, ch := range chunk {
		v := store.UnpackValues(ch.Packed)
		row[0] = strconv.FormatUint(ch.Company, 10)
		for i, c := range s.mapping.Columns {
			row[i+1] = c.Value(v)
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
