// Package config fills a typed configuration struct from environment
// variables described by struct tags.
//
//	type Config struct {
//		HTTPAddr string        `env:"HTTP_ADDR" default:":8080" desc:"listen address"`
//		Token    config.Secret `env:"HUBSPOT_TOKEN" required:"true"`
//		Timeout  time.Duration `env:"TIMEOUT" default:"5s"`
//		NATS     natsx.Config  `env:"NATS"` // fields become <PREFIX>_NATS_<NAME>
//		telemetry.Config                    // embedded: fields keep <PREFIX>_<NAME>
//	}
//
// Tags:
//   - env: the variable name below the prefix; "-" or no tag skips the field
//     (except untagged embedded structs, whose fields are read in place).
//   - default: used when the variable is unset or empty.
//   - required:"true": an unset variable without a default is an error.
//   - desc: a human description, reported by [Describe].
//
// Supported field types: string, [Secret], bool, all int, uint and float
// kinds, [time.Duration], []string (comma separated, blanks dropped), any type
// whose pointer implements [encoding.TextUnmarshaler] (slog.Level,
// netip.Addr, ...), and structs of such fields. A variable that is unset, has
// no default and is not required leaves the field as it was, so defaults may
// also be set in code before calling [Load].
package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Sentinel errors wrapped by [Load]; test them with errors.Is.
var (
	// ErrRequired marks a required variable that is unset and has no default.
	ErrRequired = errors.New("required but not set")
	// ErrInvalid marks a value that does not parse as the field's type.
	ErrInvalid = errors.New("invalid value")
)

// Var describes one environment variable bound to a config field, for
// README tables and --help output.
type Var struct {
	Name     string // full variable name, prefix included
	Default  string // the default tag, "" when none
	Required bool   // the variable must be set
	Secret   bool   // a Secret field: masked when printed, may be read from <Name>_FILE
	Desc     string // the desc tag
}

// validator is implemented by config structs that check their own invariants.
type validator interface{ Validate() error }

var (
	secretType          = reflect.TypeFor[Secret]()
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// Load fills the struct dst points to from the variables getenv returns.
// Variable names are prefix + "_" + the env tag (just the tag when prefix is
// empty); a tagged struct field adds its tag as one more segment.
//
// For a Secret field NAME, when NAME_FILE is set the secret is read from that
// file with surrounding white space trimmed; setting both is an error.
//
// Load reports every problem at once, joined with [errors.Join]. Once a
// struct (dst itself or a nested one) has loaded without errors, its
// Validate() error method, if any, is called and its error joined too.
func Load(prefix string, getenv func(string) string, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: load: dst must be a non-nil pointer to a struct, got %T", dst)
	}
	if getenv == nil {
		return errors.New("config: load: getenv is nil")
	}
	root := rv.Elem()
	loadErrs, validateErrs := loader{getenv: getenv}.loadStruct(root, prefix, root.Type().Name())
	if len(loadErrs) == 0 {
		if err := validate(root); err != nil {
			validateErrs = append(validateErrs, err)
		}
	}
	return errors.Join(append(loadErrs, validateErrs...)...)
}

// Describe lists the variables dst (a struct, a pointer to one, or a typed
// nil pointer) binds under prefix, in field order.
func Describe(prefix string, dst any) []Var {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []Var
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		fs, _ := fields(t, prefix, t.Name())
		for _, f := range fs {
			if f.nested {
				walk(t.Field(f.index).Type, f.prefix)
				continue
			}
			out = append(out, f.Var)
		}
	}
	walk(t, prefix)
	return out
}

// String prints cfg (a struct or a pointer to one) as "NAME=value" lines,
// names without a prefix, secrets masked. Use it to log the effective
// configuration at start-up.
func String(cfg any) string { return Format("", cfg) }

