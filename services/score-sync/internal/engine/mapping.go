package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// ErrIncompatibleMapping is wrapped by every MappingError.
var ErrIncompatibleMapping = errors.New("incompatible score property mapping")

// MappingError says why one score cannot be written to one HubSpot property.
type MappingError struct {
	// Field is the score ("intent_strength").
	Field string
	// Property is the HubSpot company property ("sb_intent_strength").
	Property string
	// Problem is what is wrong, for a person.
	Problem string
}

// Error implements error.
func (e *MappingError) Error() string {
	return fmt.Sprintf("score %s → company property %q: %s", e.Field, e.Property, e.Problem)
}

// Unwrap returns ErrIncompatibleMapping.
func (e *MappingError) Unwrap() error { return ErrIncompatibleMapping }

// Field is one of the five synced scores.
type Field int

// The synced scores, in column order.
const (
	IntentScore Field = iota
	IntentStrength
	IntentTrend
	ICPFitScore
	ICPFitGrade
)

// Fields lists every Field in column order.
var Fields = [...]Field{IntentScore, IntentStrength, IntentTrend, ICPFitScore, ICPFitGrade}

// option is one choice of an enumeration score: its canonical key (the option value of the
// managed property) and label.
type option struct{ key, label string }

type fieldDef struct {
	name    string // source field and managed property suffix
	label   string
	options []option // nil for numbers
}

var fieldDefs = [...]fieldDef{
	IntentScore: {name: "intent_score", label: "Intent Score"},
	IntentStrength: {name: "intent_strength", label: "Intent Strength", options: []option{
		{"very_high", "Very High"}, {"high", "High"}, {"medium", "Medium"}, {"low", "Low"}, {"none", "None"}}},
	IntentTrend: {name: "intent_trend", label: "Intent Trend", options: []option{
		{"surging", "Surging"}, {"heating", "Heating"}, {"neutral", "Neutral"}, {"cooling", "Cooling"}, {"new", "New"}, {"none", "None"}}},
	ICPFitScore: {name: "icp_fit_score", label: "ICP Fit Score"},
	ICPFitGrade: {name: "icp_fit_grade", label: "ICP Fit Grade", options: []option{
		{"a", "A"}, {"b", "B"}, {"c", "C"}, {"d", "D"}, {"none", "—"}}},
}

// String is the score's name ("intent_score").
func (f Field) String() string { return fieldDefs[f].name }

// optionKey is the canonical option of an enumeration score's value.
func optionKey(f Field, v store.Values) string {
	switch f {
	case IntentStrength:
		switch v.IntentStrength {
		case scoresv1.IntentStrength_INTENT_STRENGTH_VERY_HIGH:
			return "very_high"
		case scoresv1.IntentStrength_INTENT_STRENGTH_HIGH:
			return "high"
		case scoresv1.IntentStrength_INTENT_STRENGTH_MEDIUM:
			return "medium"
		case scoresv1.IntentStrength_INTENT_STRENGTH_LOW:
			return "low"
		}
	case IntentTrend:
		switch v.IntentTrend {
		case scoresv1.IntentTrend_INTENT_TREND_SURGING:
			return "surging"
		case scoresv1.IntentTrend_INTENT_TREND_HEATING:
			return "heating"
		case scoresv1.IntentTrend_INTENT_TREND_NEUTRAL:
			return "neutral"
		case scoresv1.IntentTrend_INTENT_TREND_COOLING:
			return "cooling"
		case scoresv1.IntentTrend_INTENT_TREND_NEW:
			return "new"
		}
	case ICPFitGrade:
		switch v.ICPFitGrade {
		case scoresv1.FitGrade_FIT_GRADE_A:
			return "a"
		case scoresv1.FitGrade_FIT_GRADE_B:
			return "b"
		case scoresv1.FitGrade_FIT_GRADE_C:
			return "c"
		case scoresv1.FitGrade_FIT_GRADE_D:
			return "d"
		}
	}
	return "none" // unspecified and explicit none alike
}

// Column is one HubSpot property written from one score.
type Column struct {
	Field    Field
	Property string
	// Managed is true for the properties signalbridge creates.
	Managed bool
	// values maps canonical option keys to what is written (enumeration scores).
	values map[string]string
}

// Value renders the column's value for v as HubSpot expects it.
func (c Column) Value(v store.Values) string {
	switch c.Field {
	case IntentScore:
		return formatHundredths(v.IntentScore)
	case ICPFitScore:
		return formatHundredths(v.ICPFitScore)
	}
	return c.values[optionKey(c.Field, v)]
}

func formatHundredths(h uint16) string {
	return strconv.FormatFloat(float64(h)/100, 'f', -1, 64)
}

// Mapping is the resolved set of columns of one portal.
type Mapping struct {
	Columns []Column
	// Fingerprint identifies the columns and their rendered values; sent-state rows written
	// under another fingerprint do not count as sent.
	Fingerprint uint32
}

// Properties renders v as a batch-update property map.
func (m Mapping) Properties(v store.Values) map[string]string {
	out := make(map[string]string, len(m.Columns))
	for _, c := range m.Columns {
		out[c.Property] = c.Value(v)
	}
	return out
}

