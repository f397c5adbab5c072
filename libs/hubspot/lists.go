package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// List processing types.
const (
	ListManual   = "MANUAL"
	ListSnapshot = "SNAPSHOT"
	ListDynamic  = "DYNAMIC"
)

// List is a CRM list (lists v3).
type List struct {
	ListID           string    `json:"listId"`
	Name             string    `json:"name"`
	ObjectTypeID     string    `json:"objectTypeId"`
	ProcessingType   string    `json:"processingType"`
	ProcessingStatus string    `json:"processingStatus"`
	ListVersion      int       `json:"listVersion"`
	Size             int       `json:"size,omitempty"`
	CreatedAt        time.Time `json:"createdAt,omitzero"`
	UpdatedAt        time.Time `json:"updatedAt,omitzero"`
}

// CreateListRequest is a list to create. ProcessingType defaults to MANUAL
// (the only kind, with SNAPSHOT, whose members can be added by API).
type CreateListRequest struct {
	Name           string `json:"name"`
	ObjectTypeID   string `json:"objectTypeId"`
	ProcessingType string `json:"processingType"`
	// FilterBranch is the list definition, required for DYNAMIC lists
	// (HubSpot's filterBranch JSON).
	FilterBranch json.RawMessage `json:"filterBranch,omitempty"`
}

// CreateList creates a list. HubSpot answers 409 when the name is taken.
func (c *Client) CreateList(ctx context.Context, req CreateListRequest) (*List, error) {
	if req.ProcessingType == "" {
		req.ProcessingType = ListManual
	}
	switch {
	case req.Name == "":
		return nil, fmt.Errorf("hubspot: create list: empty name")
	case req.ObjectTypeID == "":
		return nil, fmt.Errorf("hubspot: create list %q: empty objectTypeId (e.g. %q for contacts)", req.Name, Contacts.TypeID())
	case req.ProcessingType != ListManual && req.ProcessingType != ListSnapshot && req.ProcessingType != ListDynamic:
		return nil, fmt.Errorf("hubspot: create list %q: processingType %q, want MANUAL, SNAPSHOT or DYNAMIC", req.Name, req.ProcessingType)
	case req.ProcessingType == ListDynamic && len(req.FilterBranch) == 0:
		return nil, fmt.Errorf("hubspot: create list %q: a DYNAMIC list needs a filterBranch", req.Name)
	}
	var out struct {
		List List `json:"list"`
	}
	if _, err := c.do(ctx, call{op: "lists.create", method: http.MethodPost, path: c.crmPath("lists"), in: req, out: &out}); err != nil {
		return nil, err
	}
	return &out.List, nil
}

// GetList reads a list by id.
func (c *Client) GetList(ctx context.Context, listID string) (*List, error) {
	if listID == "" {
		return nil, fmt.Errorf("hubspot: get list: empty id")
	}
	var out struct {
		List List `json:"list"`
	}
	if _, err := c.do(ctx, call{op: "lists.get", method: http.MethodGet, path: c.crmPath("lists", listID), out: &out}); err != nil {
		return nil, err
	}
	return &out.List, nil
}

// ListByName finds a list by object type id and name; a missing list is a
// HubSpot 404 (IsNotFound).
func (c *Client) ListByName(ctx context.Context, objectTypeID, name string) (*List, error) {
	if objectTypeID == "" || name == "" {
		return nil, fmt.Errorf("hubspot: list by name: objectTypeId %q and name %q are required", objectTypeID, name)
	}
	var out struct {
		List List `json:"list"`
	}
	if _, err := c.do(ctx, call{op: "lists.byName", method: http.MethodGet,
		path: c.crmPath("lists", "object-type-id", objectTypeID, "name", name), out: &out}); err != nil {
		return nil, err
	}
	return &out.List, nil
}

// MembershipsUpdate is the outcome of AddMembers / RemoveMembers.
type MembershipsUpdate struct {
	Added   []string `json:"recordsIdsAdded"` // sic: HubSpot's field name
	Removed []string `json:"recordIdsRemoved"`
	// Missing are ids HubSpot does not know.
	Missing []string `json:"recordIdsMissing"`
}

// AddMembers adds records to a MANUAL or SNAPSHOT list; unknown and existing
// members are ignored.
func (c *Client) AddMembers(ctx context.Context, listID string, recordIDs []string) (*MembershipsUpdate, error) {
	return c.memberships(ctx, "add", listID, recordIDs)
}

// RemoveMembers removes records from a MANUAL or SNAPSHOT list.
func (c *Client) RemoveMembers(ctx context.Context, listID string, recordIDs []string) (*MembershipsUpdate, error) {
	return c.memberships(ctx, "remove", listID, recordIDs)
}

func (c *Client) memberships(ctx context.Context, verb, listID string, ids []string) (*MembershipsUpdate, error) {
	if listID == "" {
		return nil, fmt.Errorf("hubspot: list memberships %s: empty list id", verb)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("hubspot: list %s memberships %s: no record ids", listID, verb)
	}
	for i, id := range ids {
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return nil, fmt.Errorf("hubspot: list %s memberships %s: recordIds[%d] %q is not a record id", listID, verb, i, id)
		}
	}
	var out MembershipsUpdate
	if _, err := c.do(ctx, call{op: "lists.memberships." + verb, method: http.MethodPut,
		path: c.crmPath("lists", listID, "memberships", verb), in: ids, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Member is one list membership.
type Member struct {
	RecordID            string    `json:"recordId"`
	MembershipTimestamp time.Time `json:"membershipTimestamp"`
}

// MemberPage is one page of ListMembers.
type MemberPage struct {
	Results []Member `json:"results"`
	Total   int      `json:"total,omitempty"`
	Paging  *Paging  `json:"paging,omitempty"`
}

// ListMembers reads one page (limit ≤ 250, default 100) of a list's members.
func (c *Client) ListMembers(ctx context.Context, listID, after string, limit int) (*MemberPage, error) {
	if listID == "" {
		return nil, fmt.Errorf("hubspot: list members: empty list id")
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 250 {
		return nil, fmt.Errorf("hubspot: list %s members: limit %d out of range 1..250", listID, limit)
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var out MemberPage
	if _, err := c.do(ctx, call{op: "lists.memberships.list", method: http.MethodGet,
		path: c.crmPath("lists", listID, "memberships"), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
