package hubspottest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxUniqueProperties is HubSpot's limit of hasUniqueValue properties per object.
const maxUniqueProperties = 10

type modificationMetadata struct {
	Archivable         bool `json:"archivable"`
	ReadOnlyDefinition bool `json:"readOnlyDefinition"`
	ReadOnlyValue      bool `json:"readOnlyValue"`
	ReadOnlyOptions    bool `json:"readOnlyOptions"`
}

// propertyWire is components.schemas.Property of the properties API.
type propertyWire struct {
	Name                 string               `json:"name"`
	Label                string               `json:"label"`
	Type                 string               `json:"type"`
	FieldType            string               `json:"fieldType"`
	Description          string               `json:"description"`
	GroupName            string               `json:"groupName"`
	Options              []option             `json:"options"`
	DisplayOrder         int                  `json:"displayOrder"`
	Calculated           bool                 `json:"calculated"`
	ExternalOptions      bool                 `json:"externalOptions"`
	HasUniqueValue       bool                 `json:"hasUniqueValue"`
	Hidden               bool                 `json:"hidden"`
	HubspotDefined       bool                 `json:"hubspotDefined"`
	FormField            bool                 `json:"formField"`
	ModificationMetadata modificationMetadata `json:"modificationMetadata"`
	NumberDisplayHint    string               `json:"numberDisplayHint,omitempty"`
	CreatedAt            string               `json:"createdAt,omitempty"`
	UpdatedAt            string               `json:"updatedAt,omitempty"`
	Archived             bool                 `json:"archived"`
	ArchivedAt           string               `json:"archivedAt,omitempty"`
}

func (d *propertyDef) wire() propertyWire {
	o := propertyWire{
		Name: d.Name, Label: d.Label, Type: d.Type, FieldType: d.FieldType, Description: d.Description,
		GroupName: d.GroupName, Options: d.Options, DisplayOrder: d.DisplayOrder, Calculated: d.Calculated,
		HasUniqueValue: d.HasUniqueValue, Hidden: d.Hidden, HubspotDefined: d.HubspotDefined, FormField: d.FormField,
		ModificationMetadata: modificationMetadata{
			Archivable:         !d.HubspotDefined,
			ReadOnlyDefinition: d.ReadOnlyDef,
			ReadOnlyValue:      d.ReadOnlyValue,
			ReadOnlyOptions:    d.HubspotDefined && d.Type != "enumeration",
		},
		NumberDisplayHint: d.NumberDisplayHint,
		CreatedAt:         formatTime(d.CreatedAt),
		UpdatedAt:         formatTime(d.UpdatedAt),
		Archived:          d.Archived,
	}
	if o.Options == nil {
		o.Options = []option{}
	}
	if d.Archived {
		o.ArchivedAt = formatTime(d.ArchivedAt)
	}
	return o
}

// propertyCreate is components.schemas.PropertyCreate.
type propertyCreate struct {
	Name              string   `json:"name"`
	Label             string   `json:"label"`
	Type              string   `json:"type"`
	FieldType         string   `json:"fieldType"`
	GroupName         string   `json:"groupName"`
	Description       string   `json:"description"`
	Options           []option `json:"options"`
	DisplayOrder      *int     `json:"displayOrder"`
	HasUniqueValue    bool     `json:"hasUniqueValue"`
	Hidden            bool     `json:"hidden"`
	FormField         *bool    `json:"formField"`
	NumberDisplayHint string   `json:"numberDisplayHint"`
}

func (s *Server) propertyKind(w http.ResponseWriter, c *call, r *http.Request) (*objectKind, *propertySet, bool) {
	k, ok := s.kinds.lookup(r.PathValue("objectType"))
	if !ok {
		writeError(w, validationError("Unable to infer object type from: %s", r.PathValue("objectType")))
		return nil, nil, false
	}
	return k, c.p.props[k.name], true
}