// target is one property a score is to be written to, before it was checked.
type target struct {
	field    Field
	property string
	managed  bool
}

// targets works out the columns of a portal's config: each score goes to the properties that
// field_mappings name for "account.<score>" (object company, strategy overwrite), or else to
// the managed property <prefix><score>.
func targets(cfg *portal.Config) ([]target, error) {
	var out []target
	var errs []error
	byProperty := map[string]Field{}
	for _, f := range Fields {
		source := "account." + f.String()
		var custom []target
		for i, fm := range cfg.FieldMappings {
			if fm.Source != source {
				continue
			}
			for j, t := range fm.Targets {
				if t.Object != portal.ObjectCompany {
					continue
				}
				if t.Strategy != portal.StrategyOverwrite {
					errs = append(errs, &MappingError{Field: f.String(), Property: t.Property, Problem: fmt.Sprintf(
						"field_mappings[%d].targets[%d] has strategy %q; score sync replaces the values every night, so the strategy must be %q",
						i, j, t.Strategy, portal.StrategyOverwrite)})
					continue
				}
				custom = append(custom, target{field: f, property: t.Property})
			}
		}
		if len(custom) == 0 {
			custom = []target{{field: f, property: cfg.ScoreSync.PropertyPrefix + f.String(), managed: true}}
		}
		for _, t := range custom {
			if other, dup := byProperty[t.property]; dup {
				errs = append(errs, &MappingError{Field: f.String(), Property: t.property,
					Problem: fmt.Sprintf("the property is also the target of score %s; each property can hold one score", other)})
				continue
			}
			byProperty[t.property] = f
			out = append(out, t)
		}
	}
	return out, errors.Join(errs...)
}

// hubspotAPI is the part of the HubSpot client that setup uses.
type hubspotAPI interface {
	GetGroups(ctx context.Context, t hubspot.ObjectType) ([]hubspot.PropertyGroup, error)
	CreateGroup(ctx context.Context, t hubspot.ObjectType, g hubspot.PropertyGroup) (*hubspot.PropertyGroup, error)
	GetProperties(ctx context.Context, t hubspot.ObjectType) ([]hubspot.Property, error)
	BatchCreateProperties(ctx context.Context, t hubspot.ObjectType, props []hubspot.PropertyCreate) (*hubspot.PropertyBatchResult, error)
}

// SetupResult says what Setup did.
type SetupResult struct {
	Mapping Mapping
	// GroupCreated and PropertiesCreated list what was created (empty when all existed).
	GroupCreated      bool
	PropertiesCreated []string
	// Calls is the number of HubSpot calls made.
	Calls int
}