// Format is [String] with variable names under prefix, as [Load] reads them.
func Format(prefix string, cfg any) string {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	var lines []string
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		fs, _ := fields(v.Type(), prefix, v.Type().Name())
		for _, f := range fs {
			fv := v.Field(f.index)
			if f.nested {
				walk(fv, f.prefix)
				continue
			}
			lines = append(lines, f.Name+"="+quoteIfNeeded(formatValue(fv)))
		}
	}
	walk(v, prefix)
	return strings.Join(lines, "\n")
}

// field is one bound field of a struct: a variable, or a nested struct.
type field struct {
	Var
	index    int    // index in the parent struct
	path     string // Go path for messages, e.g. "Config.NATS"
	nested   bool   // a struct whose own fields are bound
	embedded bool   // nested without a name segment
	prefix   string // nested: the prefix of its fields' names
}

// fields classifies the fields of struct type t. Fields that cannot be bound
// are reported as errors and left out.
func fields(t reflect.Type, prefix, path string) ([]field, []error) {
	var out []field
	var errs []error
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, tagged := sf.Tag.Lookup("env")
		p := path + "." + sf.Name
		switch {
		case tag == "-":
			continue
		case sf.Anonymous && tag == "":
			// Exported fields of an unexported embedded struct are promoted
			// and settable, as with encoding/json.
			if sf.Type.Kind() == reflect.Struct && !isLeaf(sf.Type) {
				out = append(out, field{index: i, path: p, nested: true, embedded: true, prefix: prefix})
			}
			continue
		case tag == "":
			if tagged {
				errs = append(errs, fmt.Errorf("field %s: empty env tag", p))
			}
			continue
		case !sf.IsExported():
			errs = append(errs, fmt.Errorf("field %s: env tag on an unexported field", p))
			continue
		}
		name := tag
		if prefix != "" {
			name = prefix + "_" + tag
		}
		switch {
		case isLeaf(sf.Type):
			f := field{
				Var: Var{
					Name:    name,
					Default: sf.Tag.Get("default"),
					Secret:  sf.Type == secretType || sf.Type.Kind() == reflect.Slice && sf.Type.Elem() == secretType,
					Desc:    sf.Tag.Get("desc"),
				},
				index: i,
				path:  p,
			}
			if r, ok := sf.Tag.Lookup("required"); ok {
				b, err := strconv.ParseBool(r)
				if err != nil {
					errs = append(errs, fmt.Errorf("field %s: required tag %q: want true or false", p, r))
					continue
				}
				f.Required = b
			}
			out = append(out, f)
		case sf.Type.Kind() == reflect.Struct && hasBoundFields(sf.Type):
			out = append(out, field{index: i, path: p, nested: true, prefix: name})
		default:
			errs = append(errs, fmt.Errorf("field %s (%s): unsupported type %s", p, name, sf.Type))
		}
	}
	return out, errs
}

// isLeaf reports whether a field of type t holds one variable's value.
func isLeaf(t reflect.Type) bool {
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	default:
		return false
	}
}

// hasBoundFields reports whether struct type t binds any variable, so that a
// struct such as url.URL is rejected instead of silently ignored.
func hasBoundFields(t reflect.Type) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("env")
		if tag != "" && tag != "-" {
			return true
		}
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct && hasBoundFields(sf.Type) {
			return true
		}
	}
	return false
}

type loader struct{ getenv func(string) string }

// loadStruct fills struct v and validates the nested structs that loaded
// cleanly. It returns the load errors and the validation errors apart so that
// the caller validates v only when v loaded cleanly.
func (l loader) loadStruct(v reflect.Value, prefix, path string) (loadErrs, validateErrs []error) {
	var fs []field
	fs, loadErrs = fields(v.Type(), prefix, path)
	for _, f := range fs {
		fv := v.Field(f.index)
		if !f.nested {
			if err := l.loadVar(f, fv); err != nil {
				loadErrs = append(loadErrs, err)
			}
			continue
		}
		subLoad, subValidate := l.loadStruct(fv, f.prefix, f.path)
		loadErrs = append(loadErrs, subLoad...)
		validateErrs = append(validateErrs, subValidate...)
		// The parent's Validate is the embedded one (promoted) or shadows it.
		if len(subLoad) > 0 || f.embedded && hasValidate(v) {
			continue
		}
		if err := validate(fv); err != nil {
			validateErrs = append(validateErrs, fmt.Errorf("%s: %w", f.path, err))
		}
	}
	return loadErrs, validateErrs
}

