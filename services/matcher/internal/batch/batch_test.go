package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a fetch that records its calls and finds every even key.
type recorder struct {
	mu    sync.Mutex
	calls [][]int
	gate  chan struct{} // when set, fetches wait for it
	err   error
}

func (r *recorder) fetch(_ context.Context, group string, keys []int) (map[int]string, error) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.calls = append(r.calls, slices.Clone(keys))
	r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	out := map[int]string{}
	for _, k := range keys {
		if k%2 == 0 {
			out[k] = fmt.Sprintf("%s:%d", group, k)
		}
	}
	return out, nil
}

func TestConcurrentLookupsShareFetches(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b := New(r.fetch, Options{Max: 100, Linger: 20 * time.Millisecond})
	var wg sync.WaitGroup
	results := make([]map[int]string, 250)
	for i := range 250 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Get(context.Background(), "p1", []int{i, (i + 1) % 250}) // every key asked twice
			if err != nil {
				t.Error(err)
			}
			results[i] = got
		}()
	}
	wg.Wait()
	for i, got := range results {
		for _, k := range []int{i, (i + 1) % 250} {
			v, ok := got[k]
			if ok != (k%2 == 0) || (ok && v != fmt.Sprintf("p1:%d", k)) {
				t.Fatalf("caller %d key %d: %q, %v", i, k, v, ok)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fetched := map[int]int{}
	for _, c := range r.calls {
		if len(c) > 100 {
			t.Errorf("a fetch of %d keys, max 100", len(c))
		}
		for _, k := range c {
			fetched[k]++
		}
	}
	if len(fetched) != 250 {
		t.Errorf("%d distinct keys fetched, want 250", len(fetched))
	}
	// One flight per key while it is pending or running; 500 look-ups of 250 keys need
	// at most a handful of fetches.
	if len(r.calls) > 6 {
		t.Errorf("%d fetches for 250 keys in 500 concurrent look-ups", len(r.calls))
	}
	if st := b.Stats(); st.Fetches != int64(len(r.calls)) || st.Joined == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestGroupsAreFetchedSeparately(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b := New(r.fetch, Options{Max: 10, Linger: time.Millisecond})
	a, err1 := b.Get(context.Background(), "p1", []int{2})
	c, err2 := b.Get(context.Background(), "p2", []int{2})
	if err1 != nil || err2 != nil || a[2] != "p1:2" || c[2] != "p2:2" {
		t.Fatalf("p1 %v %v, p2 %v %v", a, err1, c, err2)
	}
}

func TestFullBatchDoesNotWaitForLinger(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b := New(r.fetch, Options{Max: 4, Linger: time.Hour})
	got, err := b.Get(context.Background(), "p", []int{0, 1, 2, 3})
	if err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestErrorsReachEveryWaiter(t *testing.T) {
	t.Parallel()
	boom := errors.New("hubspot down")
	r := &recorder{err: boom, gate: make(chan struct{})}
	b := New(r.fetch, Options{Max: 10, Linger: time.Millisecond})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := b.Get(context.Background(), "p", []int{1, 2})
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // let all three join the flight
	close(r.gate)
	for range 3 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Errorf("err = %v, want %v", err, boom)
		}
	}
	// A failed flight is not remembered: the next look-up fetches again.
	r.err = nil
	got, err := b.Get(context.Background(), "p", []int{2})
	if err != nil || got[2] != "p:2" {
		t.Fatalf("after the failure: %v, %v", got, err)
	}
}

func TestCallerContextEndsItsWaitOnly(t *testing.T) {
	t.Parallel()
	r := &recorder{gate: make(chan struct{})}
	b := New(r.fetch, Options{Max: 10, Linger: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Get(ctx, "p", []int{4}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	done := make(chan map[int]string)
	go func() {
		got, _ := b.Get(context.Background(), "p", []int{4})
		done <- got
	}()
	close(r.gate)
	if got := <-done; got[4] != "p:4" {
		t.Fatalf("the shared flight did not complete for the other caller: %v", got)
	}
}

func TestFetchPanicReleasesWaiters(t *testing.T) {
	t.Parallel()
	b := New(func(context.Context, string, []int) (map[int]int, error) { panic("bad") }, Options{Linger: time.Millisecond})
	if _, err := b.Get(context.Background(), "p", []int{1}); err == nil {
		t.Fatal("no error from a panicking fetch")
	}
}
