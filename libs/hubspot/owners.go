package hubspot

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Owner is a CRM owner (a HubSpot user or queue).
type Owner struct {
	ID        string    `json:"id"`
	Email     string    `json:"email,omitempty"`
	FirstName string    `json:"firstName,omitempty"`
	LastName  string    `json:"lastName,omitempty"`
	UserID    int64     `json:"userId,omitempty"`
	Type      string    `json:"type"`
	Archived  bool      `json:"archived"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Teams     []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Primary bool   `json:"primary"`
	} `json:"teams,omitempty"`
}

// OwnerListOptions select a page of ListOwners.
type OwnerListOptions struct {
	// Email filters by owner email.
	Email string
	// Limit is the page size, 1..500 (default 100).
	Limit    int
	After    string
	Archived bool
}

// OwnerPage is one page of owners.
type OwnerPage struct {
	Results []Owner `json:"results"`
	Paging  *Paging `json:"paging,omitempty"`
}

// ListOwners reads one page of owners.
func (c *Client) ListOwners(ctx context.Context, opts OwnerListOptions) (*OwnerPage, error) {
	if opts.Limit == 0 {
		opts.Limit = 100
	}
	if opts.Limit < 1 || opts.Limit > 500 {
		return nil, fmt.Errorf("hubspot: list owners: limit %d out of range 1..500", opts.Limit)
	}
	q := url.Values{"limit": {strconv.Itoa(opts.Limit)}}
	if opts.Email != "" {
		q.Set("email", opts.Email)
	}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	if opts.Archived {
		q.Set("archived", "true")
	}
	var out OwnerPage
	if _, err := c.do(ctx, call{op: "owners.list", method: http.MethodGet, path: c.crmPath("owners"), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// AllOwners iterates over every owner.
func (c *Client) AllOwners(ctx context.Context, opts OwnerListOptions) iter.Seq2[Owner, error] {
	return func(yield func(Owner, error) bool) {
		for {
			page, err := c.ListOwners(ctx, opts)
			if err != nil {
				yield(Owner{}, err)
				return
			}
			for _, o := range page.Results {
				if !yield(o, nil) {
					return
				}
			}
			if opts.After = page.Paging.NextAfter(); opts.After == "" {
				return
			}
		}
	}
}

// OwnerByEmail finds the active owner with an email (case-insensitive). It
// returns an error wrapping ErrNotFound when there is none.
func (c *Client) OwnerByEmail(ctx context.Context, email string) (*Owner, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, fmt.Errorf("hubspot: owner by email: empty email")
	}
	page, err := c.ListOwners(ctx, OwnerListOptions{Email: email})
	if err != nil {
		return nil, err
	}
	for _, o := range page.Results {
		if strings.EqualFold(o.Email, email) {
			return &o, nil
		}
	}
	return nil, fmt.Errorf("hubspot: owner with email %q: %w", email, ErrNotFound)
}

// GetOwner reads one owner by id.
func (c *Client) GetOwner(ctx context.Context, id string) (*Owner, error) {
	if id == "" {
		return nil, fmt.Errorf("hubspot: get owner: empty id")
	}
	var out Owner
	if _, err := c.do(ctx, call{op: "owners.get", method: http.MethodGet, path: c.crmPath("owners", id), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
