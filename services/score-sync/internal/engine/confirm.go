package engine

import (
	"context"
	"sync"
	"time"

	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// confirmer collects the companies HubSpot confirmed and appends them to the sent table in
// parts of flushRows (or when flush is called), so that a crash loses at most the last
// unflushed confirmations: those companies are sent again by the next run, none is skipped.
type confirmer struct {
	table       *store.Table
	portal      string
	fingerprint uint32
	flushRows   int
	now         func() time.Time
	// onFlush runs after each successful flush with the total confirmations stored so far.
	onFlush func(stored int)

	mu      sync.Mutex
	pending []store.Row
	stored  int
	// flushing serialises flushes so parts land in order.
	flushing sync.Mutex
}

// add records one confirmation and flushes when enough are pending.
func (c *confirmer) add(ctx context.Context, ch Change) error {
	row := store.SentRow{CompanyID: ch.Company, Fingerprint: c.fingerprint, Packed: ch.Packed, ConfirmedAt: c.now()}.Row()
	c.mu.Lock()
	c.pending = append(c.pending, row)
	full := len(c.pending) >= c.flushRows
	c.mu.Unlock()
	if full {
		return c.flush(ctx)
	}
	return nil
}

// flush stores the pending confirmations. On failure they stay pending for the next flush.
func (c *confirmer) flush(ctx context.Context) error {
	c.flushing.Lock()
	defer c.flushing.Unlock()
	c.mu.Lock()
	rows := c.pending
	c.pending = nil
	c.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	if _, err := c.table.Append(ctx, c.portal, rows); err != nil {
		c.mu.Lock()
		c.pending = append(rows, c.pending...)
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	c.stored += len(rows)
	stored := c.stored
	c.mu.Unlock()
	if c.onFlush != nil {
		c.onFlush(stored)
	}
	return nil
}

// unstored is the number of confirmations not stored yet.
func (c *confirmer) unstored() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