// newProperty validates a PropertyCreate; the caller holds the portal lock.
func (p *Portal) newProperty(k *objectKind, ps *propertySet, in propertyCreate, now time.Time) (*propertyDef, *apiError) {
	switch {
	case in.Name == "":
		return nil, validationError("name is required")
	case !propertyNameRE.MatchString(in.Name):
		return nil, validationError("name %q is invalid: use lower-case letters, digits and underscores, starting with a letter", in.Name).withContext("propertyName", in.Name)
	case in.Label == "":
		return nil, validationError("label is required for property %s", in.Name)
	case in.GroupName == "":
		return nil, validationError("groupName is required for property %s", in.Name)
	}
	fieldTypes, ok := fieldTypesByType[in.Type]
	if !ok {
		return nil, validationError("type %q of property %s is invalid (want bool, date, datetime, enumeration, number, phone_number or string)", in.Type, in.Name)
	}
	if !slices.Contains(fieldTypes, in.FieldType) {
		return nil, validationError("fieldType %q is not valid for type %s of property %s (want one of %s)", in.FieldType, in.Type, in.Name, strings.Join(fieldTypes, ", "))
	}
	if existing, ok := ps.defs[in.Name]; ok && !existing.Archived {
		return nil, newAPIError(http.StatusConflict, "OBJECT_ALREADY_EXISTS", fmt.Sprintf("A property named '%s' already exists.", in.Name)).withContext("propertyName", in.Name)
	}
	if g, ok := ps.groups[in.GroupName]; !ok || g.Archived {
		return nil, validationError("property group %q does not exist for %s", in.GroupName, k.name).withContext("groupName", in.GroupName)
	}
	opts := slices.Clone(in.Options)
	switch in.Type {
	case "enumeration":
		if len(opts) == 0 {
			return nil, validationError("options are required for enumeration property %s", in.Name)
		}
	case "bool":
		if len(opts) == 0 {
			opts = boolOptions()
		}
	}
	seen := map[string]bool{}
	for i, o := range opts {
		if o.Value == "" || o.Label == "" {
			return nil, validationError("options[%d] of property %s needs a label and a value", i, in.Name)
		}
		if seen[o.Value] {
			return nil, validationError("options[%d] of property %s repeats value %q", i, in.Name, o.Value)
		}
		seen[o.Value] = true
	}
	if in.HasUniqueValue {
		n := 0
		for _, d := range ps.defs {
			if d.HasUniqueValue && !d.Archived {
				n++
			}
		}
		if n >= maxUniqueProperties {
			return nil, validationError("%s already has %d unique value properties, the maximum", k.name, maxUniqueProperties)
		}
	}
	d := &propertyDef{
		Name: in.Name, Label: in.Label, Type: in.Type, FieldType: in.FieldType, GroupName: in.GroupName,
		Description: in.Description, Options: opts, HasUniqueValue: in.HasUniqueValue, Hidden: in.Hidden,
		FormField: in.FormField == nil || *in.FormField, NumberDisplayHint: in.NumberDisplayHint,
		CreatedAt: now, UpdatedAt: now,
	}
	if in.DisplayOrder != nil {
		d.DisplayOrder = *in.DisplayOrder
	}
	return d, nil
}

// GET /crm/v3/properties/{objectType}
func (s *Server) listProperties(c *call, w http.ResponseWriter, r *http.Request) {
	_, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	only := splitList(r.URL.Query()["properties"])
	c.p.mu.Lock()
	out := []propertyWire{}
	for _, d := range ps.sortedDefs(boolParam(r, "archived")) {
		if len(only) == 0 || slices.Contains(only, d.Name) {
			out = append(out, d.wire())
		}
	}
	c.p.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Results []propertyWire `json:"results"`
	}{out})
}

// GET /crm/v3/properties/{objectType}/{propertyName}
func (s *Server) getProperty(c *call, w http.ResponseWriter, r *http.Request) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	d, found := ps.defs[r.PathValue("propertyName")]
	if !found || d.Archived != boolParam(r, "archived") {
		writeError(w, notFoundError("Unable to find property %s for object type %s", r.PathValue("propertyName"), k.typeID))
		return
	}
	writeJSON(w, http.StatusOK, d.wire())
}

// POST /crm/v3/properties/{objectType}
func (s *Server) createProperty(c *call, w http.ResponseWriter, r *http.Request) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	var in propertyCreate
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	d, aerr := c.p.newProperty(k, ps, in, s.now())
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ps.defs[d.Name] = d
	writeJSON(w, http.StatusCreated, d.wire())
}

