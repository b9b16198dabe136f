package pydeps

// This file parses and evaluates PEP 508 environment markers, the
// `; sys_platform == "win32"` part of a requirement, against the platform
// and Python of an image.

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Marker is a parsed PEP 508 environment marker.
type Marker struct {
	text string
	root node
}

// ParseMarker parses an environment marker such as
// `python_version >= "3.8" and platform_machine == "x86_64"`.
func ParseMarker(s string) (*Marker, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, fmt.Errorf("parse marker %q: %w", s, err)
	}
	p := &parser{toks: toks}
	root, err := p.parseOr()
	if err == nil && p.peek().kind != tokEOF {
		err = p.unexpected("'and', 'or' or the end")
	}
	if err != nil {
		return nil, fmt.Errorf("parse marker %q: %w", s, err)
	}
	return &Marker{text: s, root: root}, nil
}

// String returns the marker as written.
func (m *Marker) String() string { return m.text }

// Applies reports whether a requirement with this marker applies in env:
// true when the marker holds or when it depends on a value env does not
// know. A nil env knows nothing. The error is a comparison PEP 508 leaves
// undefined, such as ~= between strings that are not versions.
func (m *Marker) Applies(env *Environment) (bool, error) {
	if env == nil {
		env = &Environment{}
	}
	t, err := m.root.eval(env)
	if err != nil {
		return false, fmt.Errorf("evaluate marker %q: %w", m.text, err)
	}
	return t != isFalse, nil
}

// truth is a three-valued logic result: a comparison with an unknown value
// is unknown, "false and unknown" is still false and "true or unknown" true,
// so a requirement is skipped only when its marker is false whatever the
// unknown values are.
type truth int8

const (
	isFalse truth = iota
	isTrue
	isUnknown
)

// node is one part of a parsed marker.
type node interface {
	eval(env *Environment) (truth, error)
}

// andNode and orNode evaluate both sides, so that an undefined comparison
// is reported even where the other side alone decides.
type andNode struct{ left, right node }

type orNode struct{ left, right node }

// compareNode is "left op right"; op is a PEP 440 operator, "in" or "not in".
type compareNode struct {
	left, right operand
	op          string
}

// operand is a variable (name set) or a quoted string.
type operand struct {
	name    string
	literal string
}

func (n andNode) eval(env *Environment) (truth, error) {
	l, lerr := n.left.eval(env)
	r, rerr := n.right.eval(env)
	if lerr != nil {
		return isFalse, lerr
	}
	if rerr != nil {
		return isFalse, rerr
	}
	switch {
	case l == isFalse || r == isFalse:
		return isFalse, nil
	case l == isTrue && r == isTrue:
		return isTrue, nil
	}
	return isUnknown, nil
}

func (n orNode) eval(env *Environment) (truth, error) {
	l, lerr := n.left.eval(env)
	r, rerr := n.right.eval(env)
	if lerr != nil {
		return isFalse, lerr
	}
	if rerr != nil {
		return isFalse, rerr
	}
	switch {
	case l == isTrue || r == isTrue:
		return isTrue, nil
	case l == isFalse && r == isFalse:
		return isFalse, nil
	}
	return isUnknown, nil
}

// value returns the operand's value and whether it is known.
func (o operand) value(env *Environment) (string, bool) {
	if o.name == "" {
		return o.literal, true
	}
	get := markerVariables[o.name]
	if get == nil { // extra
		return "", true
	}
	v := get(env)
	return v, v != ""
}

func (n compareNode) eval(env *Environment) (truth, error) {
	l, lok := n.left.value(env)
	r, rok := n.right.value(env)
	if !lok || !rok {
		return isUnknown, nil
	}
	ok, err := compareMarkerValues(l, n.op, r)
	if err != nil || !ok {
		return isFalse, err
	}
	return isTrue, nil
}

// compareMarkerValues applies op as PEP 508 says: by PEP 440 when "op r" is
// a valid specifier clause and l a valid version (so python_version < "3.10"
// compares 3.9 and 3.10 as versions), else as Python compares strings. The
// living spec (2026) and packaging 26 make < and > of non-versions false and
// <=, >= mean ==; whatever is true that way is true in string order too, so
// string order never skips a requirement a newer pip would install.
func compareMarkerValues(l, op, r string) (bool, error) {
	switch op {
	case "in":
		return strings.Contains(r, l), nil
	case "not in":
		return !strings.Contains(r, l), nil
	}
	if c, err := parseClause(op + r); err == nil {
		if ok, err := (specifier{c}).allows(l); err == nil {
			return ok, nil
		}
	}
	switch op {
	case "==", "===":
		return l == r, nil
	case "!=":
		return l != r, nil
	case "<":
		return l < r, nil
	case "<=":
		return l <= r, nil
	case ">":
		return l > r, nil
	case ">=":
		return l >= r, nil
	}
	return false, fmt.Errorf("%q %s %q is undefined: both must be versions", l, op, r)
}

