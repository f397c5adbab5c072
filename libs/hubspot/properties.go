package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Property is a property definition.
type Property struct {
	Name              string        `json:"name"`
	Label             string        `json:"label"`
	Type              string        `json:"type"`
	FieldType         string        `json:"fieldType"`
	GroupName         string        `json:"groupName"`
	Description       string        `json:"description"`
	Options           []OptionInput `json:"options"`
	DisplayOrder      int           `json:"displayOrder,omitempty"`
	HasUniqueValue    bool          `json:"hasUniqueValue,omitempty"`
	Hidden            bool          `json:"hidden,omitempty"`
	FormField         bool          `json:"formField,omitempty"`
	Calculated        bool          `json:"calculated,omitempty"`
	HubSpotDefined    bool          `json:"hubspotDefined,omitempty"`
	NumberDisplayHint string        `json:"numberDisplayHint,omitempty"`
	DataSensitivity   string        `json:"dataSensitivity,omitempty"`
	ModificationMeta  *PropertyMeta `json:"modificationMetadata,omitempty"`
	CreatedAt         time.Time     `json:"createdAt,omitzero"`
	UpdatedAt         time.Time     `json:"updatedAt,omitzero"`
	Archived          bool          `json:"archived,omitempty"`
	ExternalOptions   bool          `json:"externalOptions,omitempty"`
}

// PropertyMeta says what may change about a property.
type PropertyMeta struct {
	Archivable         bool `json:"archivable"`
	ReadOnlyDefinition bool `json:"readOnlyDefinition"`
	ReadOnlyValue      bool `json:"readOnlyValue"`
	ReadOnlyOptions    bool `json:"readOnlyOptions,omitempty"`
}

// Property value types and field types (PropertyCreate enums).
const (
	TypeBool        = "bool"
	TypeDate        = "date"
	TypeDateTime    = "datetime"
	TypeEnumeration = "enumeration"
	TypeNumber      = "number"
	TypePhoneNumber = "phone_number"
	TypeString      = "string"

	FieldBooleanCheckbox = "booleancheckbox"
	FieldCheckbox        = "checkbox"
	FieldDate            = "date"
	FieldNumber          = "number"
	FieldRadio           = "radio"
	FieldSelect          = "select"
	FieldText            = "text"
	FieldTextarea        = "textarea"
)

// PropertyCreate is a property to create. Name, Label, Type, FieldType and
// GroupName are required; enumerations need Options.
type PropertyCreate struct {
	Name              string        `json:"name"`
	Label             string        `json:"label"`
	Type              string        `json:"type"`
	FieldType         string        `json:"fieldType"`
	GroupName         string        `json:"groupName"`
	Description       string        `json:"description,omitempty"`
	DisplayOrder      int           `json:"displayOrder,omitempty"`
	HasUniqueValue    bool          `json:"hasUniqueValue,omitempty"`
	Hidden            bool          `json:"hidden,omitempty"`
	FormField         bool          `json:"formField,omitempty"`
	NumberDisplayHint string        `json:"numberDisplayHint,omitempty"`
	DataSensitivity   string        `json:"dataSensitivity,omitempty"`
	Options           []OptionInput `json:"options,omitempty"`
}

// OptionInput is an enumeration option.
type OptionInput struct {
	Label        string `json:"label"`
	Value        string `json:"value"`
	Hidden       bool   `json:"hidden"`
	DisplayOrder int    `json:"displayOrder"` // required by the 2026-09 schema
	Description  string `json:"description,omitempty"`
}

var validTypes = map[string]bool{TypeBool: true, TypeDate: true, TypeDateTime: true, TypeEnumeration: true,
	TypeNumber: true, TypePhoneNumber: true, TypeString: true}

var validFieldTypes = map[string]bool{FieldBooleanCheckbox: true, "calculation_equation": true, FieldCheckbox: true,
	FieldDate: true, "file": true, "html": true, FieldNumber: true, "phonenumber": true, FieldRadio: true,
	FieldSelect: true, FieldText: true, FieldTextarea: true}

// Validate reports the first missing or invalid field.
func (p PropertyCreate) Validate() error {
	switch {
	case p.Name == "":
		return fmt.Errorf("property: empty name")
	case p.Label == "":
		return fmt.Errorf("property %s: empty label", p.Name)
	case !validTypes[p.Type]:
		return fmt.Errorf("property %s: type %q is not one of bool, date, datetime, enumeration, number, phone_number, string", p.Name, p.Type)
	case !validFieldTypes[p.FieldType]:
		return fmt.Errorf("property %s: unknown fieldType %q", p.Name, p.FieldType)
	case p.GroupName == "":
		return fmt.Errorf("property %s: empty groupName", p.Name)
	case p.Type == TypeEnumeration && len(p.Options) == 0:
		return fmt.Errorf("property %s: enumeration without options", p.Name)
	}
	for i, o := range p.Options {
		if o.Label == "" || o.Value == "" {
			return fmt.Errorf("property %s: options[%d]: label and value are required", p.Name, i)
		}
	}
	return nil
}

