package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/redisx"
)

// ErrLocked is wrapped by Acquire when another holder has the portal's lock.
var ErrLocked = errors.New("a score-sync run holds the portal")

// ErrLockLost is the cause of a held lock's context when the lock expired or was taken over.
var ErrLockLost = errors.New("score-sync lock lost")

// LockKey is the Redis key of a portal's run lock: sb:{portal}:scoresync:lock.
func LockKey(portal string) string { return redisx.Key(portal, "scoresync", "lock") }

var (
	renewScript  = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)
	unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)
)

// Lock is a held per-portal run lock: a Redis key with a TTL whose value is the holder's
// token. While held it is renewed every TTL/3; when a renewal finds the key gone or owned by
// someone else (expired during a long pause, or Redis lost it), the lock's context is
// cancelled with ErrLockLost so that the run stops writing.
//
// Redis is the coordinator here, not the source of truth: losing the key can at worst let two
// runs overlap for up to TTL/3, and every write of a run is idempotent (HubSpot updates to the
// same values, sent-state rows versioned by time).
type Lock struct {
	rdb    redis.UniversalClient
	key    string
	token  string
	ttl    time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	once   sync.Once
}

// Acquire takes the portal's lock for holder (a description such as "replica-a run 2026…")
// or returns an error wrapping ErrLocked that names the current holder. The returned lock's
// Context is derived from parent and ends when the lock is lost or released.
func Acquire(parent context.Context, rdb redis.UniversalClient, portal, holder string, ttl time.Duration) (*Lock, error) {
	if ttl < 3*time.Millisecond {
		return nil, fmt.Errorf("store: lock ttl %s is too short", ttl)
	}
	token := holder + "#" + rand.Text()[:10]
	key := LockKey(portal)
	ok, err := rdb.SetNX(parent, key, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("store: lock portal %s: %w", portal, err)
	}
	if !ok {
		cur, err := rdb.Get(parent, key).Result()
		if errors.Is(err, redis.Nil) {
			// Released meanwhile: one more try.
			if ok, err = rdb.SetNX(parent, key, token, ttl).Result(); err == nil && ok {
				return startLock(parent, rdb, key, token, ttl), nil
			}
		}
		holderOf, _, _ := strings.Cut(cur, "#")
		return nil, fmt.Errorf("store: portal %s: %w (%s)", portal, ErrLocked, holderOf)
	}
	return startLock(parent, rdb, key, token, ttl), nil
}

func startLock(parent context.Context, rdb redis.UniversalClient, key, token string, ttl time.Duration) *Lock {
	ctx, cancel := context.WithCancelCause(parent)
	l := &Lock{rdb: rdb, key: key, token: token, ttl: ttl, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go l.keep()
	return l
}

// Context ends when the lock is lost or released.
func (l *Lock) Context() context.Context { return l.ctx }

func (l *Lock) keep() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.ttl/3)
		n, err := renewScript.Run(rctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case err == nil && n == 1:
			failures = 0
		case err == nil:
			l.cancel(fmt.Errorf("%w: %s is no longer ours", ErrLockLost, l.key))
			return
		default:
			// Redis unreachable: the key may still be ours; give up before it can expire.
			failures++
			if failures >= 2 {
				l.cancel(fmt.Errorf("%w: cannot renew %s: %w", ErrLockLost, l.key, err))
				return
			}
		}
	}
}

// Release stops renewing and deletes the key if it is still ours.
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		l.cancel(errors.New("lock released"))
		<-l.done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if e := unlockScript.Run(rctx, l.rdb, []string{l.key}, l.token).Err(); e != nil {
			err = fmt.Errorf("store: release %s: %w", l.key, e)
		}
	})
	return err
}
