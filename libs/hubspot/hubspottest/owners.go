package hubspottest

import (
	"net/http"
	"strconv"
	"strings"
)

type ownerWire struct {
	ID                      string   `json:"id"`
	Email                   string   `json:"email,omitempty"`
	FirstName               string   `json:"firstName,omitempty"`
	LastName                string   `json:"lastName,omitempty"`
	UserID                  int64    `json:"userId,omitempty"`
	UserIDIncludingInactive int64    `json:"userIdIncludingInactive,omitempty"`
	Type                    string   `json:"type"`
	CreatedAt               string   `json:"createdAt"`
	UpdatedAt               string   `json:"updatedAt"`
	Archived                bool     `json:"archived"`
	Teams                   []string `json:"teams"`
}

func (s *Server) wireOwner(o Owner) ownerWire {
	ts := formatTime(s.now().Truncate(24 * 3600 * 1e9))
	return ownerWire{
		ID: o.ID, Email: o.Email, FirstName: o.FirstName, LastName: o.LastName,
		UserID: o.UserID, UserIDIncludingInactive: o.UserID, Type: "PERSON",
		CreatedAt: ts, UpdatedAt: ts, Archived: o.Archived, Teams: []string{},
	}
}

// GET /crm/v3/owners
func (s *Server) listOwners(c *call, w http.ResponseWriter, r *http.Request) {
	limit, aerr := intParam(r, "limit", 100, 1, 500)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	offset := 0
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			writeError(w, validationError("after: %q is not a valid paging cursor", a))
			return
		}
		offset = n
	}
	email := strings.ToLower(r.URL.Query().Get("email"))
	archived := boolParam(r, "archived")
	var matched []Owner
	for _, o := range c.p.Owners() {
		if o.Archived != archived || (email != "" && strings.ToLower(o.Email) != email) {
			continue
		}
		matched = append(matched, o)
	}
	results := []ownerWire{}
	next := ""
	for i := offset; i < len(matched); i++ {
		if len(results) == limit {
			next = strconv.Itoa(i)
			break
		}
		results = append(results, s.wireOwner(matched[i]))
	}
	writeJSON(w, http.StatusOK, struct {
		Results []ownerWire `json:"results"`
		Paging  *paging     `json:"paging,omitempty"`
	}{results, pagingAfter(next)})
}

// GET /crm/v3/owners/{ownerId}
func (s *Server) getOwner(c *call, w http.ResponseWriter, r *http.Request) {
	want := r.PathValue("ownerId")
	byUser := r.URL.Query().Get("idProperty") == "userId"
	archived := boolParam(r, "archived")
	for _, o := range c.p.Owners() {
		id := o.ID
		if byUser {
			id = strconv.FormatInt(o.UserID, 10)
		}
		if id == want && o.Archived == archived {
			writeJSON(w, http.StatusOK, s.wireOwner(o))
			return
		}
	}
	writeError(w, notFoundError("Owner %s does not exist", want))
}