// POST /crm/v3/properties/{objectType}/batch/create
func (s *Server) batchCreateProperties(c *call, w http.ResponseWriter, r *http.Request) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	started := s.now()
	var body struct {
		Inputs []propertyCreate `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.stats.batchInputs(c.pattern, len(body.Inputs))
	c.p.mu.Lock()
	results := []propertyWire{}
	var errs []standardError
	now := s.now()
	for i, in := range body.Inputs {
		d, aerr := c.p.newProperty(k, ps, in, now)
		if aerr != nil {
			ctx := map[string][]string{"propertyName": {in.Name}, "index": {fmt.Sprint(i)}}
			errs = append(errs, newStandardError(aerr.body.Category, aerr.body.Message, ctx))
			continue
		}
		ps.defs[d.Name] = d
		results = append(results, d.wire())
	}
	c.p.mu.Unlock()
	s.writeBatch(w, http.StatusCreated, started, results, errs)
}

// POST /crm/v3/properties/{objectType}/batch/read
func (s *Server) batchReadProperties(c *call, w http.ResponseWriter, r *http.Request) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	started := s.now()
	var body struct {
		Inputs   []struct{ Name string } `json:"inputs"`
		Archived bool                    `json:"archived"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.mu.Lock()
	results := []propertyWire{}
	var missing []string
	for _, in := range body.Inputs {
		d, found := ps.defs[in.Name]
		if !found || d.Archived != body.Archived {
			missing = append(missing, in.Name)
			continue
		}
		results = append(results, d.wire())
	}
	c.p.mu.Unlock()
	var errs []standardError
	if len(missing) > 0 {
		errs = append(errs, newStandardError("OBJECT_NOT_FOUND", fmt.Sprintf("Unable to find some properties for object type %s", k.typeID), map[string][]string{"properties": missing}))
	}
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

// PATCH /crm/v3/properties/{objectType}/{propertyName}
func (s *Server) patchProperty(c *call, w http.ResponseWriter, r *http.Request) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	var in struct {
		Label        *string   `json:"label"`
		Description  *string   `json:"description"`
		GroupName    *string   `json:"groupName"`
		Options      *[]option `json:"options"`
		DisplayOrder *int      `json:"displayOrder"`
		Hidden       *bool     `json:"hidden"`
		FormField    *bool     `json:"formField"`
		Type         *string   `json:"type"`
		FieldType    *string   `json:"fieldType"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	d, found := ps.get(r.PathValue("propertyName"))
	if !found {
		writeError(w, notFoundError("Unable to find property %s for object type %s", r.PathValue("propertyName"), k.typeID))
		return
	}
	if d.ReadOnlyDef && (in.Type != nil || in.FieldType != nil || in.GroupName != nil || in.Label != nil) {
		writeError(w, validationError("Property %s is HubSpot-defined; its definition is read-only", d.Name))
		return
	}
	if in.Type != nil || in.FieldType != nil {
		typ, ft := d.Type, d.FieldType
		if in.Type != nil {
			typ = *in.Type
		}
		if in.FieldType != nil {
			ft = *in.FieldType
		}
		if !slices.Contains(fieldTypesByType[typ], ft) {
			writeError(w, validationError("fieldType %q is not valid for type %q", ft, typ))
			return
		}
		d.Type, d.FieldType = typ, ft
	}
	if in.GroupName != nil {
		if _, ok := ps.groups[*in.GroupName]; !ok {
			writeError(w, validationError("property group %q does not exist for %s", *in.GroupName, k.name))
			return
		}
		d.GroupName = *in.GroupName
	}
	if in.Label != nil {
		d.Label = *in.Label
	}
	if in.Description != nil {
		d.Description = *in.Description
	}
	if in.Options != nil {
		d.Options = slices.Clone(*in.Options)
	}
	if in.DisplayOrder != nil {
		d.DisplayOrder = *in.DisplayOrder
	}
	if in.Hidden != nil {
		d.Hidden = *in.Hidden
	}
	if in.FormField != nil {
		d.FormField = *in.FormField
	}
	d.UpdatedAt = s.now()
	writeJSON(w, http.StatusOK, d.wire())
}

// DELETE /crm/v3/properties/{objectType}/{propertyName}
func (s *Server) deleteProperty(c *call, w http.ResponseWriter, r *http.Request) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	d, found := ps.get(r.PathValue("propertyName"))
	if !found {
		writeError(w, notFoundError("Unable to find property %s for object type %s", r.PathValue("propertyName"), k.typeID))
		return
	}
	if d.HubspotDefined {
		writeError(w, validationError("Property %s is HubSpot-defined and cannot be archived", d.Name))
		return
	}
	d.Archived, d.ArchivedAt = true, s.now()
	w.WriteHeader(http.StatusNoContent)
}

// POST /crm/v3/properties/{objectType}/batch/archive
func (s *Server) batchArchiveProperties(c *call, w http.ResponseWriter, r *http.Request) {
	_, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	var body struct {
		Inputs []struct{ Name string } `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	now := s.now()
	for _, in := range body.Inputs {
		if d, found := ps.get(in.Name); found && !d.HubspotDefined {
			d.Archived, d.ArchivedAt = true, now
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// GET /crm/v3/properties/{objectType}/groups
func (s *Server) listGroups(c *call, w http.ResponseWriter, r *http.Request) {
	_, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	c.p.mu.Lock()
	out := []propertyGroup{}
	for _, g := range ps.groups {
		if !g.Archived {
			out = append(out, *g)
		}
	}
	c.p.mu.Unlock()
	slices.SortFunc(out, func(a, b propertyGroup) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, struct {
		Results []propertyGroup `json:"results"`
	}{out})
}

// POST /crm/v3/properties/{objectType}/groups
func (s *Server) createGroup(c *call, w http.ResponseWriter, r *http.Request) {
	_, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return
	}
	var in struct {
		Name         string `json:"name"`
		Label        string `json:"label"`
		DisplayOrder *int   `json:"displayOrder"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	switch {
	case in.Name == "":
		writeError(w, validationError("name is required"))
		return
	case !propertyNameRE.MatchString(in.Name):
		writeError(w, validationError("name %q is invalid: use lower-case letters, digits and underscores, starting with a letter", in.Name))
		return
	case in.Label == "":
		writeError(w, validationError("label is required for group %s", in.Name))
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if g, exists := ps.groups[in.Name]; exists && !g.Archived {
		writeError(w, newAPIError(http.StatusConflict, "OBJECT_ALREADY_EXISTS", fmt.Sprintf("A property group named '%s' already exists.", in.Name)))
		return
	}
	g := &propertyGroup{Name: in.Name, Label: in.Label, DisplayOrder: -1}
	if in.DisplayOrder != nil {
		g.DisplayOrder = *in.DisplayOrder
	}
	ps.groups[g.Name] = g
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) group(w http.ResponseWriter, c *call, r *http.Request) (*propertySet, *propertyGroup, bool) {
	k, ps, ok := s.propertyKind(w, c, r)
	if !ok {
		return nil, nil, false
	}
	g, found := ps.groups[r.PathValue("groupName")]
	if !found || g.Archived {
		writeError(w, notFoundError("Unable to find property group %s for object type %s", r.PathValue("groupName"), k.typeID))
		return nil, nil, false
	}
	return ps, g, true
}

// GET /crm/v3/properties/{objectType}/groups/{groupName}
func (s *Server) getGroup(c *call, w http.ResponseWriter, r *http.Request) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if _, g, ok := s.group(w, c, r); ok {
		writeJSON(w, http.StatusOK, g)
	}
}

// PATCH /crm/v3/properties/{objectType}/groups/{groupName}
func (s *Server) patchGroup(c *call, w http.ResponseWriter, r *http.Request) {
	var in struct {
		Label        *string `json:"label"`
		DisplayOrder *int    `json:"displayOrder"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	_, g, ok := s.group(w, c, r)
	if !ok {
		return
	}
	if in.Label != nil {
		g.Label = *in.Label
	}
	if in.DisplayOrder != nil {
		g.DisplayOrder = *in.DisplayOrder
	}
	writeJSON(w, http.StatusOK, g)
}

// DELETE /crm/v3/properties/{objectType}/groups/{groupName}
func (s *Server) deleteGroup(c *call, w http.ResponseWriter, r *http.Request) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	ps, g, ok := s.group(w, c, r)
	if !ok {
		return
	}
	for _, d := range ps.defs {
		if d.GroupName == g.Name && !d.Archived {
			writeError(w, validationError("Property group %s still holds property %s", g.Name, d.Name))
			return
		}
	}
	g.Archived = true
	w.WriteHeader(http.StatusNoContent)
}
