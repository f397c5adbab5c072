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

// ObjectType is a CRM object type as it appears in paths.
type ObjectType string

// The CRM object types the client supports.
const (
	Contacts  ObjectType = "contacts"
	Companies ObjectType = "companies"
	Deals     ObjectType = "deals"
	Tasks     ObjectType = "tasks"
	Notes     ObjectType = "notes"
)

// TypeID returns HubSpot's object type id (contacts "0-1", companies "0-2",
// deals "0-3", notes "0-46", tasks "0-27"), used by lists and imports; other
// types are returned unchanged (custom objects are addressed by their id).
func (t ObjectType) TypeID() string {
	switch t {
	case Contacts:
		return "0-1"
	case Companies:
		return "0-2"
	case Deals:
		return "0-3"
	case Notes:
		return "0-46"
	case Tasks:
		return "0-27"
	}
	return string(t)
}

// ModifiedProperty is the last-modified property used for incremental reads:
// lastmodifieddate for contacts, hs_lastmodifieddate for the others.
func (t ObjectType) ModifiedProperty() string {
	if t == Contacts {
		return "lastmodifieddate"
	}
	return "hs_lastmodifieddate"
}

func (t ObjectType) validate() error {
	if t == "" || strings.ContainsAny(string(t), "/?#") {
		return fmt.Errorf("hubspot: invalid object type %q", t)
	}
	return nil
}

// Object is a CRM record (SimplePublicObject and its variants).
type Object struct {
	ID string `json:"id"`
	// Properties holds the requested property values as HubSpot returns
	// them: strings, with "" for empty (null) values.
	Properties map[string]string `json:"properties"`
	// PropertiesWithHistory is set when history was requested.
	PropertiesWithHistory map[string][]PropertyVersion `json:"propertiesWithHistory,omitempty"`
	CreatedAt             time.Time                    `json:"createdAt"`
	UpdatedAt             time.Time                    `json:"updatedAt"`
	Archived              bool                         `json:"archived"`
	ArchivedAt            time.Time                    `json:"archivedAt,omitzero"`
	// Associations is set by Get and List when associations were requested,
	// keyed by the associated object type.
	Associations map[string]AssociatedIDs `json:"associations,omitempty"`
	// ObjectWriteTraceID echoes the trace id of the batch input that wrote it.
	ObjectWriteTraceID string `json:"objectWriteTraceId,omitempty"`
	// New is set by batch upsert: true when the record was created.
	New bool   `json:"new,omitempty"`
	URL string `json:"url,omitempty"`
}

// PropertyVersion is one historical value of a property.
type PropertyVersion struct {
	Value           string    `json:"value"`
	Timestamp       time.Time `json:"timestamp"`
	SourceType      string    `json:"sourceType"`
	SourceID        string    `json:"sourceId,omitempty"`
	SourceLabel     string    `json:"sourceLabel,omitempty"`
	UpdatedByUserID int64     `json:"updatedByUserId,omitempty"`
}

