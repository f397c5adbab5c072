package portal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads one portal config from a YAML document, strictly: unknown keys,
// duplicate keys, values of the wrong type and a second document are errors. It
// then applies defaults and validates. Every problem found is returned at once in
// a [*ValidationError], each with its field path and, where known, its line.
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{Problems: []Problem{{Message: "empty document"}}}
		}
		return nil, &ValidationError{Problems: []Problem{syntaxProblem(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p := Problem{Message: "more than one YAML document; write one document per portal"}
		if err == nil {
			p.Line = extra.Line
		}
		return nil, &ValidationError{Problems: []Problem{p}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &ValidationError{Problems: []Problem{{Message: "the document must be a mapping (portal_id: ..., name: ..., ...)", Line: doc.Line}}}
	}

	idx := newLineIndex(doc)
	var ps problems
	var cfg Config
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &ValidationError{Problems: []Problem{syntaxProblem(err)}}
		}
		dupKeys := false
		for _, msg := range te.Errors {
			ps = append(ps, idx.typeProblem(msg))
			dupKeys = dupKeys || dupKeyRe.MatchString(msg)
		}
		if dupKeys {
			// yaml.v3 skips a whole mapping that has a duplicate key, so the
			// config is too incomplete for validation to say anything useful.
			return nil, ps.err(cfg.PortalID)
		}
	}
	cfg.ApplyDefaults()
	var vs problems
	cfg.validate(&vs)
	decodeFailed := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Path != "" {
			decodeFailed = append(decodeFailed, p.Path)
		}
	}
	for _, p := range vs {
		if under(p.Path, decodeFailed) {
			continue // already reported: the value had the wrong type
		}
		p.Line = idx.lineOf(p.Path)
		ps = append(ps, p)
	}
	if err := ps.err(cfg.PortalID); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// under reports whether path is one of roots or lies beneath one.
func under(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+".") || strings.HasPrefix(path, r+"[") {
			return true
		}
	}
	return false
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Message: "YAML syntax: " + m[2], Line: line}
	}
	return Problem{Message: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// lineIndex maps field paths to source lines, and source lines back to paths so
// that yaml.v3's line-numbered type errors can be given field paths.
type lineIndex struct {
	pathLine map[string]int     // path → line of its key (or sequence item)
	keyPath  map[lineKey]string // (line, key) → path
	valPath  map[int]string     // line → path of the first scalar value on it
	collPath map[int]string     // line → path of the collection value starting on it
	collKind map[int]bool       // line → the collPath entry is inline (on its key's line)
}

type lineKey struct {
	line int
	key  string
}

func newLineIndex(doc *yaml.Node) *lineIndex {
	idx := &lineIndex{
		pathLine: map[string]int{},
		keyPath:  map[lineKey]string{},
		valPath:  map[int]string{},
		collPath: map[int]string{},
		collKind: map[int]bool{},
	}
	idx.walk(doc, "", 0)
	return idx
}

// walk indexes n, the value at path; keyLine is the line of its key (0 for items).
func (idx *lineIndex) walk(n *yaml.Node, path string, keyLine int) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		// Prefer a collection written on its key's line ("auth: [x]"): a block
		// collection starts on the line of its first child, which may hold an
		// inline collection of its own.
		inline := n.Line == keyLine
		if prev, seen := idx.collKind[n.Line]; !seen || inline && !prev {
			idx.collPath[n.Line] = path
			idx.collKind[n.Line] = inline
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if _, seen := idx.pathLine[p]; !seen {
				idx.pathLine[p] = k.Line
			}
			lk := lineKey{k.Line, k.Value}
			if _, seen := idx.keyPath[lk]; !seen {
				idx.keyPath[lk] = p
			}
			idx.walk(v, p, k.Line)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			idx.pathLine[p] = item.Line
			idx.walk(item, p, item.Line)
		}
	case yaml.ScalarNode, yaml.AliasNode:
		if _, seen := idx.valPath[n.Line]; !seen {
			idx.valPath[n.Line] = path
		}
	}
}

// lineOf returns the line of path, or of its nearest ancestor present in the source.
func (idx *lineIndex) lineOf(path string) int {
	for path != "" {
		if l, ok := idx.pathLine[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

var (
	unknownFieldRe = regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)
	dupKeyRe       = regexp.MustCompile(`^line (\d+): mapping key "(.+)" already defined at line (\d+)$`)
	typeLineRe     = regexp.MustCompile(`^line (\d+): (.*)$`)
	collTagRe      = regexp.MustCompile(`cannot unmarshal !!(map|seq) `)
)

// typeProblem turns one of yaml.v3's TypeError messages into a Problem with a path.
func (idx *lineIndex) typeProblem(msg string) Problem {
	if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Path: idx.keyPath[lineKey{line, m[2]}], Message: "unknown field", Line: line}
	}
	if m := dupKeyRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Path: idx.keyPath[lineKey{line, m[2]}], Message: "duplicate key, first defined at line " + m[3], Line: line}
	}
	if m := typeLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path := idx.valPath[line]
		if collTagRe.MatchString(m[2]) {
			path = idx.collPath[line]
		}
		return Problem{Path: path, Message: m[2], Line: line}
	}
	return Problem{Message: msg}
}