// GetProperties lists the property definitions of an object type.
func (c *Client) GetProperties(ctx context.Context, t ObjectType) ([]Property, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	var out struct {
		Results []Property `json:"results"`
	}
	if _, err := c.do(ctx, call{op: "properties.list", method: http.MethodGet, path: c.crmPath("properties", string(t)), out: &out}); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// GetProperty reads one property definition.
func (c *Client) GetProperty(ctx context.Context, t ObjectType, name string) (*Property, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("hubspot: get property of %s: empty name", t)
	}
	var out Property
	if _, err := c.do(ctx, call{op: "properties.get", method: http.MethodGet, path: c.crmPath("properties", string(t), name), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateProperty creates a property. HubSpot answers 409 (IsConflict) when
// it exists.
func (c *Client) CreateProperty(ctx context.Context, t ObjectType, p PropertyCreate) (*Property, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("hubspot: create %s %w", t, err)
	}
	var out Property
	if _, err := c.do(ctx, call{op: "properties.create", method: http.MethodPost, path: c.crmPath("properties", string(t)), in: p, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// PropertyBatchResult is the outcome of BatchCreateProperties.
type PropertyBatchResult struct {
	Status  string
	Results []Property
	// Errors are the failed inputs; Index is set when HubSpot's error names
	// the property (context "name" / "propertyName").
	Errors      []InputError
	MultiStatus bool
}

// BatchCreateProperties creates up to MaxBatchSize properties at once.
func (c *Client) BatchCreateProperties(ctx context.Context, t ObjectType, props []PropertyCreate) (*PropertyBatchResult, error) {
	op := "batch create properties of " + string(t)
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := checkBatchSize(op, len(props)); err != nil {
		return nil, err
	}
	names := make([]string, len(props))
	for i, p := range props {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d]: %w", op, i, err)
		}
		names[i] = p.Name
	}
	var resp struct {
		Status  string          `json:"status"`
		Results []Property      `json:"results"`
		Errors  []standardError `json:"errors"`
	}
	status, err := c.do(ctx, call{op: "properties.batch.create", method: http.MethodPost,
		path: c.crmPath("properties", string(t), "batch", "create"), in: map[string]any{"inputs": props}, out: &resp})
	if err != nil {
		return nil, err
	}
	m := newInputMapper(names, "")
	out := &PropertyBatchResult{Status: resp.Status, Results: resp.Results, MultiStatus: status == http.StatusMultiStatus}
	for _, se := range resp.Errors {
		if se.Context != nil && len(se.Context["ids"]) == 0 {
			// Property errors name the property rather than an id.
			se.Context["ids"] = append(append([]string{}, se.Context["name"]...), se.Context["propertyName"]...)
		}
		out.Errors = append(out.Errors, m.inputErrors(se)...)
	}
	return out, nil
}

// PropertyGroup is a group of properties.
type PropertyGroup struct {
	Name         string `json:"name"`
	Label        string `json:"label"`
	DisplayOrder int    `json:"displayOrder"`
	Archived     bool   `json:"archived,omitempty"`
}

// GetGroups lists an object type's property groups.
func (c *Client) GetGroups(ctx context.Context, t ObjectType) ([]PropertyGroup, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	var out struct {
		Results []PropertyGroup `json:"results"`
	}
	if _, err := c.do(ctx, call{op: "properties.groups.list", method: http.MethodGet, path: c.crmPath("properties", string(t), "groups"), out: &out}); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// GetGroup reads one property group.
func (c *Client) GetGroup(ctx context.Context, t ObjectType, name string) (*PropertyGroup, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("hubspot: get property group of %s: empty name", t)
	}
	var out PropertyGroup
	if _, err := c.do(ctx, call{op: "properties.groups.get", method: http.MethodGet, path: c.crmPath("properties", string(t), "groups", name), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateGroup creates a property group (Name and Label required).
func (c *Client) CreateGroup(ctx context.Context, t ObjectType, g PropertyGroup) (*PropertyGroup, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if g.Name == "" || g.Label == "" {
		return nil, fmt.Errorf("hubspot: create property group of %s: name %q and label %q are required", t, g.Name, g.Label)
	}
	body := struct {
		Name         string `json:"name"`
		Label        string `json:"label"`
		DisplayOrder int    `json:"displayOrder,omitempty"`
	}{g.Name, g.Label, g.DisplayOrder}
	var out PropertyGroup
	if _, err := c.do(ctx, call{op: "properties.groups.create", method: http.MethodPost, path: c.crmPath("properties", string(t), "groups"), in: body, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