func (l loader) loadVar(f field, fv reflect.Value) error {
	raw := l.getenv(f.Name)
	if f.Secret {
		fileVar := f.Name + "_FILE"
		if path := l.getenv(fileVar); path != "" {
			if raw != "" {
				return fmt.Errorf("%s and %s are both set: set only one", f.Name, fileVar)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("%s: read secret file: %w", fileVar, err)
			}
			raw = strings.TrimSpace(string(b))
		}
	}
	if raw == "" {
		switch {
		case f.Default != "":
			if expected := set(fv, f.Default); expected != "" {
				return fmt.Errorf("%s: default %q (field %s): %w: expected %s", f.Name, f.Default, f.path, ErrInvalid, expected)
			}
		case f.Required:
			if f.Desc != "" {
				return fmt.Errorf("%s (%s): %w", f.Name, f.Desc, ErrRequired)
			}
			return fmt.Errorf("%s: %w", f.Name, ErrRequired)
		}
		return nil
	}
	if expected := set(fv, raw); expected != "" {
		// Secrets are strings and always parse, so raw is never a secret here.
		return fmt.Errorf("%s=%q: %w: expected %s", f.Name, raw, ErrInvalid, expected)
	}
	return nil
}

// set parses s into fv. On failure it returns the expected form, "" on success.
func set(fv reflect.Value, s string) (expected string) {
	t := fv.Type()
	if t == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return "a duration such as 250ms, 5s or 1m30s"
		}
		fv.SetInt(int64(d))
		return ""
	}
	if u, ok := fv.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(s)); err != nil {
			return fmt.Sprintf("a valid %s (%v)", t, err)
		}
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return "true or false"
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			hi := int64(1)<<(t.Bits()-1) - 1
			return fmt.Sprintf("an integer from %d to %d", -hi-1, hi)
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return fmt.Sprintf("an integer from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
		}
		fv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return "a number such as 0.5"
		}
		fv.SetFloat(x)
	case reflect.Slice:
		out := reflect.MakeSlice(t, 0, strings.Count(s, ",")+1)
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = reflect.Append(out, reflect.ValueOf(item).Convert(t.Elem()))
			}
		}
		fv.Set(out)
	default:
		return "a supported type" // unreachable: fields only yields leaf kinds
	}
	return ""
}

// asValidator returns v's Validate method, if it has one. The value of an
// unexported embedded struct cannot be used as an interface; a Validate of its
// type is promoted to the parent anyway.
func asValidator(v reflect.Value) (validator, bool) {
	p := v.Addr()
	if !p.CanInterface() {
		return nil, false
	}
	val, ok := p.Interface().(validator)
	return val, ok
}

func hasValidate(v reflect.Value) bool {
	_, ok := asValidator(v)
	return ok
}

func validate(v reflect.Value) error {
	if val, ok := asValidator(v); ok {
		return val.Validate()
	}
	return nil
}

// formatValue prints a leaf field the way an operator would write it.
func formatValue(v reflect.Value) string {
	t := v.Type()
	switch {
	case t == secretType:
		return Secret(v.String()).String()
	case t == durationType:
		return time.Duration(v.Int()).String()
	case t.Implements(textMarshalerType):
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return fmt.Sprintf("!(%v)", err)
		}
		return string(b)
	case v.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType):
		return formatValue(v.Addr())
	case t.Kind() == reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = formatValue(v.Index(i))
		}
		return strings.Join(items, ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// quoteIfNeeded quotes values that would not survive as one NAME=value line.
func quoteIfNeeded(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' }) {
		return strconv.Quote(s)
	}
	return s
}
