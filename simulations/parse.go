// parse.go: reading a scenario file. The YAML is walked node by node so
// that every error names the field (its dotted path) and its line: an
// unknown field, a value of the wrong type, and (validate.go) a value
// that makes no sense.

package simulations

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxScenarioBytes bounds a scenario file.
const maxScenarioBytes = 1 << 20

// LoadScenario reads and checks the scenario file at path.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("simulations: %w", err)
	}
	s, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// FieldError is an error in one field of a scenario.
type FieldError struct {
	Line  int    // 1-based; 0 when the field is not in the file (a default)
	Field string // dotted path, such as workload.return_after.mean
	Msg   string
}

// Error says the line, the field and what is wrong.
func (e *FieldError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("simulations: scenario field %s: %s", e.Field, e.Msg)
	}
	return fmt.Sprintf("simulations: line %d: field %s: %s", e.Line, e.Field, e.Msg)
}

// ParseScenario parses a scenario from YAML (JSON, being YAML, works too),
// fills in defaults and checks every value.
func ParseScenario(b []byte) (*Scenario, error) {
	if len(b) > maxScenarioBytes {
		return nil, fmt.Errorf("simulations: scenario of %d bytes exceeds the limit of %d", len(b), maxScenarioBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("simulations: scenario is not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("simulations: scenario is empty; see simulations/README.md for the format")
	}
	s := &Scenario{}
	lines := map[string]int{}
	if err := decodeNode(doc.Content[0], reflect.ValueOf(s).Elem(), "", lines); err != nil {
		return nil, err
	}
	s.setDefaults()
	if err := s.validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Line = lineOf(lines, fe.Field)
		}
		return nil, err
	}
	return s, nil
}

// lineOf finds the line of field, or of its closest parent in the file.
func lineOf(lines map[string]int, field string) int {
	for f := field; f != ""; {
		if l, ok := lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decodeNode decodes n into v, recording each field's line under its path.
func decodeNode(n *yaml.Node, v reflect.Value, path string, lines map[string]int) error {
	if path != "" {
		lines[path] = n.Line
	}
	if n.Kind == yaml.AliasNode {
		return &FieldError{n.Line, orRoot(path), "aliases are not supported in scenarios; write the value out"}
	}
	fail := func(msg string) error { return &FieldError{n.Line, orRoot(path), msg} }
	if v.Kind() == reflect.Pointer {
		if n.Tag == "!!null" {
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeNode(n, v.Elem(), path, lines)
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			return fail(err.Error())
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fail(fmt.Sprintf("want a mapping of fields, got a %s", kindName(n)))
		}
		t := v.Type()
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			name := k.Value
			fp := join(path, name)
			if seen[name] {
				return &FieldError{k.Line, fp, "given twice"}
			}
			seen[name] = true
			fi := fieldByTag(t, name)
			if fi < 0 {
				return &FieldError{k.Line, fp, fmt.Sprintf("unknown field; the fields here are %s", strings.Join(fieldNames(t), ", "))}
			}
			if err := decodeNode(val, v.Field(fi), fp, lines); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fail(fmt.Sprintf("want a list, got a %s", kindName(n)))
		}
		if len(n.Content) > 100000 {
			return fail("list too long")
		}
		sl := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := decodeNode(c, sl.Index(i), fmt.Sprintf("%s[%d]", path, i), lines); err != nil {
				return err
			}
		}
		v.Set(sl)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fail(fmt.Sprintf("want a %s, got a %s", typeName(v.Kind()), kindName(n)))
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return fail(fmt.Sprintf("want a %s, got %q", typeName(v.Kind()), n.Value))
	}
	return nil
}

func orRoot(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func typeName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64:
		return "whole number"
	case reflect.Uint64:
		return "non-negative whole number"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "string"
	}
	return k.String()
}

func fieldByTag(t reflect.Type, name string) int {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name {
			return i
		}
	}
	return -1
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, tag)
	}
	return out
}