// tokenKind is the kind of a marker token.
type tokenKind int

const (
	tokEOF    tokenKind = iota
	tokString           // a quoted string, text without its quotes
	tokName             // a variable name or a keyword (and, or, in, not)
	tokOp               // a comparison operator
	tokLParen
	tokRParen
)

type token struct {
	kind tokenKind
	text string
	pos  int // byte offset in the marker, for errors
}

// tokenize splits a marker into tokens, ending with tokEOF.
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, text: "(", pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, text: ")", pos: i})
			i++
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			toks = append(toks, token{kind: tokString, text: s[i+1 : i+1+end], pos: i})
			i += end + 2
		case isNameByte(c):
			start := i
			for i < len(s) && isNameByte(s[i]) {
				i++
			}
			toks = append(toks, token{kind: tokName, text: s[start:i], pos: start})
		default:
			op := ""
			for _, candidate := range operators { // longest first
				if strings.HasPrefix(s[i:], candidate) {
					op = candidate
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Errorf("unexpected %q at offset %d", r, i)
			}
			toks = append(toks, token{kind: tokOp, text: op, pos: i})
			i += len(op)
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(s)}), nil
}

// isNameByte reports whether c can be part of a variable name or keyword.
// '.' is included so that the legacy "os.name" is one unknown name.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}

// parser is a recursive-descent parser of PEP 508's marker grammar:
//
//	marker  = and ("or" and)*
//	and     = expr ("and" expr)*
//	expr    = "(" marker ")" | operand op operand
//	operand = variable | quoted string
//	op      = "<=" | "<" | "!=" | "==" | ">=" | ">" | "~=" | "===" | "in" | "not" "in"
type parser struct {
	toks []token
	i    int
	// depth is the parentheses open now, terms the comparisons read: both
	// bounded, so that a hostile requirements.txt cannot exhaust the stack
	// (parsing and evaluating recurse) or the CPU.
	depth, terms int
}

// Bounds of one marker; real ones have a handful of terms and rarely a
// parenthesis.
const (
	maxMarkerDepth = 32
	maxMarkerTerms = 256
)

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// isKeyword reports whether the next token is the given keyword.
func (p *parser) isKeyword(word string) bool {
	t := p.peek()
	return t.kind == tokName && t.text == word
}

// unexpected describes the next token where want was expected.
func (p *parser) unexpected(want string) error {
	t := p.peek()
	if t.kind == tokEOF {
		return fmt.Errorf("expected %s at the end", want)
	}
	return fmt.Errorf("expected %s at offset %d, found %q", want, t.pos, t.text)
}

func (p *parser) parseOr() (node, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("or") {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = orNode{left: left, right: right}
	}
	return left, nil
}

func (p *parser) parseAnd() (node, error) {
	left, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("and") {
		p.next()
		right, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		left = andNode{left: left, right: right}
	}
	return left, nil
}

func (p *parser) parseExpr() (node, error) {
	if p.peek().kind == tokLParen {
		if p.depth++; p.depth > maxMarkerDepth {
			return nil, fmt.Errorf("parentheses nested deeper than %d", maxMarkerDepth)
		}
		defer func() { p.depth-- }()
		p.next()
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.peek().kind != tokRParen {
			return nil, p.unexpected("')'")
		}
		p.next()
		return inner, nil
	}
	if p.terms++; p.terms > maxMarkerTerms {
		return nil, fmt.Errorf("more than %d comparisons", maxMarkerTerms)
	}
	left, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	op, err := p.parseOp()
	if err != nil {
		return nil, err
	}
	right, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	return compareNode{left: left, op: op, right: right}, nil
}

func (p *parser) parseOperand() (operand, error) {
	t := p.peek()
	switch t.kind {
	case tokString:
		p.next()
		return operand{literal: t.text}, nil
	case tokName:
		switch t.text {
		case "and", "or", "not", "in":
			return operand{}, p.unexpected("a variable or a quoted string")
		}
		if _, known := markerVariables[t.text]; !known {
			return operand{}, fmt.Errorf("unknown variable %q at offset %d", t.text, t.pos)
		}
		p.next()
		return operand{name: t.text}, nil
	}
	return operand{}, p.unexpected("a variable or a quoted string")
}

func (p *parser) parseOp() (string, error) {
	t := p.peek()
	switch {
	case t.kind == tokOp:
		p.next()
		return t.text, nil
	case p.isKeyword("in"):
		p.next()
		return "in", nil
	case p.isKeyword("not"):
		p.next()
		if !p.isKeyword("in") {
			return "", p.unexpected("'in' after 'not'")
		}
		p.next()
		return "not in", nil
	}
	return "", p.unexpected("a comparison operator")
}