// Setup makes the portal's score properties ready, idempotently: it creates the property group
// and the managed properties that are missing, and checks every existing target property
// (managed or from field_mappings) for compatibility: it must exist, be writable, have a
// number type for the two scores, and be a single-choice enumeration (select or radio) with
// every option — or a text property — for the three grades. Problems come back together, as
// MappingErrors joined.
func Setup(ctx context.Context, hs hubspotAPI, cfg *portal.Config) (SetupResult, error) {
	var res SetupResult
	tgts, err := targets(cfg)
	if err != nil {
		return res, err
	}
	needGroup := slices.ContainsFunc(tgts, func(t target) bool { return t.managed })
	group := cfg.ScoreSync.Group
	if needGroup {
		res.Calls++
		groups, err := hs.GetGroups(ctx, hubspot.Companies)
		if err != nil {
			return res, fmt.Errorf("read company property groups: %w", err)
		}
		if !slices.ContainsFunc(groups, func(g hubspot.PropertyGroup) bool { return g.Name == group.Name && !g.Archived }) {
			res.Calls++
			if _, err := hs.CreateGroup(ctx, hubspot.Companies, hubspot.PropertyGroup{Name: group.Name, Label: group.Label}); err != nil && !hubspot.IsConflict(err) {
				return res, fmt.Errorf("create property group %q: %w", group.Name, err)
			}
			res.GroupCreated = true
		}
	}
	res.Calls++
	props, err := hs.GetProperties(ctx, hubspot.Companies)
	if err != nil {
		return res, fmt.Errorf("read company properties: %w", err)
	}
	byName := make(map[string]hubspot.Property, len(props))
	for _, p := range props {
		if !p.Archived {
			byName[p.Name] = p
		}
	}
	var create []hubspot.PropertyCreate
	var errs []error
	var cols []Column
	for i, t := range tgts {
		p, exists := byName[t.property]
		switch {
		case !exists && t.managed:
			pc := managedProperty(t.field, t.property, group.Name, i)
			create = append(create, pc)
			cols = append(cols, Column{Field: t.field, Property: t.property, Managed: true, values: managedValues(t.field)})
		case !exists:
			errs = append(errs, &MappingError{Field: t.field.String(), Property: t.property,
				Problem: "the property does not exist on companies (field_mappings names it; create it in HubSpot or remove the mapping)"})
		default:
			col, problem := compatible(t, p)
			if problem != "" {
				errs = append(errs, &MappingError{Field: t.field.String(), Property: t.property, Problem: problem})
				continue
			}
			cols = append(cols, col)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	if len(create) > 0 {
		res.Calls++
		out, err := hs.BatchCreateProperties(ctx, hubspot.Companies, create)
		if err != nil {
			return res, fmt.Errorf("create score properties: %w", err)
		}
		for _, e := range out.Errors {
			name := ""
			if e.Index >= 0 && e.Index < len(create) {
				name = create[e.Index].Name
			}
			errs = append(errs, fmt.Errorf("create score property %q: %s: %s", name, e.Category, e.Message))
		}
		if err := errors.Join(errs...); err != nil {
			return res, err
		}
		for _, pc := range create {
			res.PropertiesCreated = append(res.PropertiesCreated, pc.Name)
		}
	}
	res.Mapping = Mapping{Columns: cols, Fingerprint: fingerprint(cols)}
	return res, nil
}

// managedProperty is the definition of a property signalbridge owns.
func managedProperty(f Field, name, group string, order int) hubspot.PropertyCreate {
	d := fieldDefs[f]
	pc := hubspot.PropertyCreate{
		Name: name, Label: d.label, GroupName: group, DisplayOrder: order + 1,
		Description: "Set nightly by signalbridge score sync; changes made in HubSpot are overwritten.",
	}
	if d.options == nil {
		pc.Type, pc.FieldType = hubspot.TypeNumber, hubspot.FieldNumber
		return pc
	}
	pc.Type, pc.FieldType = hubspot.TypeEnumeration, hubspot.FieldSelect
	for i, o := range d.options {
		pc.Options = append(pc.Options, hubspot.OptionInput{Label: o.label, Value: o.key, DisplayOrder: i + 1})
	}
	return pc
}

func managedValues(f Field) map[string]string {
	d := fieldDefs[f]
	if d.options == nil {
		return nil
	}
	m := make(map[string]string, len(d.options))
	for _, o := range d.options {
		m[o.key] = o.key
	}
	return m
}

// compatible checks an existing property against a score and returns its column, or what is
// wrong with it.
func compatible(t target, p hubspot.Property) (Column, string) {
	col := Column{Field: t.field, Property: t.property, Managed: t.managed}
	if p.Calculated || (p.ModificationMeta != nil && p.ModificationMeta.ReadOnlyValue) {
		return col, "the property is read-only (calculated or HubSpot-controlled); its values cannot be written"
	}
	d := fieldDefs[t.field]
	if d.options == nil {
		if p.Type != hubspot.TypeNumber {
			return col, fmt.Sprintf("type is %q (field type %q); a score needs a number property", p.Type, p.FieldType)
		}
		return col, ""
	}
	switch {
	case p.Type == hubspot.TypeString && (p.FieldType == hubspot.FieldText || p.FieldType == hubspot.FieldTextarea):
		col.values = map[string]string{}
		for _, o := range d.options {
			col.values[o.key] = o.label
		}
		return col, ""
	case p.Type != hubspot.TypeEnumeration:
		return col, fmt.Sprintf("type is %q (field type %q); %s needs a single-choice enumeration (select or radio) or a text property", p.Type, p.FieldType, d.name)
	case p.FieldType != hubspot.FieldSelect && p.FieldType != hubspot.FieldRadio:
		return col, fmt.Sprintf("field type is %q; %s needs a single choice (select or radio), not a multi-choice or other field", p.FieldType, d.name)
	}
	col.values = map[string]string{}
	var missing []string
	for _, o := range d.options {
		if v, ok := matchOption(o, p.Options); ok {
			col.values[o.key] = v
			continue
		}
		missing = append(missing, strconv.Quote(o.label))
	}
	if len(missing) > 0 {
		have := make([]string, len(p.Options))
		for i, o := range p.Options {
			have[i] = strconv.Quote(o.Label)
		}
		return col, fmt.Sprintf("options missing: %s (the property has %s; an option matches by internal value or label)",
			strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return col, ""
}

// matchOption finds the property option standing for o: same internal value or same label
// (case-insensitive); the "none" option also matches an option labelled None, "-" or "—".
func matchOption(o option, opts []hubspot.OptionInput) (string, bool) {
	for _, po := range opts {
		if strings.EqualFold(po.Value, o.key) || strings.EqualFold(strings.TrimSpace(po.Label), o.label) {
			return po.Value, true
		}
	}
	if o.key == "none" {
		for _, po := range opts {
			switch strings.ToLower(strings.TrimSpace(po.Label)) {
			case "none", "-", "—":
				return po.Value, true
			}
		}
	}
	return "", false
}

// fingerprint hashes the columns and every value they render.
func fingerprint(cols []Column) uint32 {
	h := fnv.New32a()
	for _, c := range cols {
		fmt.Fprintf(h, "%d|%s|", c.Field, c.Property)
		keys := make([]string, 0, len(c.values))
		for k := range c.values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%s;", k, c.values[k])
		}
		h.Write([]byte{'\n'})
	}
	return h.Sum32()
}