// AssociatedIDs is an object's associations to one type (v3 shape).
type AssociatedIDs struct {
	Results []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"results"`
	Paging *Paging `json:"paging,omitempty"`
}

// Paging is HubSpot's cursor block.
type Paging struct {
	Next *struct {
		After string `json:"after"`
		Link  string `json:"link,omitempty"`
	} `json:"next,omitempty"`
}

// NextAfter returns the cursor of the next page, or "" on the last page.
func (p *Paging) NextAfter() string {
	if p == nil || p.Next == nil {
		return ""
	}
	return p.Next.After
}

// GetOptions select what Get returns.
type GetOptions struct {
	// Properties to return; HubSpot returns a default set when empty.
	Properties            []string
	PropertiesWithHistory []string
	// Associations lists object types whose associated ids to return.
	Associations []string
	// IDProperty makes id a value of this unique property (e.g. "email")
	// instead of the record id.
	IDProperty string
	// Archived reads archived records only.
	Archived bool
}

func (o GetOptions) query() url.Values {
	q := url.Values{}
	if len(o.Properties) > 0 {
		q.Set("properties", strings.Join(o.Properties, ","))
	}
	if len(o.PropertiesWithHistory) > 0 {
		q.Set("propertiesWithHistory", strings.Join(o.PropertiesWithHistory, ","))
	}
	if len(o.Associations) > 0 {
		q.Set("associations", strings.Join(o.Associations, ","))
	}
	if o.IDProperty != "" {
		q.Set("idProperty", o.IDProperty)
	}
	if o.Archived {
		q.Set("archived", "true")
	}
	return q
}

// Get reads one record by id (or by a unique property, see GetOptions.IDProperty).
func (c *Client) Get(ctx context.Context, t ObjectType, id string, opts GetOptions) (*Object, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("hubspot: get %s: empty id", t)
	}
	var out Object
	_, err := c.do(ctx, call{op: "objects.get", method: http.MethodGet, path: c.objectsPath(t, id), query: opts.query(), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListOptions select a page of List.
type ListOptions struct {
	// Limit is the page size, 1..100 (default 100).
	Limit        int
	After        string
	Properties   []string
	Associations []string
	Archived     bool
}

// Page is one page of List.
type Page struct {
	Results []Object `json:"results"`
	Paging  *Paging  `json:"paging,omitempty"`
}

// MaxListLimit is the largest page List accepts.
const MaxListLimit = 100

// List reads one page of records in id order (no 10,000 cap, unlike Search).
// Follow Page.Paging.NextAfter, or use ListAll.
func (c *Client) List(ctx context.Context, t ObjectType, opts ListOptions) (*Page, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if opts.Limit == 0 {
		opts.Limit = MaxListLimit
	}
	if opts.Limit < 1 || opts.Limit > MaxListLimit {
		return nil, fmt.Errorf("hubspot: list %s: Limit %d out of range 1..%d", t, opts.Limit, MaxListLimit)
	}
	q := GetOptions{Properties: opts.Properties, Associations: opts.Associations, Archived: opts.Archived}.query()
	q.Set("limit", strconv.Itoa(opts.Limit))
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	var out Page
	if _, err := c.do(ctx, call{op: "objects.list", method: http.MethodGet, path: c.objectsPath(t), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAll iterates over every record of a type, page by page. It stops at the
// first error, which it yields.
func (c *Client) ListAll(ctx context.Context, t ObjectType, opts ListOptions) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		for {
			page, err := c.List(ctx, t, opts)
			if err != nil {
				yield(Object{}, err)
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

// CreateInput is a record to create.
type CreateInput struct {
	Properties   map[string]string `json:"properties"`
	Associations []AssociationTo   `json:"associations"`
}

// AssociationTo associates a record being created with an existing one.
type AssociationTo struct {
	To    ObjectID          `json:"to"`
	Types []AssociationSpec `json:"types"`
}

// ObjectID is {"id": "..."}.
type ObjectID struct {
	ID string `json:"id"`
}

// Create creates one record. Prefer BatchCreate for more than a few.
func (c *Client) Create(ctx context.Context, t ObjectType, in CreateInput) (*Object, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if in.Associations == nil {
		in.Associations = []AssociationTo{}
	}
	var out Object
	_, err := c.do(ctx, call{op: "objects.create", method: http.MethodPost, path: c.objectsPath(t), in: in, out: &out, create: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Update sets properties on one record ("" clears a value). idProperty may
// name a unique property that id is a value of; "" means the record id.
func (c *Client) Update(ctx context.Context, t ObjectType, id, idProperty string, props map[string]string) (*Object, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("hubspot: update %s: empty id", t)
	}
	var q url.Values
	if idProperty != "" {
		q = url.Values{"idProperty": {idProperty}}
	}
	var out Object
	_, err := c.do(ctx, call{op: "objects.update", method: http.MethodPatch, path: c.objectsPath(t, id), query: q,
		in: map[string]any{"properties": props}, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Archive archives (soft-deletes) one record.
func (c *Client) Archive(ctx context.Context, t ObjectType, id string) error {
	if err := t.validate(); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("hubspot: archive %s: empty id", t)
	}
	_, err := c.do(ctx, call{op: "objects.archive", method: http.MethodDelete, path: c.objectsPath(t, id)})
	return err
}
